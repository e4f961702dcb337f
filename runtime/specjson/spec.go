package specjson

import (
	"os"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Decode decodes b, or reports false when b is not in the form it takes
// (see the package comment): then encoding/json must decode it.
func Decode(b []byte) (*specs.Spec, bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	d := &dec{b: b}
	s := &specs.Spec{}
	d.object(func(k string) bool {
		switch k {
		case "ociVersion":
			s.Version = d.str()
		case "process":
			s.Process = d.process()
		case "root":
			s.Root = &specs.Root{}
			d.object(func(k string) bool {
				switch k {
				case "path":
					s.Root.Path = d.str()
				case "readonly":
					s.Root.Readonly = d.bool()
				default:
					return false
				}
				return true
			})
		case "hostname":
			s.Hostname = d.str()
		case "domainname":
			s.Domainname = d.str()
		case "mounts":
			s.Mounts = []specs.Mount{}
			d.array(func() { s.Mounts = append(s.Mounts, d.mount()) })
		case "hooks":
			s.Hooks = d.hooks()
		case "annotations":
			s.Annotations = d.strMap()
		case "linux":
			s.Linux = d.linux()
		default:
			return false
		}
		return true
	})
	if d.next() != 0 || d.i != len(d.b) {
		d.fail()
	}
	if d.bad {
		return nil, false
	}
	return s, true
}

func (d *dec) process() *specs.Process {
	p := &specs.Process{}
	d.object(func(k string) bool {
		switch k {
		case "terminal":
			p.Terminal = d.bool()
		case "consoleSize":
			p.ConsoleSize = &specs.Box{}
			d.object(func(k string) bool {
				switch k {
				case "height":
					p.ConsoleSize.Height = uint(d.uint(0))
				case "width":
					p.ConsoleSize.Width = uint(d.uint(0))
				default:
					return false
				}
				return true
			})
		case "user":
			d.user(&p.User)
		case "args":
			p.Args = d.strs()
		case "env":
			p.Env = d.strs()
		case "cwd":
			p.Cwd = d.str()
		case "capabilities":
			c := &specs.LinuxCapabilities{}
			p.Capabilities = c
			d.object(func(k string) bool {
				switch k {
				case "bounding":
					c.Bounding = d.strs()
				case "effective":
					c.Effective = d.strs()
				case "inheritable":
					c.Inheritable = d.strs()
				case "permitted":
					c.Permitted = d.strs()
				case "ambient":
					c.Ambient = d.strs()
				default:
					return false
				}
				return true
			})
		case "rlimits":
			p.Rlimits = []specs.POSIXRlimit{}
			d.array(func() {
				var r specs.POSIXRlimit
				d.object(func(k string) bool {
					switch k {
					case "type":
						r.Type = d.str()
					case "hard":
						r.Hard = d.uint(64)
					case "soft":
						r.Soft = d.uint(64)
					default:
						return false
					}
					return true
				})
				p.Rlimits = append(p.Rlimits, r)
			})
		case "noNewPrivileges":
			p.NoNewPrivileges = d.bool()
		case "apparmorProfile":
			p.ApparmorProfile = d.str()
		case "oomScoreAdj":
			p.OOMScoreAdj = ptr(int(d.int(0)))
		case "selinuxLabel":
			p.SelinuxLabel = d.str()
		default:
			return false
		}
		return true
	})
	return p
}

func (d *dec) user(u *specs.User) {
	d.object(func(k string) bool {
		switch k {
		case "uid":
			u.UID = uint32(d.uint(32))
		case "gid":
			u.GID = uint32(d.uint(32))
		case "umask":
			u.Umask = ptr(uint32(d.uint(32)))
		case "additionalGids":
			u.AdditionalGids = []uint32{}
			d.array(func() { u.AdditionalGids = append(u.AdditionalGids, uint32(d.uint(32))) })
		case "username":
			u.Username = d.str()
		default:
			return false
		}
		return true
	})
}

func (d *dec) mount() specs.Mount {
	var m specs.Mount
	d.object(func(k string) bool {
		switch k {
		case "destination":
			m.Destination = d.str()
		case "type":
			m.Type = d.str()
		case "source":
			m.Source = d.str()
		case "options":
			m.Options = d.strs()
		case "uidMappings":
			m.UIDMappings = d.idMappings()
		case "gidMappings":
			m.GIDMappings = d.idMappings()
		default:
			return false
		}
		return true
	})
	return m
}

func (d *dec) idMappings() []specs.LinuxIDMapping {
	out := []specs.LinuxIDMapping{}
	d.array(func() {
		var m specs.LinuxIDMapping
		d.object(func(k string) bool {
			switch k {
			case "containerID":
				m.ContainerID = uint32(d.uint(32))
			case "hostID":
				m.HostID = uint32(d.uint(32))
			case "size":
				m.Size = uint32(d.uint(32))
			default:
				return false
			}
			return true
		})
		out = append(out, m)
	})
	return out
}

func (d *dec) hooks() *specs.Hooks {
	h := &specs.Hooks{}
	d.object(func(k string) bool {
		var l *[]specs.Hook
		switch k {
		case "prestart":
			//lint:ignore SA1019 deprecated in the spec, still run
			l = &h.Prestart
		case "createRuntime":
			l = &h.CreateRuntime
		case "createContainer":
			l = &h.CreateContainer
		case "startContainer":
			l = &h.StartContainer
		case "poststart":
			l = &h.Poststart
		case "poststop":
			l = &h.Poststop
		default:
			return false
		}
		*l = []specs.Hook{}
		d.array(func() {
			var hk specs.Hook
			d.object(func(k string) bool {
				switch k {
				case "path":
					hk.Path = d.str()
				case "args":
					hk.Args = d.strs()
				case "env":
					hk.Env = d.strs()
				case "timeout":
					hk.Timeout = ptr(int(d.int(0)))
				default:
					return false
				}
				return true
			})
			*l = append(*l, hk)
		})
		return true
	})
	return h
}

func (d *dec) linux() *specs.Linux {
	l := &specs.Linux{}
	d.object(func(k string) bool {
		switch k {
		case "uidMappings":
			l.UIDMappings = d.idMappings()
		case "gidMappings":
			l.GIDMappings = d.idMappings()
		case "sysctl":
			l.Sysctl = d.strMap()
		case "resources":
			l.Resources = d.resources()
		case "cgroupsPath":
			l.CgroupsPath = d.str()
		case "namespaces":
			l.Namespaces = []specs.LinuxNamespace{}
			d.array(func() {
				var ns specs.LinuxNamespace
				d.object(func(k string) bool {
					switch k {
					case "type":
						ns.Type = specs.LinuxNamespaceType(d.str())
					case "path":
						ns.Path = d.str()
					default:
						return false
					}
					return true
				})
				l.Namespaces = append(l.Namespaces, ns)
			})
		case "devices":
			l.Devices = []specs.LinuxDevice{}
			d.array(func() { l.Devices = append(l.Devices, d.device()) })
		case "seccomp":
			l.Seccomp = d.seccomp()
		case "rootfsPropagation":
			l.RootfsPropagation = d.str()
		case "maskedPaths":
			l.MaskedPaths = d.strs()
		case "readonlyPaths":
			l.ReadonlyPaths = d.strs()
		case "mountLabel":
			l.MountLabel = d.str()
		default:
			return false
		}
		return true
	})
	return l
}

func (d *dec) device() specs.LinuxDevice {
	var dv specs.LinuxDevice
	d.object(func(k string) bool {
		switch k {
		case "path":
			dv.Path = d.str()
		case "type":
			dv.Type = d.str()
		case "major":
			dv.Major = d.int(64)
		case "minor":
			dv.Minor = d.int(64)
		case "fileMode":
			dv.FileMode = ptr(os.FileMode(d.uint(32)))
		case "uid":
			dv.UID = ptr(uint32(d.uint(32)))
		case "gid":
			dv.GID = ptr(uint32(d.uint(32)))
		default:
			return false
		}
		return true
	})
	return dv
}

func (d *dec) resources() *specs.LinuxResources {
	r := &specs.LinuxResources{}
	d.object(func(k string) bool {
		switch k {
		case "devices":
			r.Devices = []specs.LinuxDeviceCgroup{}
			d.array(func() {
				var c specs.LinuxDeviceCgroup
				d.object(func(k string) bool {
					switch k {
					case "allow":
						c.Allow = d.bool()
					case "type":
						c.Type = d.str()
					case "major":
						c.Major = ptr(d.int(64))
					case "minor":
						c.Minor = ptr(d.int(64))
					case "access":
						c.Access = d.str()
					default:
						return false
					}
					return true
				})
				r.Devices = append(r.Devices, c)
			})
		case "memory":
			m := &specs.LinuxMemory{}
			r.Memory = m
			d.object(func(k string) bool {
				switch k {
				case "limit":
					m.Limit = ptr(d.int(64))
				case "reservation":
					m.Reservation = ptr(d.int(64))
				case "swap":
					m.Swap = ptr(d.int(64))
				case "kernel":
					//lint:ignore SA1019 deprecated, still in specs
					m.Kernel = ptr(d.int(64))
				case "kernelTCP":
					m.KernelTCP = ptr(d.int(64))
				case "swappiness":
					m.Swappiness = ptr(d.uint(64))
				case "disableOOMKiller":
					m.DisableOOMKiller = ptr(d.bool())
				case "useHierarchy":
					m.UseHierarchy = ptr(d.bool())
				case "checkBeforeUpdate":
					m.CheckBeforeUpdate = ptr(d.bool())
				default:
					return false
				}
				return true
			})
		case "cpu":
			c := &specs.LinuxCPU{}
			r.CPU = c
			d.object(func(k string) bool {
				switch k {
				case "shares":
					c.Shares = ptr(d.uint(64))
				case "quota":
					c.Quota = ptr(d.int(64))
				case "burst":
					c.Burst = ptr(d.uint(64))
				case "period":
					c.Period = ptr(d.uint(64))
				case "realtimeRuntime":
					c.RealtimeRuntime = ptr(d.int(64))
				case "realtimePeriod":
					c.RealtimePeriod = ptr(d.uint(64))
				case "cpus":
					c.Cpus = d.str()
				case "mems":
					c.Mems = d.str()
				case "idle":
					c.Idle = ptr(d.int(64))
				default:
					return false
				}
				return true
			})
		case "pids":
			r.Pids = &specs.LinuxPids{}
			d.object(func(k string) bool {
				if k != "limit" {
					return false
				}
				r.Pids.Limit = d.int(64)
				return true
			})
		case "unified":
			r.Unified = d.strMap()
		default:
			return false
		}
		return true
	})
	return r
}

func (d *dec) seccomp() *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{}
	d.object(func(k string) bool {
		switch k {
		case "defaultAction":
			s.DefaultAction = specs.LinuxSeccompAction(d.str())
		case "defaultErrnoRet":
			s.DefaultErrnoRet = ptr(uint(d.uint(0)))
		case "architectures":
			s.Architectures = []specs.Arch{}
			d.array(func() { s.Architectures = append(s.Architectures, specs.Arch(d.str())) })
		case "flags":
			s.Flags = []specs.LinuxSeccompFlag{}
			d.array(func() { s.Flags = append(s.Flags, specs.LinuxSeccompFlag(d.str())) })
		case "listenerPath":
			s.ListenerPath = d.str()
		case "listenerMetadata":
			s.ListenerMetadata = d.str()
		case "syscalls":
			s.Syscalls = []specs.LinuxSyscall{}
			d.array(func() { s.Syscalls = append(s.Syscalls, d.syscall()) })
		default:
			return false
		}
		return true
	})
	return s
}

func (d *dec) syscall() specs.LinuxSyscall {
	var sc specs.LinuxSyscall
	d.object(func(k string) bool {
		switch k {
		case "names":
			sc.Names = d.strs()
		case "action":
			sc.Action = specs.LinuxSeccompAction(d.str())
		case "errnoRet":
			sc.ErrnoRet = ptr(uint(d.uint(0)))
		case "args":
			sc.Args = []specs.LinuxSeccompArg{}
			d.array(func() {
				var a specs.LinuxSeccompArg
				d.object(func(k string) bool {
					switch k {
					case "index":
						a.Index = uint(d.uint(0))
					case "value":
						a.Value = d.uint(64)
					case "valueTwo":
						a.ValueTwo = d.uint(64)
					case "op":
						a.Op = specs.LinuxSeccompOperator(d.str())
					default:
						return false
					}
					return true
				})
				sc.Args = append(sc.Args, a)
			})
		default:
			return false
		}
		return true
	})
	return sc
}

package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/spec"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitPath is where --init's reaper is bind-mounted in the container.
const InitPath = "/sbin/berth-init"

// defaultCaps are docker's default capabilities.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// SpecOptions is what the spec needs beyond the record.
type SpecOptions struct {
	// Rootfs is the mounted root file system (users are resolved in it).
	Rootfs string
	// InitBinary is the executable bind-mounted at InitPath for --init
	// (run as `berth-init init-reaper -- ARGS`).
	InitBinary string
	// Volumes are the container's volume mounts (VolumeSpecMounts).
	Volumes []specs.Mount
	// NetNSPath is another container's network namespace to join
	// (--network container:NAME).
	NetNSPath string
}

// Spec makes the container's OCI spec from the runtime's default, the
// record's Config and HostConfig.
func Spec(c *Container, o SpecOptions) (*specs.Spec, error) {
	s := spec.Default()
	cfg, hc := c.Config, c.HostConfig
	s.Root = &specs.Root{Path: o.Rootfs, Readonly: hc.ReadonlyRootfs}
	p := s.Process
	p.Terminal = cfg.Tty
	p.Args = append([]string{c.Path}, c.Args...)
	p.Env = Env(cfg.Env, cfg.Tty)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, errdefs.Invalid("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	creds, err := ResolveUser(o.Rootfs, cfg.User, hc.GroupAdd)
	if err != nil {
		return nil, err
	}
	p.User = specs.User{UID: creds.UID, GID: creds.GID, AdditionalGids: creds.Groups}
	p.NoNewPrivileges = slices.Contains(hc.SecurityOpt, "no-new-privileges") || slices.Contains(hc.SecurityOpt, "no-new-privileges:true")
	if hc.Init != nil && *hc.Init {
		if o.InitBinary == "" {
			return nil, errdefs.Invalid("--init: no init binary available")
		}
		p.Args = append([]string{InitPath, "init-reaper", "--"}, p.Args...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: o.InitBinary,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	s.Hostname = cfg.Hostname
	if s.Hostname == "" {
		s.Hostname = c.ID[:12]
	}
	s.Domainname = cfg.Domainname
	if len(cfg.Labels) > 0 {
		s.Annotations = map[string]string{}
		for k, v := range cfg.Labels {
			s.Annotations[k] = v
		}
	}
	s.Linux.CgroupsPath = "/berth/" + c.ID

	caps, err := capabilities(hc.Privileged, hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if s.Linux.Seccomp, err = seccompFor(hc.SecurityOpt, hc.Privileged, caps); err != nil {
		return nil, err
	}

	// /dev/shm is 64 MiB as docker's default.
	for i := range s.Mounts {
		if s.Mounts[i].Destination == "/dev/shm" {
			size := int64(64 << 20)
			if hc.ShmSize > 0 {
				size = hc.ShmSize
			}
			s.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", size)}
		}
	}
	if hc.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(s.Mounts[i].Options), func(o string) bool { return o == "ro" })
				s.Mounts[i].Options = append(s.Mounts[i].Options, "rw")
			}
		}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Linux.Devices = hostDevices()
	}

	// Namespaces: every container gets its own network namespace with only
	// loopback (bridge networking comes with the network issue), unless
	// it shares the host's.
	drop := map[specs.LinuxNamespaceType]bool{}
	if hc.NetworkMode == "host" {
		drop[specs.NetworkNamespace] = true
		if cfg.Hostname == "" {
			s.Hostname = ""
			drop[specs.UTSNamespace] = true
		}
	}
	if hc.IpcMode == "host" {
		drop[specs.IPCNamespace] = true
	}
	if hc.PidMode == "host" {
		drop[specs.PIDNamespace] = true
	}
	if hc.UTSMode == "host" {
		drop[specs.UTSNamespace] = true
		s.Hostname = ""
	}
	if hc.CgroupnsMode == "host" {
		drop[specs.CgroupNamespace] = true
	}
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return drop[n.Type] })
	if o.NetNSPath != "" {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = o.NetNSPath
			}
		}
	}

	resources(s.Linux.Resources, c)

	// Mounts: /etc files, binds, tmpfs. A user's mount on the same
	// destination as a default one replaces it.
	var extra []specs.Mount
	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", c.ResolvConfPath()}, {"/etc/hostname", c.HostnamePath()}, {"/etc/hosts", c.HostsPath()},
	} {
		extra = append(extra, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate"}})
	}
	for _, b := range hc.Binds {
		if IsVolumeBind(b) {
			continue // in o.Volumes
		}
		m, err := ParseBind(b)
		if err != nil {
			return nil, err
		}
		extra = append(extra, m)
	}
	for _, hm := range hc.Mounts {
		if hm.Type == mount.TypeVolume {
			continue // in o.Volumes
		}
		m, err := FromMount(hm)
		if err != nil {
			return nil, err
		}
		extra = append(extra, m)
	}
	for _, b := range c.InheritedBinds {
		extra = append(extra, b.SpecMount())
	}
	extra = append(extra, o.Volumes...)
	for dst, opts := range hc.Tmpfs {
		if !filepath.IsAbs(dst) {
			return nil, errdefs.Invalid("invalid tmpfs destination %q: not an absolute path", dst)
		}
		o := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			o = append(o, strings.Split(opts, ",")...)
		}
		extra = append(extra, specs.Mount{Destination: filepath.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: o})
	}
	for _, m := range extra {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(d specs.Mount) bool { return d.Destination == m.Destination })
	}
	// Parents before children (a volume at /data under a bind at
	// /data/sub), as docker orders them.
	slices.SortStableFunc(extra, func(a, b specs.Mount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	s.Mounts = append(s.Mounts, extra...)
	return s, nil
}

// Env is the process environment: PATH when missing, TERM with a tty.
func Env(env []string, tty bool) []string {
	out := slices.Clone(env)
	has := func(k string) bool {
		return slices.ContainsFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
	}
	if !has("PATH") {
		out = append(out, "PATH="+DefaultPath)
	}
	if tty && !has("TERM") {
		out = append(out, "TERM=xterm")
	}
	return out
}

// MergeEnv overlays create-time variables on the image's, by name.
func MergeEnv(image, create []string) []string {
	out := slices.Clone(image)
	for _, e := range create {
		k, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(o string) bool { ok, _, _ := strings.Cut(o, "="); return ok == k })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// ParseBind parses docker's -v "src:dst[:opts]" with an absolute host
// path (ParseVolumeBind reads named volumes).
func ParseBind(b string) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return specs.Mount{}, errdefs.Invalid("invalid volume specification: '%s'", b)
	}
	src, dst := parts[0], parts[1]
	if !filepath.IsAbs(src) {
		return specs.Mount{}, errdefs.NotImplemented("named volumes are not supported yet: '%s'", b)
	}
	if !filepath.IsAbs(dst) || filepath.Clean(dst) == "/" {
		return specs.Mount{}, errdefs.Invalid("invalid volume specification: '%s': invalid mount config: destination must be an absolute path other than /", b)
	}
	if _, err := os.Stat(src); os.IsNotExist(err) {
		// docker makes a missing bind source.
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("bind source %s: %w", src, err)
		}
	}
	opts := []string{"rbind"}
	prop := "rprivate"
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro", "rw":
				opts = append(opts, o)
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				prop = o
			case "z", "Z", "nocopy", "":
			default:
				return specs.Mount{}, errdefs.Invalid("invalid mode: %s", o)
			}
		}
	}
	return specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: filepath.Clean(src), Options: append(opts, prop)}, nil
}

// FromMount turns a --mount of type bind or tmpfs into an OCI mount
// (VolumeFromMount reads volumes). A bind's source must exist, as
// docker requires for --mount.
func FromMount(m mount.Mount) (specs.Mount, error) {
	if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
		return specs.Mount{}, errdefs.Invalid("invalid mount config: invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	dst := filepath.Clean(m.Target)
	switch m.Type {
	case mount.TypeBind:
		if !filepath.IsAbs(m.Source) {
			return specs.Mount{}, errdefs.Invalid("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return specs.Mount{}, errdefs.Invalid("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		prop := "rprivate"
		if m.BindOptions != nil && m.BindOptions.Propagation != "" {
			prop = string(m.BindOptions.Propagation)
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: filepath.Clean(m.Source), Options: append(opts, prop)}, nil
	case mount.TypeTmpfs:
		if m.Source != "" {
			return specs.Mount{}, errdefs.Invalid("invalid mount config for type \"tmpfs\": source must not be specified")
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if t := m.TmpfsOptions; t != nil {
			if t.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", t.SizeBytes))
			}
			if t.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", t.Mode.Perm()))
			}
		}
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	}
	return specs.Mount{}, errdefs.NotImplemented("mounts of type %q are not supported yet", m.Type)
}

func resources(r *specs.LinuxResources, c *Container) {
	hc := c.HostConfig
	if hc.Memory > 0 || hc.MemorySwap != 0 || hc.MemoryReservation > 0 {
		m := &specs.LinuxMemory{}
		if hc.Memory > 0 {
			m.Limit = ptr(hc.Memory)
			swap := hc.MemorySwap
			if swap == 0 {
				swap = 2 * hc.Memory // docker: swap as much as memory
			}
			m.Swap = ptr(swap)
		}
		if hc.MemoryReservation > 0 {
			m.Reservation = ptr(hc.MemoryReservation)
		}
		r.Memory = m
	}
	if hc.CPUShares > 0 || hc.NanoCPUs > 0 || hc.CPUQuota > 0 || hc.CpusetCpus != "" || hc.CpusetMems != "" {
		cpu := &specs.LinuxCPU{Cpus: hc.CpusetCpus, Mems: hc.CpusetMems}
		if hc.CPUShares > 0 {
			cpu.Shares = ptr(uint64(hc.CPUShares))
		}
		if hc.NanoCPUs > 0 {
			period := uint64(100000)
			cpu.Period = &period
			cpu.Quota = ptr(hc.NanoCPUs * int64(period) / 1e9)
		} else if hc.CPUQuota > 0 {
			cpu.Quota = ptr(hc.CPUQuota)
			if hc.CPUPeriod > 0 {
				cpu.Period = ptr(uint64(hc.CPUPeriod))
			}
		}
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: *hc.PidsLimit}
	}
	if hc.BlkioWeight > 0 {
		r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(hc.BlkioWeight)}
	}
}

func ptr[T any](v T) *T { return &v }

// capabilities is docker's rule: defaults, minus drops, plus adds ("ALL"
// in either); privileged has every capability the kernel knows.
func capabilities(privileged bool, add, drop []string) ([]string, error) {
	if privileged {
		return allCaps(), nil
	}
	norm := func(c string) string {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	all := allCaps()
	caps := slices.Clone(defaultCaps)
	for _, d := range drop {
		d = norm(d)
		if d == "ALL" {
			caps = nil
			continue
		}
		if !slices.Contains(capNames, d) {
			return nil, errdefs.Invalid("unknown capability drop: %q", d)
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == d })
	}
	for _, a := range add {
		a = norm(a)
		if a == "ALL" {
			caps = all
			continue
		}
		if !slices.Contains(capNames, a) {
			return nil, errdefs.Invalid("unknown capability: %q", a)
		}
		if !slices.Contains(caps, a) {
			caps = append(caps, a)
		}
	}
	return caps, nil
}

var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// AllCaps is what --privileged grants (for execs too).
func AllCaps() []string { return allCaps() }

// allCaps is every capability the daemon may hand on: those in its own
// bounding set (a daemon in a restricted environment cannot grant more,
// and the runtime refuses to try), as dockerd's privileged containers get.
func allCaps() []string {
	var bnd uint64 = 1<<len(capNames) - 1
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					bnd = n
				}
			}
		}
	}
	var out []string
	for i, name := range capNames {
		if bnd&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// hostDevices lists the host's /dev device nodes for --privileged.
func hostDevices() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	_ = filepath.WalkDir("/dev", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch path {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if path == "/dev/console" || path == "/dev/ptmx" {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil {
			return nil
		}
		typ := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		mode := os.FileMode(st.Mode & 0o777)
		out = append(out, specs.LinuxDevice{Path: path, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: ptr(st.Uid), GID: ptr(st.Gid)})
		return nil
	})
	return out
}

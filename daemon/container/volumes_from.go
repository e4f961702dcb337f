package container

import (
	"path/filepath"
	"strings"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InheritedBind is a host bind a container got from another one with
// --volumes-from: dockerd passes on the source's binds (from -v and
// --mount type=bind, and those it inherited itself) with its volumes, but
// not its tmpfs mounts.
type InheritedBind struct {
	Source      string
	Destination string
	RW          bool
	Propagation string `json:",omitempty"`
}

// SpecMount is the bind's OCI mount.
func (b InheritedBind) SpecMount() specs.Mount {
	opts := []string{"rbind", "rw"}
	if !b.RW {
		opts[1] = "ro"
	}
	prop := b.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	return specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: append(opts, prop)}
}

// HostBinds are the host binds a container has, as --volumes-from passes
// them on: its -v and --mount binds and those it inherited.
func HostBinds(hc *containertypes.HostConfig, inherited []InheritedBind) []InheritedBind {
	var out []InheritedBind
	if hc != nil {
		for _, b := range hc.Binds {
			if IsVolumeBind(b) {
				continue
			}
			m, err := ParseBind(b)
			if err != nil {
				continue
			}
			out = append(out, fromSpec(m))
		}
		for _, hm := range hc.Mounts {
			if hm.Type != mount.TypeBind {
				continue
			}
			m, err := FromMount(hm)
			if err != nil {
				continue
			}
			out = append(out, fromSpec(m))
		}
	}
	return append(out, inherited...)
}

func fromSpec(m specs.Mount) InheritedBind {
	b := InheritedBind{Source: m.Source, Destination: m.Destination, RW: true}
	for _, o := range m.Options {
		switch o {
		case "ro":
			b.RW = false
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			b.Propagation = o
		}
	}
	return b
}

// KeepInherited drops the inherited binds whose destination the
// container's own binds, mounts, tmpfs or volumes take.
func KeepInherited(hc *containertypes.HostConfig, vols []MountPoint, binds []InheritedBind) []InheritedBind {
	taken := map[string]bool{}
	for _, b := range hc.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			taken[filepath.Clean(parts[1])] = true
		}
	}
	for _, m := range hc.Mounts {
		taken[filepath.Clean(m.Target)] = true
	}
	for d := range hc.Tmpfs {
		taken[filepath.Clean(d)] = true
	}
	for _, v := range vols {
		taken[v.Destination] = true
	}
	var out []InheritedBind
	for _, b := range binds {
		if !taken[b.Destination] {
			taken[b.Destination] = true
			out = append(out, b)
		}
	}
	return out
}

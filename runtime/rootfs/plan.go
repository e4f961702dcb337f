package rootfs

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What Prepare would do, for a caller that compiles it into steps for
// another executor (the runtime's C init): the option parsing, the default
// devices and the cgroup hierarchies, so both executors read the spec alike.

// MountOptions is a spec mount's option list as Prepare reads it.
type MountOptions struct {
	Flags            uintptr // MS_* to set
	AttrSet, AttrClr uint64  // the same as MOUNT_ATTR_* (bind mounts)
	// Prop are the propagation changes (MS_PRIVATE|MS_REC, ...), in order.
	Prop []uintptr
	// Special says the options hold what only Prepare itself handles:
	// recursive attributes, tmpcopyup, idmapped binds.
	Special bool
	Data    string // file system data
}

// ParseMountOptions sorts a spec mount's options as Prepare does.
func ParseMountOptions(options []string) MountOptions {
	o := parseOptions(options)
	return MountOptions{
		Flags: o.flags, AttrSet: o.attrSet, AttrClr: o.attrClr, Prop: o.prop,
		Special: o.hasRec() || o.tmpcopyup || o.idmap || o.ridmap,
		Data:    o.dataString(),
	}
}

// DefaultDevices are the devices Prepare makes in every container's /dev
// besides the spec's (whose entries override them).
func DefaultDevices() []specs.LinuxDevice { return append([]specs.LinuxDevice(nil), defaultDevices...) }

// DevIsBind reports whether the spec binds /dev from the host, which
// Prepare then leaves alone.
func DevIsBind(spec *specs.Spec) bool { return devIsBind(spec) }

// CgroupHierarchy is one host cgroup hierarchy as Prepare shows it in a
// container of a v1 or hybrid host: a directory Name in a tmpfs at the
// mount's destination, bound from the host's Mountpoint (whose mountinfo
// root is Root) joined with the process's own cgroup in the hierarchy that
// /proc/self/cgroup lists with Controllers.
type CgroupHierarchy struct {
	Name, Mountpoint, Root, FSType string
	Controllers                    []string // nil for cgroup2
}

// CgroupHierarchies lists the host's hierarchies outside root.
func CgroupHierarchies(root string) ([]CgroupHierarchy, error) {
	hier, ok := sysCgroupMounts(root, nil)
	if !ok {
		var err error
		if hier, err = cgroupMounts(root); err != nil {
			return nil, err
		}
	}
	out := make([]CgroupHierarchy, 0, len(hier))
	for _, h := range hier {
		name := filepath.Base(h.Mountpoint)
		if name == "cgroup" || name == "." || name == "/" {
			name = h.FSType
		}
		c := CgroupHierarchy{Name: name, Mountpoint: h.Mountpoint, Root: h.Root, FSType: h.FSType}
		if h.FSType == "cgroup" {
			c.Controllers = cgroupControllers(h)
		}
		out = append(out, c)
	}
	return out, nil
}

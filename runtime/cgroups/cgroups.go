// Package cgroups places container processes in control groups and applies
// OCI resource limits to them, on cgroup v1, v2 and hybrid hosts.
//
// CONTRACT (used by package runtime; keep the exported API stable):
//
//	m, err := cgroups.New(cgroupsPath, id, resources) // resolves paths, creates nothing
//	m.Apply(pid)        // create the cgroup(s); pid > 0 also moves pid in
//	m.Set(resources)    // write limits (also used by `update`)
//	m.Freeze(); m.Thaw(); m.Frozen() // freezer, for pause/resume
//	m.Pids()            // every pid in the cgroup(s), recursively
//	m.Stats()           // for `events --stats`
//	m.Destroy()         // remove the cgroup(s); tolerate already-gone
//	m.Paths()           // subsystem -> absolute dir ("" key for v2 unified)
//	m.IntoCgroupFD()    // an O_PATH fd of the v2 cgroup dir for CLONE_INTO_CGROUP, or -1
//	st := m.State()     // serializable State, kept in the container's state
//	m, err = cgroups.Load(st) // in a later process
//
// A Manager must be reconstructible from a saved State() so a later `berth runtime
// kill/delete/pause` process can act on a container another process created.
//
// The heavy lifting is done by github.com/opencontainers/cgroups (fs for v1,
// fs2 for v2, devices for eBPF). Written here by hand, because the library
// gets them wrong or lacks them: the v2 half of a hybrid host (fs2 assumes v2
// is mounted at /sys/fs/cgroup), v1 device rules (the library reorders them;
// OCI requires the listed order), memory.kmem.tcp, and turning the OOM killer
// back on.
//
// Path semantics (OCI): an absolute cgroupsPath is taken relative to each
// hierarchy's root; a relative one relative to the calling process's own
// cgroup in that hierarchy (on v2, like runc, relative to its parent, since a
// populated cgroup cannot have controller-enabled children); an empty one
// means /berth/<id>.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // registers v1 and eBPF (v2) device controllers
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/errdefs"
)

// DefaultParent is where containers without a cgroupsPath go.
const DefaultParent = "/berth"

// Mode is the cgroup layout of the host.
type Mode string

const (
	// ModeV1 has only v1 hierarchies.
	ModeV1 Mode = "v1"
	// ModeHybrid has v1 hierarchies plus cgroup2 at /sys/fs/cgroup/unified
	// holding whatever controllers v1 does not (hugetlb on some hosts).
	ModeHybrid Mode = "hybrid"
	// ModeV2 is the unified hierarchy alone at /sys/fs/cgroup.
	ModeV2 Mode = "v2"
)

// HostMode reports the host's cgroup layout.
func HostMode() Mode {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return ModeV2
	case cgroups.IsCgroup2HybridMode():
		return ModeHybrid
	}
	return ModeV1
}

// Manager controls the cgroup(s) of one container.
type Manager interface {
	// Apply creates the cgroup(s) and installs the device policy given to New
	// (so the cgroup is never open before Set); pid > 0 is then moved in,
	// pid <= 0 only creates. Calling it again is harmless.
	Apply(pid int) error
	// Set writes limits. nil fields (and a nil Devices list) leave the
	// current value alone, so `update` can pass only what changes.
	Set(r *specs.LinuxResources) error
	Freeze() error
	Thaw() error
	// Frozen reports whether the freezer holds the cgroup frozen.
	Frozen() (bool, error)
	// Pids lists every process in the cgroup(s), including sub-cgroups.
	Pids() ([]int, error)
	Stats() (*Stats, error)
	// Destroy removes the cgroup(s). Already-gone is fine; remaining
	// processes make it fail (it kills nothing).
	Destroy() error
	// Paths maps controller name to absolute directory; "" is the v2 dir.
	Paths() map[string]string
	// IntoCgroupFD opens the v2 cgroup dir (O_PATH) for CLONE_INTO_CGROUP
	// (SysProcAttr.CgroupFD with UseCgroupFD); the caller closes it. -1 on
	// v1 and hybrid hosts (the process must be moved into v1 hierarchies
	// after start anyway) or on error.
	IntoCgroupFD() int
	// CreateSteps lists what Apply(-1) does for another process to do,
	// when it can (steps.go).
	CreateSteps() ([]Step, bool)
	// State returns what a later process needs to Load this manager.
	State() State
}

// State is the serializable form of a Manager.
type State struct {
	Mode Mode `json:"mode"`
	// Paths maps controller to absolute directory, as Manager.Paths.
	Paths map[string]string `json:"paths"`
	// Devices is the device policy Apply installs, in spec form.
	Devices []specs.LinuxDeviceCgroup `json:"devices,omitempty"`
}

// New resolves where the container's cgroups go. It creates nothing.
// r's device rules (plus DefaultDevices) become the policy Apply installs.
func New(cgroupsPath, id string, r *specs.LinuxResources) (Manager, error) {
	if cgroupsPath == "" {
		if id == "" || strings.ContainsAny(id, "/") || id == "." || id == ".." {
			return nil, errdefs.Invalid("cgroups: bad container id %q", id)
		}
		cgroupsPath = filepath.Join(DefaultParent, id)
	}
	if strings.Contains(cgroupsPath, ":") {
		return nil, errdefs.NotImplemented("cgroups: systemd cgroupsPath %q (slice:prefix:name) is not supported; use a path", cgroupsPath)
	}
	if clean := filepath.Clean("/" + cgroupsPath); clean == "/" {
		return nil, errdefs.Invalid("cgroups: cgroupsPath %q resolves to a hierarchy root", cgroupsPath)
	}
	var devs []specs.LinuxDeviceCgroup
	if r != nil {
		devs = r.Devices
	}
	st := State{Mode: HostMode(), Devices: devs}
	cg := &cgroups.Cgroup{Path: cgroupsPath, Resources: &cgroups.Resources{}}
	if st.Mode == ModeV2 {
		m, err := fs2.NewManager(cg, "")
		if err != nil {
			return nil, fmt.Errorf("cgroups: resolve %q: %w", cgroupsPath, err)
		}
		st.Paths = map[string]string{"": m.Path("")}
	} else if paths, ok := absoluteV1Paths(cgroupsPath); ok {
		st.Paths = paths
	} else {
		// The library resolves v1 paths, including split cpu/cpuacct mounts
		// and relative paths from our own cgroup in each hierarchy.
		m, err := fs.NewManager(cg, nil)
		if err != nil {
			return nil, fmt.Errorf("cgroups: resolve %q: %w", cgroupsPath, err)
		}
		st.Paths = m.GetPaths()
		if st.Mode != ModeHybrid {
			delete(st.Paths, "")
		}
	}
	return Load(st)
}

// Load reconstructs a Manager from a saved State.
func Load(st State) (Manager, error) {
	if len(st.Paths) == 0 {
		return nil, errdefs.Invalid("cgroups: saved state has no paths")
	}
	paths := make(map[string]string, len(st.Paths))
	for k, v := range st.Paths {
		if !filepath.IsAbs(v) || !strings.HasPrefix(filepath.Clean(v), "/sys/fs/cgroup/") {
			return nil, errdefs.Invalid("cgroups: saved path %q for %q is not under /sys/fs/cgroup", v, k)
		}
		paths[k] = filepath.Clean(v)
	}
	st.Paths = paths
	switch st.Mode {
	case ModeV2:
		return newV2(st)
	case ModeV1, ModeHybrid:
		return newV1(st)
	}
	return nil, errdefs.Invalid("cgroups: unknown mode %q in saved state", st.Mode)
}

// DefaultDevices are always allowed after the spec's own rules: the OCI
// default devices, which the runtime creates in every container and which
// must therefore be usable.
var DefaultDevices = []specs.LinuxDeviceCgroup{
	charDev(1, 3),    // null
	charDev(1, 5),    // zero
	charDev(1, 7),    // full
	charDev(1, 8),    // random
	charDev(1, 9),    // urandom
	charDev(5, 0),    // tty
	charDev(5, 1),    // console
	charDev(5, 2),    // ptmx
	charDev(136, -1), // pts/*
}

func charDev(major, minor int64) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
	if minor >= 0 {
		d.Minor = &minor
	}
	return d
}

// writeErr gives kernel refusals a cause a user can act on.
func writeErr(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		return errdefs.Mark(errdefs.KindForbidden, fmt.Errorf("cgroups: %s: %w (the kernel refused; a capability such as CAP_SYS_ADMIN or CAP_SYS_RESOURCE may be missing, or the cgroup is not delegated)", what, err))
	case errors.Is(err, os.ErrNotExist):
		return errdefs.NotImplemented("cgroups: %s: not supported by this kernel or controller not enabled: %v", what, err)
	}
	return fmt.Errorf("cgroups: %s: %w", what, err)
}

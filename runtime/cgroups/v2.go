package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// v2Manager is a cgroup v2 (unified-only) host: all of it is the library's.
type v2Manager struct {
	st  State
	dir string
	lib *fs2.Manager
}

func newV2(st State) (*v2Manager, error) {
	dir := st.Paths[""]
	if dir == "" || len(st.Paths) != 1 {
		return nil, errdefs.Invalid("cgroups: v2 state must have exactly the \"\" path")
	}
	lib, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		return nil, err
	}
	return &v2Manager{st: st, dir: dir, lib: lib}, nil
}

func (m *v2Manager) Apply(pid int) error {
	rules, err := deviceRules(m.st.Devices)
	if err != nil {
		return err
	}
	// Not lib.Apply: that moves pid in before the device filter exists.
	cg := &cgroups.Cgroup{Resources: &cgroups.Resources{}}
	if err := fs2.CreateCgroupPath(m.dir, cg); err != nil {
		return writeErr("create "+m.dir, err)
	}
	if err := cgroups.DevicesSetV2(m.dir, &cgroups.Resources{Devices: rules}); err != nil {
		return writeErr("device filter", err)
	}
	if pid > 0 {
		if err := cgroups.WriteCgroupProc(m.dir, pid); err != nil {
			return writeErr("join "+m.dir, err)
		}
	}
	return nil
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := networkErr(r, nil); err != nil {
		return err
	}
	lib, err := toLib(r)
	if err != nil {
		return err
	}
	// memory.kmem.tcp and the OOM-killer switch have no v2 file; ignored
	// like runc does (memory.oom.group is something else).
	if r.Devices != nil {
		if lib.Devices, err = deviceRules(r.Devices); err != nil {
			return err
		}
		lib.SkipDevices = false
	}
	if err := m.lib.Set(lib); err != nil {
		return writeErr("set v2 limits", err)
	}
	if r.Devices != nil {
		m.st.Devices = r.Devices
	}
	return nil
}

func (m *v2Manager) Freeze() error { return writeErr("freeze", m.lib.Freeze(cgroups.Frozen)) }
func (m *v2Manager) Thaw() error   { return writeErr("thaw", m.lib.Freeze(cgroups.Thawed)) }

func (m *v2Manager) Frozen() (bool, error) {
	s, err := m.lib.GetFreezerState()
	if err != nil {
		return false, writeErr("freezer state", err)
	}
	return s == cgroups.Frozen, nil
}

func (m *v2Manager) Pids() ([]int, error) { return allPids(m.st.Paths) }

func (m *v2Manager) Stats() (*Stats, error) {
	ls, err := m.lib.Stats(nil)
	if err != nil {
		return nil, fmt.Errorf("cgroups: stats: %w", err)
	}
	return fromLib(ls), nil
}

func (m *v2Manager) Destroy() error {
	if err := refuseBusy(m.st.Paths); err != nil {
		return err
	}
	if err := cgroups.RemovePath(m.dir); err != nil {
		return fmt.Errorf("cgroups: destroy: %w", err)
	}
	return nil
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }
func (m *v2Manager) IntoCgroupFD() int        { return openCgroupFD(m.dir) }
func (m *v2Manager) State() State             { return cloneState(m.st) }

func openCgroupFD(dir string) int {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// hybridRoot is where a hybrid host mounts cgroup2.
const hybridRoot = "/sys/fs/cgroup/unified"

// createUnified makes dir in the hybrid v2 hierarchy, which tracks the
// container's processes there as runc does. It enables no controller:
// enabling one in the hybrid root changes the host for every other tool
// (crun, for one, refuses a hybrid host whose v2 half has controllers), so
// that waits until a limit needs it (enableUnified).
// fs2.CreateCgroupPath assumes v2 at /sys/fs/cgroup, so it cannot do this.
func createUnified(dir string) error {
	rel, err := filepath.Rel(hybridRoot, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return errdefs.Invalid("cgroups: %s is not below %s", dir, hybridRoot)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return writeErr("create "+dir, err)
	}
	return nil
}

// enableUnified enables, on each ancestor of dir in the hybrid v2 tree, the
// controllers the v2 root offers (those v1 lacks, e.g. hugetlb), for the
// limits that need them.
func enableUnified(dir string) error {
	rel, err := filepath.Rel(hybridRoot, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return errdefs.Invalid("cgroups: %s is not below %s", dir, hybridRoot)
	}
	avail, err := cgroups.ReadFile(hybridRoot, "cgroup.controllers")
	if err != nil {
		return writeErr("read v2 controllers", err)
	}
	cur := hybridRoot
	for _, elem := range strings.Split(rel, "/") {
		// Best effort: a populated ancestor refuses (EBUSY); Set then
		// reports the missing controller files for limits that need them.
		for _, c := range strings.Fields(avail) {
			_ = cgroups.WriteFile(cur, "cgroup.subtree_control", "+"+c)
		}
		cur = filepath.Join(cur, elem)
	}
	return nil
}

// disableUnified undoes enableUnified for ancestors of a removed dir that
// have no child cgroups left, below the hybrid root. The root itself is left
// alone: other cgroups may rely on what it enables.
func disableUnified(dir string) {
	for cur := filepath.Dir(dir); strings.HasPrefix(cur, hybridRoot+"/"); cur = filepath.Dir(cur) {
		ents, err := os.ReadDir(cur)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.IsDir() {
				return
			}
		}
		on, err := cgroups.ReadFile(cur, "cgroup.subtree_control")
		if err != nil {
			return
		}
		for _, c := range strings.Fields(on) {
			_ = cgroups.WriteFile(cur, "cgroup.subtree_control", "-"+c)
		}
	}
}

// hybridV2 is a library manager for the hybrid v2 dir. Its Set and Stats
// only touch files for the resources asked of them, which is all we do.
func hybridV2(dir string) (*fs2.Manager, error) {
	return fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
}

func setHybridV2(dir string, huge []*cgroups.HugepageLimit, unified map[string]string) error {
	if len(huge) == 0 && len(unified) == 0 {
		return nil
	}
	if err := enableUnified(dir); err != nil {
		return err
	}
	m, err := hybridV2(dir)
	if err != nil {
		return err
	}
	err = m.Set(&cgroups.Resources{SkipDevices: true, HugetlbLimit: huge, Unified: unified})
	if err != nil && len(huge) > 0 && !cgroups.PathExists(filepath.Join(dir, "hugetlb."+huge[0].Pagesize+".max")) {
		return errdefs.NotImplemented("cgroups: hugepage limits: hugetlb controller not enabled in %s (page size %q, or a populated ancestor): %v", dir, huge[0].Pagesize, err)
	}
	return writeErr("set hybrid v2 limits", err)
}

func hybridV2Stats(dir string, st *Stats) error {
	m, err := hybridV2(dir)
	if err != nil {
		return err
	}
	if !cgroups.PathExists(dir) {
		return nil
	}
	hasHuge := false
	if c, err := cgroups.ReadFile(dir, "cgroup.controllers"); err == nil {
		hasHuge = slices.Contains(strings.Fields(c), "hugetlb")
	}
	if !hasHuge {
		return nil
	}
	ls, err := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.HugeTLB})
	if err != nil {
		return fmt.Errorf("cgroups: hugetlb stats: %w", err)
	}
	for size, h := range ls.HugetlbStats {
		st.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return nil
}

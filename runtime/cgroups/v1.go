package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// v1Manager drives the v1 hierarchies through the library and, on a hybrid
// host, the cgroup2 dir under /sys/fs/cgroup/unified by hand.
type v1Manager struct {
	st      State
	lib     *fs.Manager
	unified string // hybrid only
}

func newV1(st State) (*v1Manager, error) {
	paths := maps.Clone(st.Paths)
	unified := paths[""]
	delete(paths, "")
	if st.Mode == ModeV1 && unified != "" {
		return nil, errdefs.Invalid("cgroups: v1 state has a unified path")
	}
	if paths["devices"] == "" {
		return nil, errdefs.Unavailable("cgroups: no devices cgroup; refusing to run containers without one")
	}
	// SkipDevices stays false so Apply joins the devices cgroup; the
	// rules themselves are written by writeV1Devices.
	lib, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return nil, err
	}
	return &v1Manager{st: st, lib: lib, unified: unified}, nil
}

func (m *v1Manager) Apply(pid int) error {
	if pid <= 0 {
		pid = -1 // the library's "create only"
	}
	// The device policy goes in before the process does.
	rules, err := deviceRules(m.st.Devices)
	if err != nil {
		return err
	}
	dev := m.st.Paths["devices"]
	if err := mkdirCgroup(dev); err != nil {
		return writeErr("create devices cgroup", err)
	}
	if err := writeV1Devices(dev, rules); err != nil {
		return err
	}
	if pid > 0 {
		if err := m.lib.Apply(pid); err != nil {
			return writeErr("join v1 cgroups", err)
		}
	} else if err := m.create(); err != nil {
		return err
	}
	if m.unified != "" {
		if err := createUnified(m.unified); err != nil {
			return err
		}
		if err := cgroups.WriteCgroupProc(m.unified, pid); err != nil {
			return writeErr("join "+m.unified, err)
		}
	}
	return nil
}

// create makes the cgroup in every hierarchy, as the library's Apply(-1)
// does with no resources (a mkdir each, and cpuset's cpus and mems filled
// in), with a syscall per hierarchy where the library spends four or more.
func (m *v1Manager) create() error {
	for k, dir := range m.st.Paths {
		switch k {
		case "", "devices": // the hybrid v2 half is made by Apply; devices already
		case "cpuset":
			if err := createCpuset(dir); err != nil {
				return writeErr("create cpuset cgroup", err)
			}
		default:
			if err := mkdirCgroup(dir); err != nil {
				return writeErr("create "+k+" cgroup", err)
			}
		}
	}
	return nil
}

// mkdirCgroup makes dir, and its parents only when they are missing.
func mkdirCgroup(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	if errors.Is(err, unix.ENOENT) {
		return os.MkdirAll(dir, 0o755)
	}
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	return &os.PathError{Op: "mkdir", Path: dir, Err: err}
}

// createCpuset makes a cpuset cgroup, which cannot take a task while its
// cpus or mems are empty, as they are in a new one: they are copied from
// the parent. The library's way (read every level's, fill in the empty
// ones up the tree) is kept for the rest: a cgroup that was there already,
// a parent without them.
func createCpuset(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	if err == nil {
		parent := filepath.Dir(dir)
		cpus, err1 := cgroups.ReadFile(parent, "cpuset.cpus")
		mems, err2 := cgroups.ReadFile(parent, "cpuset.mems")
		if err1 == nil && err2 == nil && strings.TrimSpace(cpus) != "" && strings.TrimSpace(mems) != "" {
			if err := cgroups.WriteFile(dir, "cpuset.cpus", cpus); err != nil {
				return err
			}
			return cgroups.WriteFile(dir, "cpuset.mems", mems)
		}
	} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return (&fs.CpusetGroup{}).ApplyDir(dir, &cgroups.Resources{}, -1)
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := networkErr(r, m.st.Paths); err != nil {
		return err
	}
	lib, err := toLib(r)
	if err != nil {
		return err
	}
	// Controllers v1 lacks here: hugetlb may live in the hybrid v2 half;
	// unified keys only make sense there.
	var v2Huge []*cgroups.HugepageLimit
	if len(lib.HugetlbLimit) > 0 && m.st.Paths["hugetlb"] == "" {
		if m.unified == "" {
			return errdefs.NotImplemented("cgroups: hugepage limits: no hugetlb controller on this host")
		}
		v2Huge, lib.HugetlbLimit = lib.HugetlbLimit, nil
	}
	unified := lib.Unified
	lib.Unified = nil
	if len(unified) > 0 && m.unified == "" {
		return errdefs.Invalid("cgroups: unified resources need cgroup v2; this host is v1")
	}
	if len(lib.Rdma) > 0 && m.st.Paths["rdma"] == "" {
		return errdefs.NotImplemented("cgroups: rdma limits: no rdma controller on this host")
	}
	if err := m.lib.Set(lib); err != nil {
		if errors.Is(err, unix.EINVAL) && (lib.CpuRtRuntime != 0 || lib.CpuRtPeriod != 0) {
			err = fmt.Errorf("%w (realtime runtime must fit within the parent cgroup's cpu.rt_runtime_us, which is 0 unless set)", err)
		}
		return writeErr("set v1 limits", err)
	}
	if mem := r.Memory; mem != nil {
		dir := m.st.Paths["memory"]
		// The library never turns the OOM killer back on.
		if mem.DisableOOMKiller != nil && !*mem.DisableOOMKiller {
			if err := cgroups.WriteFile(dir, "memory.oom_control", "0"); err != nil {
				return writeErr("memory.oom_control", err)
			}
		}
		// Deprecated but still in v1 kernels; the library dropped it.
		if mem.KernelTCP != nil {
			if err := cgroups.WriteFile(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10)); err != nil {
				return writeErr("memory.kmem.tcp.limit_in_bytes", err)
			}
		}
	}
	if r.Devices != nil {
		rules, err := deviceRules(r.Devices)
		if err != nil {
			return err
		}
		if err := writeV1Devices(m.st.Paths["devices"], rules); err != nil {
			return err
		}
		m.st.Devices = r.Devices
	}
	return setHybridV2(m.unified, v2Huge, unified)
}

// writeV1Devices installs rules in their listed order (OCI requires it, and
// the kernel's devices.list keeps it), from a deny-all start. The library's
// minimal-transition writer sorts them instead.
//
// Each file is opened once: the kernel takes one rule per write.
func writeV1Devices(dir string, rules []*devconfig.Rule) error {
	open := map[string]*os.File{}
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	write := func(r *devconfig.Rule) error {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		line := v1DeviceLine(r)
		f := open[file]
		if f == nil {
			var err error
			if f, err = cgroups.OpenFile(dir, file, os.O_WRONLY); err != nil {
				return writeErr(fmt.Sprintf("%s %q", file, line), err)
			}
			open[file] = f
		}
		if _, err := f.WriteString(line); err != nil {
			return writeErr(fmt.Sprintf("%s %q", file, line), err)
		}
		return nil
	}
	if err := write(&devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm"}); err != nil {
		return err
	}
	for _, r := range rules {
		if err := write(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) Freeze() error { return m.freeze(cgroups.Frozen) }
func (m *v1Manager) Thaw() error   { return m.freeze(cgroups.Thawed) }

func (m *v1Manager) freeze(s cgroups.FreezerState) error {
	if m.st.Paths["freezer"] == "" {
		return errdefs.NotImplemented("cgroups: no freezer cgroup on this host")
	}
	return writeErr("freezer", m.lib.Freeze(s))
}

func (m *v1Manager) Frozen() (bool, error) {
	s, err := m.lib.GetFreezerState()
	if err != nil {
		return false, writeErr("freezer state", err)
	}
	return s == cgroups.Frozen, nil
}

func (m *v1Manager) Pids() ([]int, error) { return allPids(m.st.Paths) }

func (m *v1Manager) Stats() (*Stats, error) {
	ls, err := m.lib.Stats(nil)
	if err != nil {
		return nil, fmt.Errorf("cgroups: stats: %w", err)
	}
	st := fromLib(ls)
	if m.unified != "" && m.st.Paths["hugetlb"] == "" {
		if err := hybridV2Stats(m.unified, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (m *v1Manager) Destroy() error {
	if err := removeDirs(m.st.Paths); err != nil {
		return err
	}
	if m.unified != "" {
		disableUnified(m.unified)
	}
	return nil
}

func (m *v1Manager) Paths() map[string]string { return maps.Clone(m.st.Paths) }
func (m *v1Manager) IntoCgroupFD() int        { return -1 }
func (m *v1Manager) State() State             { return cloneState(m.st) }

func cloneState(st State) State {
	st.Paths = maps.Clone(st.Paths)
	st.Devices = slices.Clone(st.Devices)
	return st
}

// removeDirs removes the cgroup dirs, and their sub-cgroups, in one pass
// with plain rmdir: the common case (an empty cgroup) costs one syscall per
// hierarchy. Only when a dir is busy do we look for processes (Destroy kills
// nothing) or fall back to the library's recursive removal, which retries.
func removeDirs(paths map[string]string) error {
	var busy map[string]string
	for k, dir := range paths {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			continue
		}
		if busy == nil {
			busy = map[string]string{}
		}
		busy[k] = dir
	}
	if busy == nil {
		return nil
	}
	if err := refuseBusy(busy); err != nil {
		return err
	}
	// Sub-cgroups (made inside the container) keep a dir busy.
	if err := cgroups.RemovePaths(busy); err != nil {
		return fmt.Errorf("cgroups: destroy: %w", err)
	}
	return nil
}

// refuseBusy fails fast (rmdir would retry for seconds) when processes
// remain: Destroy kills nothing.
func refuseBusy(paths map[string]string) error {
	if pids, err := allPids(paths); err == nil && len(pids) > 0 {
		return errdefs.Conflict("cgroups: destroy: %d process(es) still in the cgroup, e.g. pid %d", len(pids), pids[0])
	}
	return nil
}

// allPids unions the processes of every hierarchy: a process moved into
// only some of them still belongs to the container.
func allPids(paths map[string]string) ([]int, error) {
	seen := map[int]bool{}
	found := false
	for _, dir := range paths {
		pids, err := cgroups.GetAllPids(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("cgroups: pids of %s: %w", dir, err)
		}
		found = true
		for _, p := range pids {
			seen[p] = true
		}
	}
	if !found {
		return nil, errdefs.NotFound("cgroups: no cgroup of the container exists")
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

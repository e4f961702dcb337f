package cgroups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
)

func ptr[T any](v T) *T { return &v }

// fixture owns one container cgroup and the processes a test starts in it;
// its cleanup thaws, kills, waits and removes every directory, pass or fail.
type fixture struct {
	t     *testing.T
	m     Manager
	procs []*exec.Cmd
	dirs  []string // extra dirs to remove, deepest first
}

// uniqueAbs is a cgroupsPath under a parent of the test's own.
func uniqueAbs(t *testing.T) string {
	return fmt.Sprintf("/berth-test-%d-%s/ctr", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
}

func newFixture(t *testing.T, cgroupsPath string, r *specs.LinuxResources) *fixture {
	t.Helper()
	testutil.RequireRoot(t)
	if HostMode() == ModeV2 {
		t.Skip("these tests assert v1/hybrid files; v2 paths are covered by TestV2*")
	}
	m, err := New(cgroupsPath, "", r)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, m: m}
	t.Cleanup(f.cleanup)
	return f
}

func (f *fixture) cleanup() {
	_ = f.m.Thaw() // SIGKILL does not reach a v1-frozen task
	for _, c := range f.procs {
		_ = c.Process.Kill()
		_, _ = c.Process.Wait()
	}
	for _, d := range f.dirs {
		_ = cgroups.RemovePath(d)
	}
	for _, p := range f.m.Paths() {
		if err := cgroups.RemovePath(p); err != nil {
			f.t.Errorf("cleanup %s: %v", p, err)
		}
		// The per-test parents, which nothing else uses.
		for d := filepath.Dir(p); strings.Contains(d, "berth-test-"); d = filepath.Dir(d) {
			if err := syscall.Rmdir(d); err != nil {
				f.t.Errorf("cleanup %s: %v", d, err)
			}
		}
	}
}

func (f *fixture) start(args ...string) *exec.Cmd {
	f.t.Helper()
	if len(args) == 0 {
		args = []string{"sleep", "60"}
	}
	c := exec.Command(args[0], args[1:]...)
	if err := c.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.procs = append(f.procs, c)
	return c
}

func read(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func expectFile(t *testing.T, dir, file, want string) {
	t.Helper()
	if got := read(t, dir, file); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
	}
}

// procCgroups parses /proc/<pid>/cgroup into controller -> path.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	m, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fullResources() *specs.LinuxResources {
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](229), Access: "rwm"},
			{Allow: true, Type: "b", Major: ptr[int64](8), Minor: ptr[int64](20), Access: "rw"},
			{Allow: true, Type: "b", Major: ptr[int64](10), Minor: ptr[int64](200), Access: "r"},
		},
		Memory: &specs.LinuxMemory{
			Limit:            ptr[int64](50593792),
			Reservation:      ptr[int64](40 << 20),
			Swap:             ptr[int64](2 * 50593792),
			KernelTCP:        ptr[int64](20 << 20),
			Swappiness:       ptr[uint64](50),
			DisableOOMKiller: ptr(true),
		},
		CPU: &specs.LinuxCPU{
			Shares:          ptr[uint64](512),
			Quota:           ptr[int64](50000),
			Period:          ptr[uint64](100000),
			RealtimeRuntime: ptr[int64](10000),
			RealtimePeriod:  ptr[uint64](1000000),
			Cpus:            "0",
			Mems:            "0",
		},
		Pids: &specs.LinuxPids{Limit: 64},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                ptr[uint16](500),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 100},
			},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
	}
}

func TestLimitsV1Hybrid(t *testing.T) {
	r := fullResources()
	f := newFixture(t, uniqueAbs(t), r)
	// RT time is handed down the tree: the parent must have it first.
	parent := filepath.Dir(f.m.Paths()["cpu"])
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "cpu.rt_runtime_us"), []byte("10000"), 0); err != nil {
		t.Fatal(err)
	}
	c := f.start()
	if err := f.m.Apply(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Set(r); err != nil {
		t.Fatal(err)
	}
	p := f.m.Paths()
	for _, sub := range []string{"memory", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids"} {
		if !strings.HasPrefix(p[sub], "/sys/fs/cgroup/"+sub+"/berth-test-") {
			t.Errorf("path %s = %q", sub, p[sub])
		}
	}
	// The process is in the cgroup in every hierarchy, split cpu/cpuacct included.
	inside := procCgroups(t, c.Process.Pid)
	for sub, dir := range p {
		if sub == "name=systemd" {
			continue
		}
		key := sub
		if key == "" {
			key = ""
		}
		if got := inside[key]; !strings.HasSuffix(dir, got) || got == "/" {
			t.Errorf("pid in %s cgroup %q, want %s", sub, got, dir)
		}
	}

	expectFile(t, p["memory"], "memory.limit_in_bytes", "50593792")
	expectFile(t, p["memory"], "memory.soft_limit_in_bytes", fmt.Sprint(40<<20))
	expectFile(t, p["memory"], "memory.memsw.limit_in_bytes", fmt.Sprint(2*50593792))
	expectFile(t, p["memory"], "memory.kmem.tcp.limit_in_bytes", fmt.Sprint(20<<20))
	expectFile(t, p["memory"], "memory.swappiness", "50")
	if oc := read(t, p["memory"], "memory.oom_control"); !strings.Contains(oc, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control = %q", oc)
	}
	expectFile(t, p["cpu"], "cpu.shares", "512")
	expectFile(t, p["cpu"], "cpu.cfs_quota_us", "50000")
	expectFile(t, p["cpu"], "cpu.cfs_period_us", "100000")
	expectFile(t, p["cpu"], "cpu.rt_runtime_us", "10000")
	expectFile(t, p["cpu"], "cpu.rt_period_us", "1000000")
	expectFile(t, p["cpuset"], "cpuset.cpus", "0")
	expectFile(t, p["cpuset"], "cpuset.mems", "0")
	expectFile(t, p["pids"], "pids.max", "64")
	// CFQ is gone: the weight lands in BFQ's file.
	if w := read(t, p["blkio"], "blkio.bfq.weight"); !strings.Contains(w, "500") {
		t.Errorf("blkio.bfq.weight = %q", w)
	}
	expectFile(t, p["blkio"], "blkio.throttle.read_bps_device", "254:0 1048576")
	expectFile(t, p["blkio"], "blkio.throttle.write_iops_device", "254:0 100")
	// Spec order first, then the defaults.
	list := strings.Split(read(t, p["devices"], "devices.list"), "\n")
	want := []string{"c 10:229 rwm", "b 8:20 rw", "b 10:200 r", "c 1:3 rwm", "c 1:5 rwm"}
	if len(list) < len(want) || !slices.Equal(list[:len(want)], want) {
		t.Errorf("devices.list = %q, want prefix %q", list, want)
	}
	if HostMode() == ModeHybrid {
		u := p[""]
		if !strings.HasPrefix(u, hybridRoot+"/berth-test-") {
			t.Fatalf("unified path %q", u)
		}
		expectFile(t, u, "hugetlb.2MB.max", fmt.Sprint(4<<20))
		if got := inside[""]; !strings.HasSuffix(u, got) {
			t.Errorf("pid in v2 cgroup %q, want %s", got, u)
		}
	}

	// update: only what is given changes; OOM killer goes back on.
	if err := f.m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), DisableOOMKiller: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, p["memory"], "memory.limit_in_bytes", fmt.Sprint(64<<20))
	expectFile(t, p["cpu"], "cpu.shares", "512")
	if oc := read(t, p["memory"], "memory.oom_control"); !strings.Contains(oc, "oom_kill_disable 0") {
		t.Errorf("memory.oom_control = %q", oc)
	}
	if l := read(t, p["devices"], "devices.list"); !strings.HasPrefix(l, "c 10:229 rwm") {
		t.Errorf("update without devices changed devices.list: %q", l)
	}
}

// With no device rules the container gets deny-all plus the defaults, before
// its process joins.
func TestDefaultDevicePolicy(t *testing.T) {
	f := newFixture(t, uniqueAbs(t), nil)
	if err := f.m.Apply(0); err != nil {
		t.Fatal(err)
	}
	list := read(t, f.m.Paths()["devices"], "devices.list")
	if strings.Contains(list, "a *:*") || !strings.HasPrefix(list, "c 1:3 rwm") || !strings.Contains(list, "c 136:* rwm") {
		t.Errorf("devices.list = %q", list)
	}
}

func TestFreezeThaw(t *testing.T) {
	f := newFixture(t, uniqueAbs(t), nil)
	c := f.start()
	if err := f.m.Apply(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procState := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
	}
	if fr, err := f.m.Frozen(); err != nil || fr {
		t.Fatalf("Frozen = %v, %v", fr, err)
	}
	if err := f.m.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, f.m.Paths()["freezer"], "freezer.state", "FROZEN")
	if fr, err := f.m.Frozen(); err != nil || !fr {
		t.Errorf("Frozen = %v, %v", fr, err)
	}
	if ps := procState(); ps != "D" {
		t.Errorf("frozen process state %q, want D", ps)
	}
	if err := f.m.Thaw(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, f.m.Paths()["freezer"], "freezer.state", "THAWED")
	// Thawed tasks run briefly (R) before sleeping again; never D.
	deadline := time.Now().Add(2 * time.Second)
	for procState() != "S" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ps := procState(); ps != "S" {
		t.Errorf("thawed process state %q, want S", ps)
	}
}

func TestPidsRecursiveAndStats(t *testing.T) {
	r := &specs.LinuxResources{
		Pids:           &specs.LinuxPids{Limit: 32},
		Memory:         &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
	}
	if HostMode() == ModeV1 {
		r.HugepageLimits = nil
	}
	f := newFixture(t, uniqueAbs(t), r)
	c1 := f.start("sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 60")
	if err := f.m.Apply(c1.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Set(r); err != nil {
		t.Fatal(err)
	}
	// A second process in a sub-cgroup (as `exec` with a sub-cgroup would).
	c2 := f.start()
	for _, dir := range f.m.Paths() {
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		f.dirs = append(f.dirs, sub)
		if strings.Contains(dir, "/cpuset/") { // an empty cpuset takes no tasks
			for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := os.WriteFile(filepath.Join(sub, file), []byte(read(t, dir, file)), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := cgroups.WriteCgroupProc(sub, c2.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	pids, err := f.m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	want := []int{c1.Process.Pid, c2.Process.Pid}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Errorf("Pids = %v, want %v", pids, want)
	}

	time.Sleep(100 * time.Millisecond) // let the loop burn some CPU
	st, err := f.m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = doc
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	for _, path := range [][]string{
		{"cpu", "usage", "total"}, {"cpu", "usage", "percpu"}, {"cpu", "usage", "kernel"}, {"cpu", "usage", "user"},
		{"memory", "usage", "usage"}, {"memory", "usage", "limit"}, {"memory", "usage", "failcnt"},
		{"memory", "swap", "limit"}, {"memory", "kernel"}, {"memory", "kernelTCP"}, {"memory", "raw", "rss"},
		{"pids", "current"}, {"pids", "limit"}, {"cpuset"}, {"blkio"},
	} {
		if get(path...) == nil {
			t.Errorf("stats JSON lacks %s: %s", strings.Join(path, "."), b)
		}
	}
	if got := get("pids", "current"); got != float64(2) {
		t.Errorf("pids.current = %v", got)
	}
	if got := get("pids", "limit"); got != float64(32) {
		t.Errorf("pids.limit = %v", got)
	}
	if got := get("memory", "usage", "limit"); got != float64(256<<20) {
		t.Errorf("memory.usage.limit = %v", got)
	}
	if HostMode() == ModeHybrid {
		if get("hugetlb", "2MB", "failcnt") == nil {
			t.Errorf("stats JSON lacks hugetlb.2MB: %s", b)
		}
	}
}

func ownCgroup(t *testing.T, sub string) string {
	t.Helper()
	p, err := cgroups.GetOwnCgroup(sub)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRelativePath(t *testing.T) {
	rel := fmt.Sprintf("berth-test-%d-rel/cgrouptest/container", os.Getpid())
	f := newFixture(t, rel, nil)
	c := f.start()
	if err := f.m.Apply(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	own := ownCgroup(t, "memory")
	want := filepath.Join("/sys/fs/cgroup/memory", own, rel)
	if got := f.m.Paths()["memory"]; got != want {
		t.Errorf("memory path %q, want %q (relative to our own cgroup %q)", got, want, own)
	}
	// What the OCI runtime-tools relative tests check.
	if got := procCgroups(t, c.Process.Pid)["memory"]; got != filepath.Join(own, rel) {
		t.Errorf("pid's memory cgroup %q", got)
	}
	expectFile(t, want, "memory.limit_in_bytes", fmt.Sprint(32<<20))
}

func TestAbsoluteAndDefaultPath(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := New("", "abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if HostMode() == ModeV2 {
		if got := m.Paths()[""]; got != "/sys/fs/cgroup/berth/abc" {
			t.Errorf("default path %q", got)
		}
		return
	}
	if got := m.Paths()["memory"]; got != "/sys/fs/cgroup/memory/berth/abc" {
		t.Errorf("default memory path %q (absolute paths ignore our own cgroup)", got)
	}
	if got := m.Paths()["cpuacct"]; got != "/sys/fs/cgroup/cpuacct/berth/abc" {
		t.Errorf("default cpuacct path %q", got)
	}
}

func TestLoadRoundTripAndDestroy(t *testing.T) {
	f := newFixture(t, uniqueAbs(t), &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}})
	c := f.start()
	if err := f.m.Apply(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f.m.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(st)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(m2.Paths(), f.m.Paths()) {
		t.Errorf("loaded paths %v, want %v", m2.Paths(), f.m.Paths())
	}
	if err := m2.Freeze(); err != nil {
		t.Fatal(err)
	}
	if fr, _ := f.m.Frozen(); !fr {
		t.Error("freeze through the loaded manager not seen")
	}
	if err := m2.Thaw(); err != nil {
		t.Fatal(err)
	}
	if pids, err := m2.Pids(); err != nil || !slices.Equal(pids, []int{c.Process.Pid}) {
		t.Errorf("loaded Pids = %v, %v", pids, err)
	}
	if err := m2.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, f.m.Paths()["pids"], "pids.max", "10")

	// Destroy kills nothing: it fails while the process is in.
	if err := m2.Destroy(); err == nil {
		t.Error("Destroy succeeded with a live process inside")
	}
	if err := syscall.Kill(c.Process.Pid, 0); err != nil {
		t.Errorf("Destroy hurt the process: %v", err)
	}
	_ = c.Process.Kill()
	_, _ = c.Process.Wait()
	if err := m2.Destroy(); err != nil {
		t.Fatal(err)
	}
	for sub, p := range f.m.Paths() {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s cgroup %s still there after Destroy (%v)", sub, p, err)
		}
	}
	if err := m2.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := m2.Pids(); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Pids after Destroy: %v, want not found", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Limits the host cannot honour fail loudly, never silently.
func TestUnsupportedLimitsFail(t *testing.T) {
	f := newFixture(t, uniqueAbs(t), nil)
	if err := f.m.Apply(0); err != nil {
		t.Fatal(err)
	}
	err := f.m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}})
	if !errdefs.Is(err, errdefs.KindNotImplemented) || !strings.Contains(err.Error(), "net_cls") {
		t.Errorf("network classID: %v", err)
	}
	// blkio.leaf_weight went with CFQ.
	if !cgroups.PathExists(filepath.Join(f.m.Paths()["blkio"], "blkio.leaf_weight")) {
		err = f.m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr[uint16](300)}})
		if !errdefs.Is(err, errdefs.KindNotImplemented) || !strings.Contains(err.Error(), "leaf_weight") {
			t.Errorf("leaf weight: %v", err)
		}
	}
	if f.m.Paths()["rdma"] == "" {
		err = f.m.Set(&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3)}}})
		if !errdefs.Is(err, errdefs.KindNotImplemented) {
			t.Errorf("rdma: %v", err)
		}
	}
	err = f.m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1 << 20}}})
	if err == nil || !strings.Contains(err.Error(), "3MB") {
		t.Errorf("bogus page size: %v", err)
	}
	err = f.m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}})
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("swappiness 101: %v", err)
	}
	if f.m.IntoCgroupFD() != -1 {
		t.Error("IntoCgroupFD on a v1/hybrid host must be -1")
	}
}

// TestV2OnHybridUnified drives the v2 manager (the library's fs2) against
// this host's cgroup2 mount, which holds only hugetlb: creation, hugetlb,
// CLONE_INTO_CGROUP, cgroup.freeze, Pids, Stats and Destroy.
func TestV2OnHybridUnified(t *testing.T) {
	testutil.RequireRoot(t)
	if HostMode() != ModeHybrid {
		t.Skip("needs a hybrid host's /sys/fs/cgroup/unified")
	}
	parent := filepath.Join(hybridRoot, fmt.Sprintf("berth-test-%d-v2", os.Getpid()))
	dir := filepath.Join(parent, "ctr")
	var procs []*exec.Cmd
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
		for _, c := range procs {
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
		_ = cgroups.RemovePath(parent)
	})
	if err := createUnified(dir); err != nil {
		t.Fatal(err)
	}
	if err := enableUnified(dir); err != nil {
		t.Fatal(err)
	}
	m, err := Load(State{Mode: ModeV2, Paths: map[string]string{"": dir}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 6 << 20}}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, dir, "hugetlb.2MB.max", fmt.Sprint(6<<20))

	fd := m.IntoCgroupFD()
	if fd < 0 {
		t.Fatal("IntoCgroupFD = -1 on a v2 dir")
	}
	c := exec.Command("sleep", "60")
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = c.Start()
	syscall.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, c)
	rel := strings.TrimPrefix(dir, hybridRoot)
	if got := procCgroups(t, c.Process.Pid)[""]; got != rel {
		t.Errorf("cloned into %q, want %q", got, rel)
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{c.Process.Pid}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, dir, "cgroup.freeze", "1")
	if ev := read(t, dir, "cgroup.events"); !strings.Contains(ev, "frozen 1") {
		t.Errorf("cgroup.events = %q", ev)
	}
	if fr, err := m.Frozen(); err != nil || !fr {
		t.Errorf("Frozen = %v, %v", fr, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if fr, _ := m.Frozen(); fr {
		t.Error("still frozen after thaw")
	}
	st, err := m.Stats()
	if err != nil {
		t.Logf("Stats on a hugetlb-only v2 dir: %v", err)
	} else if _, ok := st.Hugetlb["2MB"]; !ok {
		t.Errorf("v2 stats lack hugetlb 2MB: %+v", st.Hugetlb)
	}
	if err := m.Destroy(); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Destroy with a live process: %v", err)
	}
	_ = c.Process.Kill()
	_, _ = c.Process.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if cgroups.PathExists(dir) {
		t.Errorf("%s still there", dir)
	}
}

// Unit tests: no root needed.

func TestDeviceRules(t *testing.T) {
	rules, err := deviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](10), Access: "rw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rules[:3] {
		lines = append(lines, v1DeviceLine(r))
	}
	if want := []string{"a *:* rwm", "c 10:* rw", "c 1:3 rwm"}; !slices.Equal(lines, want) {
		t.Errorf("rules %q, want %q", lines, want)
	}
	if len(rules) != 2+len(DefaultDevices) {
		t.Errorf("%d rules", len(rules))
	}
	for _, bad := range []specs.LinuxDeviceCgroup{{Type: "x"}, {Type: "c", Access: "rwx"}, {Type: "a", Major: ptr[int64](1)}} {
		if _, err := deviceRule(bad); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestToLib(t *testing.T) {
	lr, err := toLib(&specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: 0},
		CPU:  &specs.LinuxCPU{Shares: ptr[uint64](2048), Cpus: "0-1"},
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 30), DisableOOMKiller: ptr(true),
		},
		Unified: map[string]string{"memory.high": "100M"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if *lr.PidsLimit != -1 || lr.CpuShares != 2048 || lr.CpusetCpus != "0-1" || lr.Memory != 1<<30 ||
		!lr.OomKillDisable || lr.Unified["memory.high"] != "100M" || !lr.SkipDevices {
		t.Errorf("toLib = %+v", lr)
	}
}

func TestStatsJSONShape(t *testing.T) {
	b, err := json.Marshal(fromLib(cgroups.NewStats()))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cpu":{"usage":{"kernel":0,"user":0}`, `"throttling":{}`, `"memory":{"usage":{"limit":0,"failcnt":0}`,
		`"kernelTCP":`, `"pids":{}`, `"blkio":{}`, `"hugetlb":{}`, `"cpuset":{`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("stats JSON %s lacks %s", b, key)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct{ path, id string }{{"", ""}, {"", "a/b"}, {"/", "x"}, {"..", "x"}, {"system.slice:berth:x", "x"}} {
		if _, err := New(tc.path, tc.id, nil); err == nil {
			t.Errorf("New(%q, %q) succeeded", tc.path, tc.id)
		}
	}
	if _, err := Load(State{Mode: ModeV1, Paths: map[string]string{"devices": "/etc"}}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("Load of a path outside cgroupfs: %v", err)
	}
}

// TestMain puts back the hybrid v2 root's enabled controllers: the hugetlb
// tests enable them host-wide, and a v2 half with controllers makes other
// tools (crun) refuse this host.
func TestMain(m *testing.M) {
	before, _ := os.ReadFile(filepath.Join(hybridRoot, "cgroup.subtree_control"))
	code := m.Run()
	if after, err := os.ReadFile(filepath.Join(hybridRoot, "cgroup.subtree_control")); err == nil {
		for _, c := range strings.Fields(string(after)) {
			if !slices.Contains(strings.Fields(string(before)), c) {
				if err := os.WriteFile(filepath.Join(hybridRoot, "cgroup.subtree_control"), []byte("-"+c), 0); err != nil {
					fmt.Fprintf(os.Stderr, "cgroups tests: could not disable %s in %s again: %v\n", c, hybridRoot, err)
				}
			}
		}
	}
	os.Exit(code)
}

package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/runtime"
	"berth.dev/berth/runtime/cgroups"
	ocispec "berth.dev/berth/runtime/spec"
)

// env drives the real berth binary's runtime CLI with a private --root.
type env struct {
	t    *testing.T
	bin  string
	root string
	// vars are added to berth's environment (BERTH_GO_INIT, BERTH_TRACE).
	vars []string
}

var idSeq atomic.Int64

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireRoot(t)
	e := &env{t: t, bin: testutil.BerthBinary(t), root: t.TempDir()}
	t.Cleanup(func() {
		out, _, _ := e.try("list", "-q")
		for _, id := range strings.Fields(out) {
			e.try("delete", "--force", id)
		}
		rt := &runtime.Runtime{Root: e.root}
		if err := rt.ReleaseInitBinary(); err != nil {
			t.Errorf("release init binary: %v", err)
		}
	})
	return e
}

// id returns a container id unique in this test binary.
func (e *env) id() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), idSeq.Add(1))
}

// try runs berth runtime with args; it returns stdout, stderr and the exit code.
func (e *env) try(args ...string) (string, string, int) {
	return e.tryIn(nil, args...)
}

func (e *env) tryIn(stdin []byte, args ...string) (string, string, int) {
	cmd := exec.Command(e.bin, append([]string{"runtime", "--root", e.root}, args...)...)
	if e.vars != nil {
		cmd.Env = append(os.Environ(), e.vars...)
	}
	// Files, not pipes: a detached container keeps its stdio open, and a
	// pipe would make Run wait for the container to exit.
	outf, err := os.CreateTemp(e.t.TempDir(), "stdout")
	if err != nil {
		e.t.Fatal(err)
	}
	defer outf.Close()
	errf, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	out, _ := os.ReadFile(outf.Name())
	errb, _ := os.ReadFile(errf.Name())
	return string(out), string(errb), code
}

// must runs berth runtime and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errs, code := e.try(args...)
	if code != 0 {
		e.t.Fatalf("berth runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// spec is the base config of the tests: runc's default, no terminal.
func spec(args ...string) *specs.Spec {
	s := ocispec.Default()
	s.Process.Terminal = false
	s.Process.Args = args
	return s
}

func (e *env) bundle(s *specs.Spec) string {
	rootfs := testutil.BusyboxRootfs(e.t)
	dir := filepath.Dir(rootfs)
	s.Root.Path = "rootfs"
	b, err := json.Marshal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// runOut runs a container in the foreground and returns what it printed.
func (e *env) runOut(s *specs.Spec) (string, string, int) {
	e.t.Helper()
	return e.try("run", "--bundle", e.bundle(s), e.id())
}

func (e *env) mustRun(s *specs.Spec) string {
	e.t.Helper()
	out, errs, code := e.runOut(s)
	if code != 0 {
		e.t.Fatalf("run %v: exit %d\nstdout: %s\nstderr: %s", s.Process.Args, code, out, errs)
	}
	return out
}

func sh(script string) *specs.Spec { return spec("sh", "-c", script) }

func (e *env) state(id string) map[string]any {
	e.t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(e.must("state", id)), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func waitStatus(e *env, id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s: status %v, want %s", id, st["status"], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunOutputAndExitCode(t *testing.T) {
	e := newEnv(t)
	if out := e.mustRun(sh("echo hello from $(hostname)")); out != "hello from berth\n" {
		t.Fatalf("output %q", out)
	}
	if _, _, code := e.runOut(sh("exit 7")); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	// run forwards its signals to the container and exits with its status.
	cmd := exec.Command(e.bin, "runtime", "--root", e.root, "run", "--bundle",
		e.bundle(sh(`trap "exit 42" TERM; echo ready; sleep 100 & wait`)), e.id())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("container did not start: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 42 {
		t.Fatalf("signalled run: %v, exit code %d, want 42", err, cmd.ProcessState.ExitCode())
	}
	_, errs, code := e.runOut(spec("/no/such/binary"))
	if code == 0 || !strings.Contains(errs, "no/such/binary") {
		t.Fatalf("missing binary: exit %d, stderr %q", code, errs)
	}
}

// TestCreateDuplicateID checks that a create of an id in use fails as
// dockerd words it and leaves the container that has it alone: its state
// and its cgroups (create resolves cgroups before it knows the id is its
// own, and must make or remove nothing then).
func TestCreateDuplicateID(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	bundle := e.bundle(spec("sleep", "100"))
	e.must("create", "--bundle", bundle, id)
	_, errs, code := e.try("create", "--bundle", bundle, id)
	if code == 0 || !strings.Contains(errs, `container "`+id+`" already exists`) {
		t.Fatalf("second create: exit %d, stderr %q", code, errs)
	}
	if st := e.state(id)["status"]; st != "created" {
		t.Fatalf("first container is %v after the second create, want created", st)
	}
	if cgroups.HostMode() != cgroups.ModeV2 {
		for _, h := range []string{"memory", "devices", "pids"} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "berth", id)); err != nil {
				t.Errorf("the first container's %s cgroup: %v", h, err)
			}
		}
	}
	e.must("delete", "--force", id)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	b := e.bundle(spec("sleep", "100"))
	e.must("create", "--bundle", b, id)
	st := e.state(id)
	if st["status"] != "created" || st["pid"].(float64) <= 0 || st["bundle"] != b || st["id"] != id {
		t.Fatalf("after create: %v", st)
	}
	if _, _, code := e.try("create", "--bundle", b, id); code == 0 {
		t.Fatal("second create with the same id succeeded")
	}
	e.must("start", id)
	st = e.state(id)
	if st["status"] != "running" {
		t.Fatalf("after start: %v", st)
	}
	if _, _, code := e.try("start", id); code == 0 {
		t.Fatal("start of a running container succeeded")
	}
	if _, _, code := e.try("delete", id); code == 0 {
		t.Fatal("delete of a running container without --force succeeded")
	}
	if out := e.must("list", "-q"); strings.TrimSpace(out) != id {
		t.Fatalf("list -q: %q", out)
	}
	e.must("kill", id, "KILL")
	waitStatus(e, id, "stopped")
	if st := e.state(id); st["pid"].(float64) != 0 {
		t.Fatalf("stopped container has pid: %v", st)
	}
	e.must("delete", id)
	if _, errs, code := e.try("state", id); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("state after delete: exit %d, %s", code, errs)
	}
}

func TestNamespacesAndHostname(t *testing.T) {
	e := newEnv(t)
	s := sh(`echo pid=$$; hostname; cat /proc/sys/kernel/domainname; ls /sys/class/net | tr '\n' ' '; echo; cat /proc/self/cgroup | head -1`)
	s.Hostname = "box1"
	s.Domainname = "example.test"
	out := e.mustRun(s)
	lines := strings.Split(out, "\n")
	if lines[0] != "pid=1" || lines[1] != "box1" || lines[2] != "example.test" || strings.TrimSpace(lines[3]) != "lo" {
		t.Fatalf("inside the container:\n%s", out)
	}
	if !strings.HasSuffix(lines[4], ":/") {
		t.Fatalf("cgroup namespace: /proc/self/cgroup starts %q", lines[4])
	}
	// Each namespace differs from ours.
	out = e.mustRun(sh(`for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done`))
	for _, l := range strings.Fields(out) {
		typ := l[:strings.Index(l, ":")]
		mine, _ := os.Readlink("/proc/self/ns/" + typ)
		if l == mine {
			t.Errorf("namespace %s is the host's", l)
		}
	}
}

// TestHooksSeeContainerNamespaces checks that the namespaces the init makes
// itself (spawn leaves net, ipc, uts and mnt to its constructor) exist by
// the time the runtime's hooks run: a createRuntime hook (network setup,
// say) finds the container's, not the host's, under /proc/<pid>/ns.
func TestHooksSeeContainerNamespaces(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	var hooks []specs.Hook
	for _, n := range []string{"net", "ipc", "uts", "mnt"} {
		script := `pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/'); readlink /proc/$pid/ns/` + n + ` > ` + filepath.Join(dir, n)
		hooks = append(hooks, specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}})
	}
	s := sh(`for n in net ipc uts mnt; do readlink /proc/self/ns/$n; done`)
	s.Hooks = &specs.Hooks{CreateRuntime: hooks}
	out := strings.Fields(e.mustRun(s))
	for i, n := range []string{"net", "ipc", "uts", "mnt"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s hook: %v", n, err)
		}
		mine, _ := os.Readlink("/proc/self/ns/" + n)
		got := strings.TrimSpace(string(b))
		if i >= len(out) || got != out[i] || got == mine {
			t.Errorf("createRuntime hook saw %s namespace %q; the container has %v, the host %q", n, got, out, mine)
		}
	}
}

func TestJoinNamespaceByPath(t *testing.T) {
	e := newEnv(t)
	holder := exec.Command("unshare", "--net", "--uts", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	var netns, utsns string
	for i := 0; i < 200; i++ {
		netns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid))
		utsns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid))
		mine, _ := os.Readlink("/proc/self/ns/net")
		if netns != mine {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := sh(`readlink /proc/self/ns/net; readlink /proc/self/ns/uts`)
	s.Hostname = ""
	for i, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace:
			s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
		case specs.UTSNamespace:
			s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid)
		}
	}
	if out := e.mustRun(s); out != netns+"\n"+utsns+"\n" {
		t.Fatalf("joined namespaces: %q, want %s and %s", out, netns, utsns)
	}
}

func TestUserNamespace(t *testing.T) {
	e := newEnv(t)
	s := sh(`cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u:%g /bin/busybox`)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	out := e.mustRun(s)
	f := strings.Fields(out)
	if len(f) != 8 || f[0] != "0" || f[1] != "0" || f[2] != "65536" || f[6] != "0" || f[7] != "0:0" {
		t.Fatalf("user namespace view:\n%s", out)
	}
	mine, _ := os.Readlink("/proc/self/ns/user")
	s = sh(`readlink /proc/self/ns/user`)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Mounts = nil
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"})
	s.Root.Readonly = false
	out, errs, code := e.runOut(s)
	if code != 0 && !strings.Contains(errs, "permission denied") {
		t.Fatalf("mapped to 100000: exit %d: %s", code, errs)
	}
	if code == 0 && strings.TrimSpace(out) == mine {
		t.Fatal("container shares the host user namespace")
	}
}

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	s := sh(`grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status; umask; pwd; echo $FOO; cat /proc/self/oom_score_adj; grep 'Max open files' /proc/self/limits`)
	s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 5}, Umask: ptr(uint32(0o027))}
	s.Process.Cwd = "/tmp"
	s.Process.Env = append(s.Process.Env, "FOO=bar")
	s.Process.OOMScoreAdj = ptr(500)
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}
	s.Process.NoNewPrivileges = true
	out := e.mustRun(s)
	want := []string{
		"Uid:\t1000\t1000\t1000\t1000", "Gid:\t1000\t1000\t1000\t1000", "Groups:\t5 100",
		"NoNewPrivs:\t1", "CapInh:\t0000000000000420", "CapPrm:\t0000000000000420",
		"CapEff:\t0000000000000420", "CapBnd:\t0000000000000420", "CapAmb:\t0000000000000420",
		"\n0027\n/tmp\nbar\n500\n", "Max open files            123                  456",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestRlimitAboveHardLimitIsAClearError(t *testing.T) {
	e := newEnv(t)
	var cur [2]uint64
	b, _ := os.ReadFile("/proc/self/limits")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			fmt.Sscan(strings.TrimPrefix(l, "Max open files"), &cur[0], &cur[1])
		}
	}
	if cur[1] == 0 {
		t.Fatal("cannot read our RLIMIT_NOFILE")
	}
	s := sh("true")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: cur[1] * 2}}
	_, errs, code := e.runOut(s)
	if hasCapSysResource() {
		if code != 0 {
			t.Fatalf("with CAP_SYS_RESOURCE raising the hard limit failed: %s", errs)
		}
		return
	}
	if code == 0 || !strings.Contains(errs, "CAP_SYS_RESOURCE") || !strings.Contains(errs, "RLIMIT_NOFILE") {
		t.Fatalf("exit %d, stderr %q: want a clear error naming RLIMIT_NOFILE and CAP_SYS_RESOURCE", code, errs)
	}
}

func hasCapSysResource() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			var v uint64
			fmt.Sscanf(strings.TrimSpace(l[7:]), "%x", &v)
			return v&(1<<24) != 0
		}
	}
	return false
}

func TestLabelsAreNotSupported(t *testing.T) {
	e := newEnv(t)
	s := sh("true")
	s.Process.ApparmorProfile = "docker-default"
	if _, errs, code := e.runOut(s); code == 0 || !strings.Contains(errs, "AppArmor is not supported") {
		t.Fatalf("apparmor: exit %d, %q", code, errs)
	}
	s = sh("true")
	s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
	if _, errs, code := e.runOut(s); code == 0 || !strings.Contains(errs, "SELinux is not supported") {
		t.Fatalf("selinux: exit %d, %q", code, errs)
	}
}

func TestRootfsMountsDevicesAndPaths(t *testing.T) {
	e := newEnv(t)
	s := sh(`
touch /rootfile 2>/dev/null && echo root-writable || echo root-ro
echo x > /tmp/f 2>/dev/null && echo tmp-writable
cat /proc/kcore | head -c 10 | wc -c
echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro
stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse
for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l; done
cat /proc/sys/kernel/shm_rmid_forced
grep -c ' /data ' /proc/self/mountinfo
cat /data/hostfile`)
	s.Root.Readonly = true
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}})
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "hostfile"), []byte("from-host\n"), 0o644)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}})
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o640))}}
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "rwm"})
	s.Linux.Sysctl = map[string]string{"kernel.shm_rmid_forced": "1"}
	out := e.mustRun(s)
	want := "root-ro\ntmp-writable\n0\nsysrq-ro\n" +
		"/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n/dev/urandom 1:9 666\n/dev/tty 5:0 666\n/dev/fuse a:e5 640\n" +
		"/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n1\n1\nfrom-host\n"
	if out != want {
		t.Fatalf("inside the container:\n%s\nwant:\n%s", out, want)
	}
}

// TestProcessInItsCgroups checks that the container's process is in its
// cgroup in every v1 hierarchy (create moves the C init there by pid, the
// Go init moves itself), as the host sees it: no cgroup namespace.
func TestProcessInItsCgroups(t *testing.T) {
	e := newEnv(t)
	if cgroups.HostMode() == cgroups.ModeV2 {
		t.Skip("v1 hierarchies only")
	}
	s := sh(`cat /proc/self/cgroup`)
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.CgroupNamespace {
			nss = append(nss, ns)
		}
	}
	s.Linux.Namespaces = nss
	id := e.id()
	out, errs, code := e.try("run", "--bundle", e.bundle(s), id)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 || f[1] == "" { // the v2 half joins only for its limits
			continue
		}
		n++
		if f[2] != "/berth/"+id {
			t.Errorf("hierarchy %s: in %q, want /berth/%s", f[1], f[2], id)
		}
	}
	if n == 0 {
		t.Fatalf("no v1 hierarchy in /proc/self/cgroup:\n%s", out)
	}
}

func TestCgroupLimitsSeenInside(t *testing.T) {
	e := newEnv(t)
	s := sh(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares`)
	s.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))},
		Pids:   &specs.LinuxPids{Limit: 42},
		CPU:    &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Shares: ptr(uint64(512))},
	}
	if out := e.mustRun(s); out != fmt.Sprintf("%d\n42\n50000\n512\n", 64<<20) {
		t.Fatalf("cgroup files inside:\n%s", out)
	}
}

func TestPauseResumeAndStats(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	s := spec("sleep", "100")
	s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 10}}
	e.must("run", "--detach", "--bundle", e.bundle(s), id)
	e.must("pause", id)
	waitStatus(e, id, "paused")
	pid := int(e.state(id)["pid"].(float64))
	if st := procState(pid); st != "S" && st != "D" {
		// A frozen task sleeps in the freezer; it must not run.
		t.Logf("frozen init state %s", st)
	}
	e.must("resume", id)
	waitStatus(e, id, "running")
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.must("events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data.Pids.Current != 1 || ev.Data.Pids.Limit != 10 {
		t.Fatalf("events --stats: %+v", ev)
	}
	var pids []int
	json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids)
	if len(pids) != 1 || pids[0] != pid {
		t.Fatalf("ps: %v, want [%d]", pids, pid)
	}
	e.must("delete", "--force", id)
}

func procState(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 {
		return s[i+2 : i+3]
	}
	return ""
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	s := spec("sleep", "100")
	s.Hostname = "exechost"
	e.must("run", "--detach", "--bundle", e.bundle(s), id)
	out := e.must("exec", id, "sh", "-c", "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
	if out != "exechost\n" && !strings.HasPrefix(out, "exechost\n") {
		t.Fatalf("exec output %q", out)
	}
	lines := strings.Split(out, "\n")
	if lines[1] == "1" || strings.TrimSpace(lines[2]) != "sleep 100" {
		t.Fatalf("exec is not in the container's pid namespace:\n%s", out)
	}
	if _, _, code := e.try("exec", id, "sh", "-c", "exit 5"); code != 5 {
		t.Fatalf("exec exit code %d, want 5", code)
	}
	out = e.must("exec", "--user", "1000:1000", "--cwd", "/tmp", "--env", "X=y", id, "sh", "-c", "id -u; pwd; echo $X")
	if out != "1000\n/tmp\ny\n" {
		t.Fatalf("exec with user/cwd/env: %q", out)
	}
	if _, errs, code := e.try("exec", id, "/nonexistent"); code == 0 || !strings.Contains(errs, "nonexistent") {
		t.Fatalf("exec of a missing binary: %d %q", code, errs)
	}
}

func TestHooks(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	s := sh("true")
	s.Hooks = &specs.Hooks{
		//lint:ignore SA1019 prestart is deprecated, and still must run
		Prestart:        []specs.Hook{hook("prestart")},
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{hook("poststop")},
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "bind", Source: dir, Options: []string{"rbind"}})
	id := e.id()
	e.must("run", "--bundle", e.bundle(s), id)
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		b, err := os.ReadFile(filepath.Join(dir, h))
		if err != nil {
			t.Errorf("%s hook did not run: %v", h, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(b, &st); err != nil || st.ID != id {
			t.Errorf("%s hook got state %q: %v", h, b, err)
		}
	}
	// start and delete as their own processes read the hooks from the
	// state (config.json's bytes, decoded by specjson).
	for _, h := range []string{"poststart", "poststop"} {
		os.Remove(filepath.Join(dir, h))
	}
	id = e.id()
	e.must("create", "--bundle", e.bundle(s), id)
	e.must("start", id)
	waitStatus(e, id, "stopped")
	e.must("delete", id)
	for _, h := range []string{"poststart", "poststop"} {
		if b, err := os.ReadFile(filepath.Join(dir, h)); err != nil || !strings.Contains(string(b), id) {
			t.Errorf("%s hook after a separate start/delete: %q %v", h, b, err)
		}
	}
	// A failing createRuntime hook fails create and leaves nothing.
	s = sh("true")
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	id = e.id()
	if _, _, code := e.try("create", "--bundle", e.bundle(s), id); code == 0 {
		t.Fatal("create with a failing createRuntime hook succeeded")
	}
	if _, _, code := e.try("state", id); code == 0 {
		t.Fatal("failed create left a container behind")
	}
}

func TestPreserveFdsAndPidFile(t *testing.T) {
	e := newEnv(t)
	r, w, _ := os.Pipe()
	defer r.Close()
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(e.bin, "runtime", "--root", e.root, "run", "--preserve-fds", "1", "--pid-file", pidFile, "--bundle", e.bundle(sh("echo through-fd3 >&3")), id)
	cmd.ExtraFiles = []*os.File{w}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	w.Close()
	b := make([]byte, 100)
	n, _ := r.Read(b)
	if string(b[:n]) != "through-fd3\n" {
		t.Fatalf("fd 3 got %q", b[:n])
	}
	if p, err := os.ReadFile(pidFile); err != nil || len(p) == 0 {
		t.Fatalf("pid file: %q %v", p, err)
	}
}

// TestRunPidFileFailsFirst: run lets the init go on to the user's process
// as soon as it is ready, so a pid file it cannot write must fail the run
// before then (the trace has no "ready"): the process never runs, and
// nothing is left.
func TestRunPidFileFailsFirst(t *testing.T) {
	e := newEnv(t)
	e.vars = []string{"BERTH_TRACE=1"}
	dir := t.TempDir()
	s := sh("touch /out/ran")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: dir, Options: []string{"rbind"}})
	id := e.id()
	_, errs, code := e.try("run", "--pid-file", filepath.Join(dir, "no-such-dir", "pid"), "--bundle", e.bundle(s), id)
	if code == 0 || !strings.Contains(errs, "pid file") || strings.Contains(errs, "init: ready") {
		t.Fatalf("run with an unwritable pid file: exit %d (or after the init was ready), stderr:\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the container's process ran")
	}
	if _, errs, code := e.try("state", id); code == 0 {
		t.Errorf("the container is left: %s", errs)
	}
}

func TestSpecAndFeatures(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cmd := exec.Command(e.bin, "runtime", "spec", "--bundle", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec: %v %s", err, out)
	}
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil || s.Root.Path != "rootfs" {
		t.Fatalf("spec wrote %s: %v", b, err)
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(e.must("features")), &f); err != nil || f["ociVersionMax"] != specs.Version {
		t.Fatalf("features: %v %v", f, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestMain puts back what the containers of the tests changed in the host's
// cgroup trees (see testutil.KeepHostCgroups).
func TestMain(m *testing.M) {
	restore := testutil.KeepHostCgroups()
	code := m.Run()
	restore()
	os.Exit(code)
}

// TestExecJoinsUserNamespace execs into a container with its own user and
// mount namespaces: both are joined before the Go runtime starts (nsenter).
func TestExecJoinsUserNamespace(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	s := spec("sleep", "100")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	e.must("run", "--detach", "--bundle", e.bundle(s), id)
	pid := int(e.state(id)["pid"].(float64))
	want := ""
	for _, ns := range []string{"user", "mnt", "pid", "net"} {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		want += l + "\n"
	}
	out := e.must("exec", id, "sh", "-c", "for n in user mnt pid net; do readlink /proc/self/ns/$n; done")
	if out != want {
		t.Fatalf("exec namespaces:\n%s\nwant the container's:\n%s", out, want)
	}
}

// TestDevicesCgroupDenies checks the device rules from inside: a node the
// container has but may not use cannot be opened.
func TestDevicesCgroupDenies(t *testing.T) {
	e := newEnv(t)
	s := sh(`cat /dev/fuse 2>&1; echo x > /dev/null && echo null-ok`)
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o666))}}
	out := e.mustRun(s)
	if !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "null-ok") {
		t.Fatalf("device rules inside:\n%s", out)
	}
}

// TestOverlayMount mounts an overlay from spec options inside the container.
func TestOverlayMount(t *testing.T) {
	e := newEnv(t)
	d := t.TempDir()
	for _, sub := range []string{"lower", "upper", "work"} {
		os.Mkdir(filepath.Join(d, sub), 0o755)
	}
	os.WriteFile(filepath.Join(d, "lower", "from-lower"), []byte("lower\n"), 0o644)
	s := sh(`cat /ov/from-lower; echo new > /ov/written; grep ' /ov ' /proc/self/mountinfo | grep -c overlay`)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/ov", Type: "overlay", Source: "overlay",
		Options: []string{"lowerdir=" + filepath.Join(d, "lower"), "upperdir=" + filepath.Join(d, "upper"), "workdir=" + filepath.Join(d, "work")}})
	if out := e.mustRun(s); out != "lower\n1\n" {
		t.Fatalf("overlay inside: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(d, "upper", "written")); err != nil || string(b) != "new\n" {
		t.Fatalf("write through the overlay did not reach upperdir: %q %v", b, err)
	}
}

// TestListJSONAndLogFile covers list --format json and --log/--log-format:
// an error goes to the log file as JSON, as containerd's runc shim reads it.
func TestListJSONAndLogFile(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.must("run", "--detach", "--bundle", e.bundle(spec("sleep", "100")), id)
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must("list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["id"] != id || list[0]["status"] != "running" || list[0]["pid"].(float64) <= 0 {
		t.Fatalf("list --format json: %v", list)
	}
	logFile := filepath.Join(t.TempDir(), "log.json")
	if _, _, code := e.try("--log", logFile, "--log-format", "json", "start", "no-such-container"); code == 0 {
		t.Fatal("start of a missing container succeeded")
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &entry); err != nil || entry["level"] != "error" || !strings.Contains(fmt.Sprint(entry["msg"]), "does not exist") {
		t.Fatalf("log file: %q (%v)", b, err)
	}
	e.must("delete", "--force", id)
}

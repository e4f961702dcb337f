package runtime_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/runtime/cgroups"
)

func withoutNS(s *specs.Spec, t specs.LinuxNamespaceType) *specs.Spec {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == t })
	return s
}

// TestSpareInit: the runtime CLI starts a spare init in its constructor
// (from the second container of a root on: the first makes the binary's
// read-only view it runs from), and create adopts it for a container born
// the spare's way; a container in the host's pid or network namespace
// gets a forked init. Either way the container is what its spec says.
func TestSpareInit(t *testing.T) {
	e := newEnv(t)
	e.mustRun(sh("true"))
	e.vars = []string{"BERTH_TRACE=1"}
	check := func(s *specs.Spec, adopted bool, want string) {
		t.Helper()
		out, errs, code := e.runOut(s)
		if code != 0 || out != want {
			t.Fatalf("run: exit %d, printed %q, want %q\n%s", code, out, want, errs)
		}
		if got := strings.Contains(errs, " init adopted\n"); got != adopted || !strings.Contains(errs, "init(C): exec") {
			t.Errorf("adopted %v, want %v (or not the C init):\n%s", got, adopted, errs)
		}
	}
	// Its own pid, network and uts namespaces, and every v1 cgroup of
	// the container (mounted at /sys/fs/cgroup/*) has it.
	s := sh(`echo $$; ls /sys/class/net | wc -l; hostname; for d in /sys/fs/cgroup/*/; do case $d in */unified/) continue;; esac; grep -qx 1 ${d}tasks || echo not in $d; done`)
	s.Hostname = "spare"
	check(s, true, "1\n1\nspare\n")
	// The host's pid namespace: the spare's is a new one.
	s = withoutNS(sh("test $$ != 1 && echo host-pid"), specs.PIDNamespace)
	check(s, false, "host-pid\n")
	// The host's network: the spare made one of its own while it waited.
	hostNets, _ := os.ReadDir("/sys/class/net")
	s = withoutNS(sh("ls /sys/class/net | wc -l"), specs.NetworkNamespace)
	check(s, false, fmt.Sprintf("%d\n", len(hostNets)))
}

// TestCgroupPreludeFails: the C init makes its cgroups from a prelude; a
// device rule the parent cgroup does not allow fails the create with the
// kernel's answer, as the Go path does, and leaves nothing.
func TestCgroupPreludeFails(t *testing.T) {
	e := newEnv(t)
	if cgroups.HostMode() == cgroups.ModeV2 {
		t.Skip("v1 cgroups only")
	}
	e.mustRun(sh("true")) // the spare's binary view
	parentPath := fmt.Sprintf("/berth-test-%d-prelude", os.Getpid())
	parent, err := cgroups.New(parentPath, "", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Apply(-1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := parent.Destroy(); err != nil {
			t.Errorf("remove %s: %v", parentPath, err)
		}
	})
	major, minor := int64(10), int64(229)
	for _, vars := range [][]string{nil, {"BERTH_GO_INIT=1"}} {
		e.vars = vars
		s := sh("true")
		s.Linux.CgroupsPath = parentPath + "/c"
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
		_, errs, code := e.runOut(s)
		if code == 0 || !strings.Contains(errs, "devices.allow") || !strings.Contains(errs, "operation not permitted") {
			t.Errorf("%v: exit %d, stderr %q: want devices.allow refused", vars, code, errs)
		}
		if out, _, _ := e.try("list", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%v: containers left: %q", vars, out)
		}
		for k, dir := range parent.Paths() {
			if ents, _ := os.ReadDir(dir); slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.IsDir() }) {
				t.Errorf("%v: %s cgroup left under %s", vars, k, dir)
			}
		}
	}
}

// TestTimerSlack: a run or create CLI gives one thread, the Go runtime's
// sysmon (the first it makes), a coarse timer slack (nsenter.c); every
// other keeps the slack berth was started with, and so do a container's
// processes and hooks, whichever way the init is born: the spare, a fork
// from the main thread, or a fork from a thread that joins a namespace
// first.
func TestTimerSlack(t *testing.T) {
	e := newEnv(t)
	e.mustRun(sh("true")) // the spare's binary view
	want := readSlack(t, "/proc/self/timerslack_ns")
	hookOut := filepath.Join(t.TempDir(), "hook")
	for _, c := range []struct {
		name string
		spec *specs.Spec
	}{
		{"spare init", sh("cat /proc/self/timerslack_ns")},
		{"forked init", withoutNS(sh("cat /proc/self/timerslack_ns"), specs.PIDNamespace)},
		{"init forked after a join", joinNS(sh("cat /proc/self/timerslack_ns"), specs.NetworkNamespace, "/proc/self/ns/net")},
	} {
		c.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat /proc/self/timerslack_ns > " + hookOut}}}}
		if got := strings.TrimSpace(e.mustRun(c.spec)); got != want {
			t.Errorf("%s: the container's timer slack is %s ns, want %s", c.name, got, want)
		}
		if got := readSlack(t, hookOut); got != want {
			t.Errorf("%s: the hook's timer slack is %s ns, want %s", c.name, got, want)
		}
	}
	// The CLI's threads while the container runs: one has the raised
	// slack, not the main one.
	cmd := exec.Command(e.bin, "runtime", "--root", e.root, "run", "--bundle", e.bundle(sh("echo up; sleep 10")), e.id())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if _, err := io.ReadFull(stdout, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var raised []string
	for _, task := range tasks {
		got := readSlack(t, "/proc/"+task.Name()+"/timerslack_ns")
		switch {
		case got == "10000000" && task.Name() != strconv.Itoa(cmd.Process.Pid):
			raised = append(raised, task.Name())
		case got != want:
			t.Errorf("the CLI's thread %s has a timer slack of %s ns, want %s", task.Name(), got, want)
		}
	}
	if len(raised) != 1 {
		t.Errorf("threads with the raised timer slack: %v of %d, want one", raised, len(tasks))
	}
}

func joinNS(s *specs.Spec, typ specs.LinuxNamespaceType, path string) *specs.Spec {
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			s.Linux.Namespaces[i].Path = path
		}
	}
	return s
}

func readSlack(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

package runtime_test

import (
	"fmt"
	"os"
	"slices"
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

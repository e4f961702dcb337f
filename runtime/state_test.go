package runtime_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestStateFiles checks the state directory a create leaves: the state file
// (which holds the spec) and the exec fifo under its created name, nothing
// else; and that a later process finds the spec there (delete runs the
// poststop hook from it) and removes the directory.
func TestStateFiles(t *testing.T) {
	e := newEnv(t)
	hookOut := filepath.Join(t.TempDir(), "poststop")
	s := spec("sleep", "100")
	s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + hookOut}}}}
	id := e.id()
	e.must("create", "--bundle", e.bundle(s), id)
	dir := filepath.Join(e.root, id)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		names = append(names, ent.Name())
	}
	if !slices.Equal(names, []string{"exec.fifo", "state.json"}) {
		t.Fatalf("state dir after create holds %v, want exec.fifo and state.json", names)
	}
	if st := e.state(id); st["status"] != "created" {
		t.Fatalf("state after create: %v", st)
	}
	e.must("start", id)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("state after start: %v", st)
	}
	e.must("kill", id, "KILL")
	waitStatus(e, id, "stopped")
	e.must("delete", id)
	if b, err := os.ReadFile(hookOut); err != nil || len(b) == 0 {
		t.Fatalf("poststop hook of a later delete did not run: %q %v", b, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state dir left after delete: %v", err)
	}
}

// TestDevicePolicyWithoutNodes covers a spec with no device nodes of its
// own, whose device rules go in with the cgroup (not in the hooks phase):
// they hold inside, in order, and the defaults stay usable.
func TestDevicePolicyWithoutNodes(t *testing.T) {
	e := newEnv(t)
	script := `mknod /dev/f1 c 10 229 2>/dev/null && echo f1-made; mknod /dev/f2 c 10 230 2>/dev/null && echo f2-made; echo x > /dev/null && echo null-ok`
	// CAP_MKNOD, or mknod fails whatever the cgroup says.
	withMknod := func(s *specs.Spec) *specs.Spec {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_MKNOD")
		c.Effective = append(c.Effective, "CAP_MKNOD")
		c.Permitted = append(c.Permitted, "CAP_MKNOD")
		s.Linux.Devices = nil
		return s
	}
	s := withMknod(sh(script))
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "m"},
	}}
	if out := e.mustRun(s); out != "f1-made\nnull-ok\n" {
		t.Fatalf("with c 10:229 m allowed: %q", out)
	}
	s = withMknod(sh(script))
	s.Linux.Resources = nil // deny all but the defaults
	if out := e.mustRun(s); out != "null-ok\n" {
		t.Fatalf("with no rules: %q", out)
	}
}

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

package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/cgroups"
)

// TestCreateOnlyMakesUsableCgroups checks Apply(-1), which makes the
// cgroups by hand: every hierarchy gets the dir (parents too, on a first
// create), cpuset's cpus and mems are filled in (from the parent, or up
// the tree when the parent is new), a cgroup that is there already is
// fine, and a task can then be moved into each.
func TestCreateOnlyMakesUsableCgroups(t *testing.T) {
	first := newFixture(t, uniqueAbs(t)+"/a", nil) // a new parent: filled in up the tree
	if err := first.m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := first.m.Apply(-1); err != nil { // there already
		t.Fatalf("second create: %v", err)
	}
	// A sibling, whose parent is there: copied from it. Its cleanup runs
	// first and leaves the parents to the first's.
	m, err := New(uniqueAbs(t)+"/b", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	second := &fixture{t: t, m: m}
	t.Cleanup(func() {
		for _, c := range second.procs {
			c.Process.Kill()
			c.Process.Wait()
		}
		for _, p := range m.Paths() {
			if err := cgroups.RemovePath(p); err != nil {
				t.Errorf("cleanup %s: %v", p, err)
			}
		}
	})
	if err := second.m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	root := "/sys/fs/cgroup/cpuset"
	for _, f := range []*fixture{first, second} {
		for k, dir := range f.m.Paths() {
			if k == "" {
				continue
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Errorf("%s cgroup %s not made: %v", k, dir, err)
			}
		}
		cs := f.m.Paths()["cpuset"]
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if got, want := read(t, cs, file), read(t, root, file); got != want {
				t.Errorf("%s/%s = %q, want the root's %q", cs, file, got, want)
			}
		}
		c := f.start()
		for k, dir := range f.m.Paths() {
			if k == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0); err != nil {
				t.Errorf("move a task into %s: %v", dir, err)
			}
		}
	}
}

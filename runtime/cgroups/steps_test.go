package cgroups

import (
	"os"
	"testing"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCreateStepsAsApply: a cgroup made by running CreateSteps' steps (as
// the C init does) ends as one Apply(-1) made: the dirs, cpuset's values,
// the device policy in its order. Cgroups that are there already and
// parents that are not are left to Apply.
func TestCreateStepsAsApply(t *testing.T) {
	major, minor := int64(10), int64(229)
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Type: "c", Major: &major, Access: "m"},
		{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"},
	}}
	base := uniqueAbs(t)
	applied := newFixture(t, base+"/applied", r)
	if _, ok := applied.m.CreateSteps(); ok {
		t.Fatal("steps offered under parents that are not there")
	}
	if err := applied.m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, ok := applied.m.CreateSteps(); ok {
		t.Fatal("steps offered for a cgroup that is there already")
	}
	m, err := New(base+"/stepped", "", r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before applied's, which removes the parents
		for _, p := range m.Paths() {
			if err := cgroups.RemovePath(p); err != nil {
				t.Errorf("cleanup %s: %v", p, err)
			}
		}
	})
	steps, ok := m.CreateSteps()
	if !ok {
		t.Fatal("no steps for a new cgroup under existing parents")
	}
	for _, st := range steps {
		if st.Mkdir {
			err = os.Mkdir(st.Path, 0o755)
		} else {
			err = os.WriteFile(st.Path, []byte(st.Data), 0)
		}
		if err != nil {
			t.Fatalf("step %+v: %v", st, err)
		}
	}
	want, got := applied.m.Paths(), m.Paths()
	for k, dir := range got {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: %s not made: %v", k, dir, err)
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if a, b := read(t, want["cpuset"], f), read(t, got["cpuset"], f); a != b || b == "" {
			t.Errorf("%s: stepped %q, applied %q", f, b, a)
		}
	}
	if a, b := read(t, want["devices"], "devices.list"), read(t, got["devices"], "devices.list"); a != b {
		t.Errorf("devices.list:\nstepped %s\napplied %s", b, a)
	}
}

package cgroups

import (
	"fmt"
	"maps"
	"os"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"golang.org/x/sys/unix"
)

// TestAbsoluteV1PathsMatchLibrary checks the fast resolution of absolute
// paths against the library's on this host's real mount table.
func TestAbsoluteV1PathsMatchLibrary(t *testing.T) {
	mode := HostMode()
	if mode == ModeV2 {
		t.Skip("v1 and hybrid hosts only")
	}
	for _, p := range []string{"/berth/abc", "/a/b/c", "/x/../y", "/berth/with space"} {
		got, ok := absoluteV1Paths(p)
		if !ok {
			t.Fatalf("%s: not resolved on this host's plain layout", p)
		}
		lib, err := fs.NewManager(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := lib.GetPaths()
		if mode != ModeHybrid {
			delete(want, "")
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", p, got, want)
		}
	}
	if _, ok := absoluteV1Paths("relative/path"); ok {
		t.Error("a relative path was resolved: those are relative to our own cgroup, the library's case")
	}
}

// TestStatV1MountsMatchMountinfo: the plain layout found by statfs and
// stat is the one the mount table has.
func TestStatV1MountsMatchMountinfo(t *testing.T) {
	mode := HostMode()
	if mode == ModeV2 {
		t.Skip("v1 and hybrid hosts only")
	}
	got, ok := statV1Mounts(mode)
	if !ok {
		t.Fatal("this host's plain layout was not recognised")
	}
	want, ok := readV1Mounts(mode)
	if !ok || !maps.Equal(got, want) {
		t.Errorf("statfs: %v\nmountinfo: %v (%v)", got, want, ok)
	}
	// A hierarchy's root, not a sub-cgroup or a plain directory.
	if !hierarchyRoot("/sys/fs/cgroup/devices", unix.CGROUP_SUPER_MAGIC) {
		t.Error("/sys/fs/cgroup/devices is not a hierarchy's root")
	}
	sub := fmt.Sprintf("/sys/fs/cgroup/devices/berth-test-%d-root", os.Getpid())
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(sub)
	for _, dir := range []string{"/sys/fs/cgroup", t.TempDir(), sub, "/sys/fs/cgroup/devices/no-such-dir"} {
		if hierarchyRoot(dir, unix.CGROUP_SUPER_MAGIC) {
			t.Errorf("%s taken for a v1 hierarchy's root", dir)
		}
	}
}

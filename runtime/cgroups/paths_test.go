package cgroups

import (
	"maps"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
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

package daemon

import (
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/snapshot"
)

// An --rm container's writable layer is deleted when it exits, so nothing
// is gained by syncing it: its overlay is mounted "volatile" (as podman
// does for --rm), which skips the sync of the whole upper file system that
// unmounting an overlay otherwise does (0.2 ms on a quiet disk, several ms
// when other writers have dirtied it). The kernel marks such a work
// directory (work/incompat/volatile) and refuses to mount it again until
// the mark goes, since after a crash the upper layer may be torn. A
// container that is mounted again (docker cp between its exit and its
// removal) had a clean unmount, so withVolatile clears the mark first.

// withVolatile returns mounts with the overlays made volatile, their old
// marks cleared.
func withVolatile(mounts []snapshot.MountSpec) []snapshot.MountSpec {
	out := make([]snapshot.MountSpec, len(mounts))
	for i, m := range mounts {
		out[i] = m
		if m.Type != "overlay" {
			continue
		}
		clearVolatileMark(m)
		out[i].Options = append(append([]string{}, m.Options...), "volatile")
	}
	return out
}

// clearVolatileMark removes the kernel's mark of a volatile mount from the
// overlay's work directory, if there is one.
func clearVolatileMark(m snapshot.MountSpec) {
	for _, o := range m.Options {
		if w, ok := strings.CutPrefix(o, "workdir="); ok {
			_ = os.RemoveAll(filepath.Join(w, "work", "incompat"))
		}
	}
}

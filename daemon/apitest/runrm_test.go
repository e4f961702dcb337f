package apitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// rootMount is the mount of a container's root file system on the host.
func (d *daemon) rootMount(t *testing.T, id string) *mountinfo.Info {
	t.Helper()
	root := filepath.Join(d.dataRoot, "containers", id, "rootfs")
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(root))
	if err != nil || len(ms) != 1 {
		t.Fatalf("mount of %s: %v %v", root, ms, err)
	}
	return ms[0]
}

// volatile says whether an overlay's super options have it volatile
// ("volatile"; "fsync=volatile" since Linux 6.x).
func volatile(opts string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == "volatile" || x == "fsync=volatile" {
			return true
		}
	}
	return false
}

// TestRunRmVolatileAndTrash: an --rm container's root is a volatile
// overlay (nothing to sync at its removal), another's is not; removed
// containers' directories go through the trash, which is empty once the
// daemon has stopped, and what a killed daemon left there goes at the
// next start.
func TestRunRmVolatileAndTrash(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	if d.mustDocker("info", "-f", "{{.Driver}}") != "overlay2\n" {
		t.Skip("not on overlay2")
	}
	rm := strings.TrimSpace(d.mustDocker("run", "-d", "--rm", "busybox", "sleep", "1000"))
	kept := strings.TrimSpace(d.mustDocker("run", "-d", "busybox", "sleep", "1000"))
	if m := d.rootMount(t, rm); m.FSType != "overlay" || !volatile(m.VFSOptions) {
		t.Errorf("--rm root: %s %q, want a volatile overlay", m.FSType, m.VFSOptions)
	}
	if m := d.rootMount(t, kept); volatile(m.VFSOptions) {
		t.Errorf("root of a kept container is volatile: %q", m.VFSOptions)
	}
	d.mustDocker("rm", "-f", rm, kept)
	if out := d.mustDocker("run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
		t.Fatalf("run --rm: %q", out)
	}
	for _, dir := range []string{filepath.Join(d.execRoot, "containers", rm), filepath.Join(d.dataRoot, "containers", rm)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s after rm: %v", dir, err)
		}
	}
	d.stop() // waits for the background deletions
	for _, root := range []string{d.dataRoot, d.execRoot} {
		ents, err := os.ReadDir(filepath.Join(root, "trash"))
		if err != nil || len(ents) != 0 {
			t.Errorf("trash of %s after the daemon stopped: %v %v", root, ents, err)
		}
	}

	// What a daemon killed -9 left in its trash goes at the next start.
	left := filepath.Join(d.dataRoot, "trash", "left-behind")
	if err := os.MkdirAll(filepath.Join(left, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.start()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("trash left at start: %v", err)
	}
}

// Package btrfstest makes a throwaway btrfs for tests: a sparse file in
// t.TempDir() on a loop device, formatted and mounted, all undone at
// cleanup.
package btrfstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/snapshot"
)

// Mount returns the mount point of a new btrfs of the given size (bytes).
// It skips t when mkfs.btrfs or losetup is missing.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	for _, tool := range []string{"mkfs.btrfs", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install btrfs-progs)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if out, err := exec.Command("mkfs.btrfs", "-q", "-f", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll([]snapshot.MountSpec{{Type: "btrfs", Source: dev}}, mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(mnt); err != nil {
			t.Errorf("unmount the test btrfs: %v", err)
		}
	})
	return mnt
}

package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMaybeMounted(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if maybeMounted(dir) {
		t.Error("a plain directory taken for a mount")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if !maybeMounted(dir) {
		t.Error("a tmpfs on the directory not seen")
	}
	if maybeMounted(filepath.Join(dir, "missing")) != true {
		t.Error("a path that cannot be looked at must count as mounted")
	}
}

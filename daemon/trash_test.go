package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiscard(t *testing.T) {
	root := t.TempDir()
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	dir := filepath.Join(root, "containers", "x")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.discard(root, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s after discard: %v", dir, err)
	}
	if err := d.discard(root, dir); err != nil { // gone already: nothing to do
		t.Fatalf("discard of a missing dir: %v", err)
	}
	d.trashWG.Wait()
	if ents, err := os.ReadDir(filepath.Join(root, trashName)); err != nil || len(ents) != 0 {
		t.Fatalf("trash after the deletion: %v %v", ents, err)
	}

	// A directory with a mount below it is never deleted through the
	// trash, at discard or at start.
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	mnt := filepath.Join(dir, "m")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(mnt, "keep")
	if err := os.WriteFile(keep, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.discard(root, dir); err != nil {
		t.Fatal(err)
	}
	d.trashWG.Wait()
	d.emptyTrash(root)
	ents, _ := os.ReadDir(filepath.Join(root, trashName))
	if len(ents) != 1 {
		t.Fatalf("trash: %v, want the mounted dir kept", ents)
	}
	kept := filepath.Join(root, trashName, ents[0].Name(), "m")
	if _, err := os.Stat(filepath.Join(kept, "keep")); err != nil {
		t.Errorf("a file on a mount below a trashed dir: %v", err)
	}
	if err := unix.Unmount(kept, 0); err != nil {
		t.Fatal(err)
	}
	d.emptyTrash(root)
	if ents, _ := os.ReadDir(filepath.Join(root, trashName)); len(ents) != 0 {
		t.Fatalf("trash once unmounted: %v", ents)
	}
}

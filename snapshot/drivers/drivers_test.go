package drivers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot/internal/btrfstest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestDefaultAndNoMixing(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir() // ext4 here: overlay2
	d, err := Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "overlay2" {
		t.Errorf("default on %s is %s, want overlay2", root, d.Name())
	}
	if _, err := d.Prepare(context.Background(), "k", ""); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if b, _ := os.ReadFile(filepath.Join(root, "driver")); strings.TrimSpace(string(b)) != "overlay2" {
		t.Errorf("recorded driver %q", b)
	}

	_, err = Open(root, "vfs")
	if !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("Open vfs on an overlay2 root: %v, want a conflict", err)
	}
	want := `data root ` + root + ` was made with storage driver "overlay2"; refusing to use "vfs" (move the data root away or pick "overlay2")`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	for _, name := range []string{"", "overlay2"} {
		d, err := Open(root, name)
		if err != nil {
			t.Fatalf("reopen with %q: %v", name, err)
		}
		if _, err := d.Stat(context.Background(), "k"); err != nil {
			t.Errorf("reopen with %q lost the snapshot: %v", name, err)
		}
		d.Close()
	}
}

func TestChosenByName(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	d, err := Open(root, "vfs")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "vfs" {
		t.Errorf("got %s", d.Name())
	}
	d.Close()
	d, err = Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "vfs" {
		t.Errorf("a vfs root reopened with the default is %s", d.Name())
	}
	d.Close()
	if _, err := Open(t.TempDir(), "aufs"); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := Open(t.TempDir(), "btrfs"); !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Errorf("btrfs on ext4: %v", err)
	}
}

// TestRecognisesOldRoots: a root with a driver directory but no record
// keeps its driver; two drivers' directories are refused.
func TestRecognisesOldRoots(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "vfs", "snapshots", "abc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := Recorded(root); err != nil || got != "vfs" {
		t.Errorf("Recorded = %q, %v; want vfs", got, err)
	}
	if _, err := Open(root, "overlay2"); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("overlay2 on an old vfs root: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "overlay2", "snapshots", "def"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Recorded(root); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("two drivers' dirs: %v", err)
	}
}

func TestOverlayDefaultOnBtrfs(t *testing.T) {
	testutil.RequireRoot(t)
	mnt := btrfstest.Mount(t, 256<<20)
	d, err := Open(filepath.Join(mnt, "data"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != "overlay2" {
		t.Errorf("default on btrfs is %s, want overlay2", d.Name())
	}
	if _, err := d.Prepare(context.Background(), "k", ""); err != nil {
		t.Fatal(err)
	}
	// Asked for by name, btrfs works there.
	b, err := Open(filepath.Join(mnt, "data2"), "btrfs")
	if err != nil {
		t.Fatalf("btrfs on btrfs: %v", err)
	}
	defer b.Close()
	if b.Name() != "btrfs" {
		t.Errorf("asked for btrfs, got %s", b.Name())
	}
}

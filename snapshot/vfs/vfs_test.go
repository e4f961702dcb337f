package vfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/testsuite"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newDriver(t *testing.T) snapshot.Driver {
	d, err := New(filepath.Join(t.TempDir(), "vfs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, newDriver, testsuite.ChainDepth(20), testsuite.Reopen(New))
}

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (chattr +i).
const fsImmutableFL = 0x10

func setImmutable(t *testing.T, path string, on bool) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		t.Fatal(err)
	}
}

// TestUndeletableDebris: a snapshot whose files cannot be deleted (an
// immutable file) is removed all the same; its files wait in tmp/, and
// Open, which must not fail over them, deletes them once it can.
func TestUndeletableDebris(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "vfs")
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := d.Prepare(ctx, "c", "")
	if err != nil {
		t.Fatal(err)
	}
	stuck := filepath.Join(mounts[0].Source, "stuck")
	if err := os.WriteFile(stuck, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	setImmutable(t, stuck, true)
	tmp := filepath.Join(root, "tmp")
	defer func() {
		// Wherever the file is now, let t.TempDir() delete it.
		ents, _ := os.ReadDir(tmp)
		for _, e := range ents {
			if p := filepath.Join(tmp, e.Name(), "fs", "stuck"); exists(p) {
				setImmutable(t, p, false)
			}
		}
	}()
	if err := d.Remove(ctx, "c"); err == nil {
		t.Fatal("removing an immutable file worked: the test tests nothing")
	}
	if _, err := d.Stat(ctx, "c"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("stat after a remove that could not delete everything: %v", err)
	}
	d.Close()
	d, err = New(root)
	if err != nil {
		t.Fatalf("open with undeletable debris: %v", err)
	}
	d.Close()
	ents, _ := os.ReadDir(tmp)
	if len(ents) != 1 {
		t.Fatalf("%d entries in tmp/, want the stuck one", len(ents))
	}
	setImmutable(t, filepath.Join(tmp, ents[0].Name(), "fs", "stuck"), false)
	d, err = New(root)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%d entries left in tmp/ once deletable", len(ents))
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

package btrfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/btrfstest"
	"berth.dev/berth/snapshot/testsuite"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestSuite(t *testing.T) {
	testutil.RequireRoot(t)
	mnt := btrfstest.Mount(t, 1<<30)
	newDriver := func(t *testing.T) snapshot.Driver {
		root, err := os.MkdirTemp(mnt, "root-")
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	testsuite.Run(t, newDriver, testsuite.ChainDepth(40), testsuite.Reopen(New))
}

func TestSubvolumes(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	mnt := btrfstest.Mount(t, 1<<30)
	d, err := New(filepath.Join(mnt, "btrfs"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	root := d.(interface{ Root() string }).Root()
	if _, err := d.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, "base", "a"); err != nil {
		t.Fatal(err)
	}
	mounts, err := d.Prepare(ctx, "c", "base")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var sawRO, sawRW bool
	for _, e := range ents {
		fs := filepath.Join(root, "snapshots", e.Name(), "fs")
		sub, err := isSubvolume(fs)
		if err != nil || !sub {
			t.Errorf("%s is not a subvolume: %v", fs, err)
		}
		ro, err := isReadOnly(fs)
		if err != nil {
			t.Fatal(err)
		}
		if fs == mounts[0].Source {
			sawRW = !ro
		} else {
			sawRO = ro
		}
	}
	if !sawRO || !sawRW {
		t.Errorf("want the committed subvolume read-only and the active one writable (ro seen %v, rw seen %v)", sawRO, sawRW)
	}
	// A container that makes its own subvolume can still be removed.
	if err := subvolCreate(filepath.Join(mounts[0].Source, "nested")); err != nil {
		t.Fatal(err)
	}
	if err := subvolCreate(filepath.Join(mounts[0].Source, "nested", "deeper")); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, "c"); err != nil {
		t.Fatalf("remove a snapshot with nested subvolumes: %v", err)
	}
	if err := d.Remove(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "snapshots")); len(ents) != 0 {
		t.Errorf("%d snapshots left", len(ents))
	}
}

func TestNotBtrfs(t *testing.T) {
	err := Supported(t.TempDir())
	if !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Errorf("Supported on a non-btrfs dir: %v", err)
	}
	if _, err := New(t.TempDir()); err == nil {
		t.Error("New on a non-btrfs dir works")
	}
}

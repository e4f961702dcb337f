package metadata_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/content"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/metadata"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/vfs"
	digest "github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func open(t *testing.T, root string) (*metadata.DB, *content.Store, snapshot.Driver) {
	t.Helper()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := vfs.New(filepath.Join(root, "vfs"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := metadata.Open(root, cs, sn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); sn.Close() })
	return db, cs, sn
}

func blob(t *testing.T, cs *content.Store, data string) digest.Digest {
	t.Helper()
	d, err := cs.Ingest(context.Background(), "t-"+digest.FromString(data).Encoded(), strings.NewReader(data), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSecondOpenerIsRefused(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	open(t, root)
	cs, _ := content.Open(filepath.Join(root, "content"))
	sn, err := vfs.New(filepath.Join(root, "vfs2"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if _, err := metadata.Open(root, cs, sn); !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

// TestGC: a lease keeps what it names until released; images keep their
// config, manifests and layers; the rest goes.
func TestGC(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	db, cs, sn := open(t, root)

	lease, err := db.NewLease()
	if err != nil {
		t.Fatal(err)
	}
	kept := blob(t, cs, "config")
	loose := blob(t, cs, "nobody's")
	if err := lease.AddContent(kept); err != nil {
		t.Fatal(err)
	}
	if err := lease.AddSnapshot("base", "active"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "tmp-base", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "base", "tmp-base"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "orphan", "base"); err != nil {
		t.Fatal(err)
	}
	st, err := db.GC()
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 1 || st.Snapshots != 1 {
		t.Fatalf("gc removed %+v, want the loose blob and the orphan snapshot", st)
	}
	if _, err := cs.Info(ctx, loose); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("loose blob: %v", err)
	}
	// An image takes over what the lease held.
	if err := db.Update(func(tx *metadata.Tx) error {
		if err := tx.PutImage(metadata.Image{ID: kept, ChainIDs: []digest.Digest{"base"}}); err != nil {
			return err
		}
		return tx.PutLayer(metadata.Layer{ChainID: "base"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(); err != nil {
		t.Fatal(err)
	}
	st, err = db.GC()
	if err != nil || st.Blobs != 0 || st.Snapshots != 1 || st.Layers != 0 {
		t.Fatalf("gc after release: %+v %v (want only the active snapshot gone)", st, err)
	}
	if _, err := cs.Info(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "base"); err != nil {
		t.Fatal(err)
	}
}

// TestGCKeepsGoing: one snapshot that cannot be removed does not stop the
// removal of the others, and the error names it.
func TestGCKeepsGoing(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	db, cs, sn := open(t, root)
	for _, k := range []string{"a", "b", "c"} {
		mounts, err := sn.Prepare(ctx, k, "")
		if err != nil {
			t.Fatal(err)
		}
		if k == "b" {
			// An immutable file makes b impossible to delete.
			f := filepath.Join(mounts[0].Source, "stuck")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := setImmutable(f, true); err != nil {
				t.Skipf("chattr +i: %v", err)
			}
			// The driver may have moved it aside when it failed.
			t.Cleanup(func() {
				_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
					if err == nil && d.Name() == "stuck" {
						_ = setImmutable(p, false)
					}
					return nil
				})
			})
		}
	}
	blob(t, cs, "loose")
	st, err := db.GC()
	if err == nil || !strings.Contains(err.Error(), "snapshot b") {
		t.Fatalf("gc error %v, want one naming snapshot b", err)
	}
	if st.Snapshots != 2 || st.Blobs != 1 {
		t.Fatalf("gc removed %+v despite one failure, want 2 snapshots and the blob", st)
	}
}

// TestTemporaryLeasesEndWithTheProcess: a lease left by a process that died
// is dropped at the next Open, and what it held goes.
func TestTemporaryLeasesEndWithTheProcess(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	db, cs, sn := open(t, root)
	lease, err := db.NewLease()
	if err != nil {
		t.Fatal(err)
	}
	d := blob(t, cs, "held")
	if err := lease.AddContent(d); err != nil {
		t.Fatal(err)
	}
	db.Close()
	sn.Close()
	db2, cs2, _ := open(t, root)
	if _, err := cs2.Info(context.Background(), d); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("blob of a dead lease: %v", err)
	}
	err = db2.View(func(tx *metadata.Tx) error {
		l, err := tx.Leases()
		if len(l) != 0 {
			t.Errorf("leases left: %+v", l)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func setImmutable(path string, on bool) error {
	flag := "-i"
	if on {
		flag = "+i"
	}
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		return fmt.Errorf("chattr %s: %v: %s", flag, err, out)
	}
	return nil
}

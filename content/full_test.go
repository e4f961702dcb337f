package content

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
)

// A disk that fills up in the middle of a download: the write fails with
// ENOSPC, nothing becomes a blob, and once there is room again the ingest
// resumes from what did reach the disk.
func TestDiskFull(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	smallCheckpoints(t, 512<<10)
	mnt := filepath.Join(t.TempDir(), "small")
	if err := unix.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=3m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Error(err)
		}
	})
	s, err := Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	data, dgst := testData(60, 5<<20)
	w, err := s.Writer(ctx, "full", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = w.ReadFrom(bytes.NewReader(data))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full disk: %v", err)
	}
	written := w.Offset()
	if written <= 0 || written >= int64(len(data)) {
		t.Fatalf("offset %d after ENOSPC", written)
	}
	if _, err := w.Write(data[written : written+10]); err == nil {
		t.Fatal("write after a failed one succeeded")
	}
	if err := w.Commit(ctx, 0, ""); err == nil {
		t.Fatal("commit of a failed writer succeeded")
	}
	w.Close()
	if len(walkAll(t, s)) != 0 {
		t.Fatal("a blob appeared")
	}

	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	w, err = s.Writer(ctx, "full", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	off := w.Offset()
	if off != written {
		t.Logf("resumed at %d, the failed writer reported %d", off, written)
	}
	if w.Digest() != digestOf(data[:off]) {
		t.Fatalf("resumed hash is not that of the first %d bytes", off)
	}
	if _, err := w.Write(data[off:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
}

// A commit that cannot move the data into blobs/ (here: blobs/ made
// immutable) fails, leaves the ingest as it was, writable, and the same
// writer commits once it can.
func TestCommitCannotMove(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(61, 100_000)
	if out, err := exec.Command("chattr", "+i", s.blobs).CombinedOutput(); err != nil {
		t.Skipf("chattr +i on %s: %v: %s", s.blobs, err, out)
	}
	immutable := true
	unfreeze := func() {
		if immutable {
			if out, err := exec.Command("chattr", "-i", s.blobs).CombinedOutput(); err != nil {
				t.Fatalf("chattr -i: %v: %s", err, out)
			}
			immutable = false
		}
	}
	t.Cleanup(unfreeze)
	w, err := s.Writer(ctx, "frozen", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(data)
	if err := w.Commit(ctx, 0, ""); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("commit into an immutable blobs/: %v", err)
	}
	fi, err := os.Stat(filepath.Join(s.ingestDir("frozen"), fileData))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(len(data)) {
		t.Fatalf("ingest data after the failed commit: %v %v", fi, err)
	}
	if _, err := s.Info(ctx, dgst); err == nil {
		t.Fatal("blob exists after a failed commit")
	}
	unfreeze()
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
	noIngests(t, s)
}

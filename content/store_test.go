package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

func TestWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(1, 3<<20+17)
	before := time.Now().Add(-time.Second)

	w, err := s.Writer(ctx, "load-"+dgst.String(), WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 100_000)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if w.Offset() != int64(len(data)) || w.Digest() != dgst {
		t.Fatalf("offset %d digest %s, want %d %s", w.Offset(), w.Digest(), len(data), dgst)
	}
	if _, err := s.Info(ctx, dgst); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("blob visible before commit: %v", err)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after commit succeeded")
	}

	info, err := s.Info(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != dgst || info.Size != int64(len(data)) || info.CreatedAt.Before(before) || info.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("info %+v", info)
	}
	checkBlob(t, s, dgst, data)
	p, err := s.Path(dgst)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob mode %v, want 0444", fi.Mode())
	}
	if p != filepath.Join(s.Root(), "blobs", "sha256", dgst.Encoded()) {
		t.Fatalf("path %s", p)
	}
	f, err := s.Open(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := walkAll(t, s); len(got) != 1 || got[dgst].Size != int64(len(data)) {
		t.Fatalf("walk: %+v", got)
	}
	noIngests(t, s)

	// The same blob again: Writer says it exists, Ingest succeeds at once.
	_, err = s.Writer(ctx, "again", WithExpected(dgst, int64(len(data))))
	if !IsExists(err) || !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("writer for a stored blob: %v", err)
	}
	got, err := s.Ingest(ctx, "again", strings.NewReader("not read"), dgst, int64(len(data)))
	if err != nil || got != dgst {
		t.Fatalf("ingest of a stored blob: %s %v", got, err)
	}
	noIngests(t, s)

	// Written again without saying what it is: the commit finds the blob
	// there, succeeds, leaves it as it was and drops the ingest.
	w, err = s.Writer(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx, int64(len(data)), dgst); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Info(ctx, dgst); err != nil || again != info {
		t.Fatalf("blob after a duplicate commit: %+v %v, was %+v", again, err, info)
	}
	checkBlob(t, s, dgst, data)
	noIngests(t, s)
}

func TestEmptyBlob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	dgst := digest.FromBytes(nil)
	got, err := s.Ingest(ctx, "empty", strings.NewReader(""), dgst, 0)
	if err != nil || got != dgst {
		t.Fatalf("%s %v", got, err)
	}
	checkBlob(t, s, dgst, nil)
}

func TestCommitWithoutExpected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(2, 1000)
	got, err := s.Ingest(ctx, "anon", strings.NewReader(string(data)), "", 0)
	if err != nil || got != dgst {
		t.Fatalf("%s %v, want %s", got, err, dgst)
	}
	checkBlob(t, s, dgst, data)
}

func TestWrongDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(3, 5000)
	_, other := testData(4, 5000)

	w, err := s.Writer(ctx, "bad", WithExpected(other, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	err = w.Commit(ctx, 5000, "")
	mustKind(t, err, errdefs.KindInvalid)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), dgst.String()) || !strings.Contains(err.Error(), other.String()) {
		t.Fatalf("error should wrap ErrDigestMismatch and name both digests: %v", err)
	}
	for _, d := range []digest.Digest{dgst, other} {
		if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Fatalf("blob %s after a failed commit: %v", d, err)
		}
	}
	noIngests(t, s)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Expected given only at Commit, through Ingest.
	_, err = s.Ingest(ctx, "bad2", strings.NewReader(string(data)), other, 0)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ingest with wrong digest: %v", err)
	}
	noIngests(t, s)

	// Commit as another digest than the writer was opened for.
	w, err = s.Writer(ctx, "bad3", WithExpected(dgst, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(data)
	mustKind(t, w.Commit(ctx, 0, other), errdefs.KindInvalid)
	if err := w.Commit(ctx, 0, dgst); err != nil {
		t.Fatalf("commit after a refused one: %v", err)
	}
	checkBlob(t, s, dgst, data)
}

func TestWrongSize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(5, 4096)

	// Too long: the data is wrong, the ingest goes.
	w, err := s.Writer(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	err = w.Commit(ctx, 4000, dgst)
	mustKind(t, err, errdefs.KindInvalid)
	noIngests(t, s)

	// Past the size given to WithExpected: Write refuses it.
	w, err = s.Writer(ctx, "over", WithExpected(dgst, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:4000]); err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(data[:200])
	mustKind(t, err, errdefs.KindInvalid)
	if w.Offset() != 4000 {
		t.Fatalf("refused write moved the offset to %d", w.Offset())
	}

	// Too short: kept, so the download can go on.
	err = w.Commit(ctx, 0, "")
	mustKind(t, err, errdefs.KindInvalid)
	if !strings.Contains(err.Error(), "short") {
		t.Fatalf("short commit: %v", err)
	}
	if st, err := s.Status(ctx, "over"); err != nil || st.Offset != 4000 || st.Total != 4096 || st.Expected != dgst {
		t.Fatalf("status after short commit: %+v %v", st, err)
	}
	if _, err := w.Write(data[4000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
	noIngests(t, s)
	mustKind(t, w.Commit(ctx, 0, ""), errdefs.KindUnknown)
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(6, 10000)
	if _, err := s.Ingest(ctx, "d", strings.NewReader(string(data)), dgst, 10000); err != nil {
		t.Fatal(err)
	}
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if err := s.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	mustKind(t, s.Delete(ctx, dgst), errdefs.KindNotFound)
	_, err = s.Info(ctx, dgst)
	mustKind(t, err, errdefs.KindNotFound)
	_, err = s.ReaderAt(ctx, dgst)
	mustKind(t, err, errdefs.KindNotFound)
	_, err = s.Open(ctx, dgst)
	mustKind(t, err, errdefs.KindNotFound)
	mustKind(t, s.Verify(ctx, dgst), errdefs.KindNotFound)
	if len(walkAll(t, s)) != 0 {
		t.Fatal("walk shows a deleted blob")
	}
	// A reader opened before keeps its data.
	buf := make([]byte, 100)
	if _, err := ra.ReadAt(buf, 5000); err != nil || string(buf) != string(data[5000:5100]) {
		t.Fatalf("read from a deleted blob's open reader: %v", err)
	}
	// And it can be stored again.
	if _, err := s.Ingest(ctx, "d", strings.NewReader(string(data)), dgst, 10000); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := map[digest.Digest]int{}
	for i := range 5 {
		data, dgst := testData(uint64(100+i), 1000*(i+1))
		if _, err := s.Ingest(ctx, "w"+dgst.String(), strings.NewReader(string(data)), dgst, 0); err != nil {
			t.Fatal(err)
		}
		want[dgst] = len(data)
	}
	// Ingests in progress and interrupted are not blobs.
	data, dgst := testData(200, 5000)
	live, err := s.Writer(ctx, "live", WithExpected(dgst, 5000))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.Write(data)
	w, err := s.Writer(ctx, "closed")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()

	got := walkAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("walk: %d blobs, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d].Size != int64(n) {
			t.Fatalf("walk: %s size %d, want %d", d, got[d].Size, n)
		}
	}
	calls := 0
	err = s.Walk(ctx, func(Info) error { calls++; return errStop })
	if err != errStop || calls != 1 {
		t.Fatalf("walk with a stopping fn: %v after %d calls", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Walk(cctx, func(Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("walk with a cancelled context: %v", err)
	}
	st, err := s.ListIngests(ctx)
	if err != nil || len(st) != 2 {
		t.Fatalf("ingests: %+v %v", st, err)
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(7, 70000)
	if _, err := s.Ingest(ctx, "v", strings.NewReader(string(data)), dgst, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(dgst)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{data[1234] ^ 1}, 1234)
	f.Close()
	if err := s.Verify(ctx, dgst); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("verify of a corrupted blob: %v", err)
	}
}

// io.Copy into a Writer goes through ReadFrom, which gathers small reads.
func TestWriterReadFrom(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(8, 3<<20+999)
	w, err := s.Writer(ctx, "rf", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n, err := io.Copy(w, &chunkReader{r: bytes.NewReader(data), max: 1000})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copy: %d %v", n, err)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)

	// A failing source: the error comes back, the bytes before it stay.
	w, err = s.Writer(ctx, "rf2")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	boom := errors.New("connection reset")
	n, err = io.Copy(w, io.MultiReader(bytes.NewReader(data[:5000]), &failReader{boom}))
	if !errors.Is(err, boom) || n != 5000 || w.Offset() != 5000 {
		t.Fatalf("copy from a failing source: %d %v, offset %d", n, err, w.Offset())
	}
}

type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

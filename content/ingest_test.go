package content

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

func TestSameRefConflicts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	other, err := Open(s.Root()) // another Store on the same root, as another process would
	if err != nil {
		t.Fatal(err)
	}
	data, dgst := testData(20, 10_000)
	w, err := s.Writer(ctx, "one", WithExpected(dgst, 10_000))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:5000])
	for _, st := range []*Store{s, other} {
		_, err := st.Writer(ctx, "one")
		mustKind(t, err, errdefs.KindConflict)
		if IsExists(err) {
			t.Fatal("a busy ingest is not an existing blob")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := other.Writer(ctx, "one")
	if err != nil {
		t.Fatalf("after the first writer closed: %v", err)
	}
	defer w2.Close()
	if w2.Offset() != 5000 {
		t.Fatalf("offset %d", w2.Offset())
	}
	w2.Write(data[5000:])
	if err := w2.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
}

func TestSameDigestDifferentRefs(t *testing.T) {
	ctx := context.Background()
	smallCheckpoints(t, 256<<10)
	s := newStore(t)
	data, dgst := testData(21, 2<<20)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Writer directly: Ingest would skip if another finished first.
			w, err := s.Writer(ctx, "ref-"+itoa(int64(i)))
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] {
				if _, err := w.Write(p[:min(len(p), 32<<10)]); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = w.Commit(ctx, int64(len(data)), dgst)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if got := walkAll(t, s); len(got) != 1 {
		t.Fatalf("walk: %d blobs, want 1", len(got))
	}
	checkBlob(t, s, dgst, data)
	noIngests(t, s)
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(22, 1000)
	mustKind(t, s.Abort(ctx, "nothing"), errdefs.KindNotFound)
	mustKind(t, s.Abort(ctx, ""), errdefs.KindInvalid)

	w, err := s.Writer(ctx, "a", WithExpected(dgst, 1000))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:500])
	mustKind(t, s.Abort(ctx, "a"), errdefs.KindConflict)
	w.Close()
	if err := s.Abort(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	noIngests(t, s)
	_, err = s.Status(ctx, "a")
	mustKind(t, err, errdefs.KindNotFound)
	mustKind(t, s.Abort(ctx, "a"), errdefs.KindNotFound)
	w, err = s.Writer(ctx, "a", WithExpected(dgst, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Fatalf("after abort: offset %d", w.Offset())
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, err := s.Status(ctx, "none")
	mustKind(t, err, errdefs.KindNotFound)
	refs := []string{"plain", "with/slash/../../etc", "docker.io/library/busybox@sha256:x", strings.Repeat("long", 1000)}
	for i, ref := range refs {
		w, err := s.Writer(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, 100*(i+1)))
		w.Close()
	}
	list, err := s.ListIngests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(refs) {
		t.Fatalf("%d ingests, want %d", len(list), len(refs))
	}
	for i, ref := range refs {
		st, err := s.Status(ctx, ref)
		if err != nil || st.Ref != ref || st.Offset != int64(100*(i+1)) || st.Total != 0 || st.Expected != "" || st.UpdatedAt.IsZero() {
			t.Fatalf("status %q: %+v %v", ref, st, err)
		}
	}
	// Refs name nothing on disk but their hash.
	ents, _ := os.ReadDir(s.ingst)
	for _, e := range ents {
		if len(e.Name()) != 64 {
			t.Fatalf("ingest dir %q", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "etc")); err == nil {
		t.Fatal("a ref made a path outside the store")
	}
}

func TestOpenCleansCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	blob, bdgst := testData(30, 1000)
	if _, err := s.Ingest(ctx, "b", bytes.NewReader(blob), bdgst, 0); err != nil {
		t.Fatal(err)
	}
	data, dgst := testData(31, 1000)

	// Resumable: kept, its stale .tmp files go.
	w, _ := s.Writer(ctx, "resumable", WithExpected(dgst, 1000))
	w.Write(data[:400])
	w.Close()
	resumable := s.ingestDir("resumable")
	os.WriteFile(filepath.Join(resumable, fileState+tmpSuffix), []byte("half a checkpoint"), 0o600)
	os.WriteFile(filepath.Join(resumable, fileRef+tmpSuffix), []byte("half a"), 0o600)

	// Held by a live writer: untouched, even its .tmp.
	held, err := s.Writer(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.Write(data[:10])
	heldTmp := filepath.Join(s.ingestDir("held"), "x"+tmpSuffix)
	os.WriteFile(heldTmp, nil, 0o600)

	// Setup cut short (no ref), and a commit cut short (data already moved).
	noRef := filepath.Join(s.ingst, strings.Repeat("1", 64))
	os.Mkdir(noRef, 0o700)
	os.WriteFile(filepath.Join(noRef, fileData), []byte("abc"), 0o600)
	noData := filepath.Join(s.ingst, strings.Repeat("2", 64))
	os.Mkdir(noData, 0o700)
	os.WriteFile(filepath.Join(noData, fileRef), []byte("gone"), 0o600)
	stray := filepath.Join(s.ingst, "stray")
	os.WriteFile(stray, nil, 0o600)
	junkBlob := filepath.Join(s.blobs, bdgst.Encoded()+tmpSuffix)
	os.WriteFile(junkBlob, nil, 0o600)
	junkDir := filepath.Join(s.blobs, strings.Repeat("a", 64))
	os.Mkdir(junkDir, 0o700)

	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	// blobs/ is not Open's business; Walk skips what is not a blob.
	if got := walkAll(t, s); len(got) != 1 {
		t.Errorf("walk shows junk: %v", got)
	}
	for _, p := range []string{noRef, noData, stray,
		filepath.Join(resumable, fileState+tmpSuffix), filepath.Join(resumable, fileRef+tmpSuffix)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
	if _, err := os.Stat(heldTmp); err != nil {
		t.Errorf("Open touched a held ingest: %v", err)
	}
	checkBlob(t, s2, bdgst, blob)
	st, err := s2.Status(ctx, "resumable")
	if err != nil || st.Offset != 400 {
		t.Fatalf("resumable ingest after Open: %+v %v", st, err)
	}
	w, err = s2.Writer(ctx, "resumable", WithExpected(dgst, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 400 || w.saved != 400 {
		t.Fatalf("resume after Open at %d (checkpoint %d)", w.Offset(), w.saved)
	}
	w.Write(data[400:])
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s2, dgst, data)
}

// A digest is checked before it becomes a path: nothing outside the store
// is read, made or removed through one.
func TestHostileDigests(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s, err := Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	// Targets a traversal would reach.
	victims := []string{filepath.Join(base, "etc"), filepath.Join(s.Root(), "blobs", "etc"), filepath.Join(s.Root(), "victim")}
	for _, v := range victims {
		os.WriteFile(v, []byte("keep"), 0o600)
	}
	hex := strings.Repeat("ab", 32)
	malformed := []digest.Digest{
		"sha256:../../etc", "sha256:../../../etc", "sha256:../victim", "sha256:..", "sha256:",
		"sha256:/etc/passwd", "sha256:" + digest.Digest(strings.Repeat("a", 63)), "sha256:" + digest.Digest(hex) + "/..",
		"sha256:" + digest.Digest(strings.ToUpper(hex)), "sha256:" + digest.Digest(hex) + "0", "sha256:" + digest.Digest(hex[:62]) + "\x00a",
		"../../etc", "", "sha256", ":" + digest.Digest(hex), "SHA256:" + digest.Digest(hex), "sha256 :" + digest.Digest(hex),
		"sha512:../../etc", "md5:../x",
	}
	unsupported := []digest.Digest{
		"sha512:" + digest.Digest(strings.Repeat("ab", 64)), "sha384:" + digest.Digest(strings.Repeat("ab", 48)), "blake3:" + digest.Digest(hex),
	}
	for _, d := range append(malformed, unsupported...) {
		calls := map[string]error{}
		_, calls["Info"] = s.Info(ctx, d)
		_, calls["Open"] = s.Open(ctx, d)
		_, calls["ReaderAt"] = s.ReaderAt(ctx, d)
		_, calls["Path"] = s.Path(d)
		calls["Delete"] = s.Delete(ctx, d)
		calls["Verify"] = s.Verify(ctx, d)
		if d != "" { // "" is "unknown" to these
			_, calls["Writer"] = s.Writer(ctx, "x", WithExpected(d, 0))
			_, calls["Ingest"] = s.Ingest(ctx, "y", strings.NewReader("z"), d, 0)
			w, err := s.Writer(ctx, "z")
			if err != nil {
				t.Fatal(err)
			}
			calls["Commit"] = w.Commit(ctx, 0, d)
			w.Close()
		}
		for name, err := range calls {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("%s(%q): want invalid, got %v", name, d, err)
			}
			isUnsupported := errors.Is(err, ErrUnsupportedAlgorithm)
			if isUnsupported != (d == unsupported[0] || d == unsupported[1] || d == unsupported[2]) {
				t.Errorf("%s(%q): unsupported=%v: %v", name, d, isUnsupported, err)
			}
		}
	}
	for _, v := range victims {
		if b, err := os.ReadFile(v); err != nil || string(b) != "keep" {
			t.Errorf("%s: %q %v", v, b, err)
		}
	}
	if len(walkAll(t, s)) != 0 {
		t.Fatal("blobs appeared")
	}
	if err := s.Abort(ctx, "z"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"x", "y"} {
		if _, err := s.Status(ctx, ref); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Errorf("ingest %q made for an invalid digest: %v", ref, err)
		}
	}
	noIngests(t, s)
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, err := s.Writer(ctx, "")
	mustKind(t, err, errdefs.KindInvalid)
	_, err = s.Writer(ctx, "neg", WithExpected("", -1))
	mustKind(t, err, errdefs.KindInvalid)
	_, err = s.Status(ctx, "")
	mustKind(t, err, errdefs.KindInvalid)
	w, err := s.Writer(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort(ctx, "n")
	defer w.Close()
	mustKind(t, w.Commit(ctx, -5, ""), errdefs.KindInvalid)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Writer(cctx, "m"); !errors.Is(err, context.Canceled) {
		t.Fatalf("writer with a cancelled context: %v", err)
	}
}

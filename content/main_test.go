package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) {
	// The killed-writer test re-executes this binary as the writer.
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	leakcheck.Main(m)
}

// testData returns n deterministic pseudo-random bytes (the same in the
// helper process) and their digest.
func testData(seed uint64, n int) ([]byte, digest.Digest) {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	r.Read(b)
	return b, digest.FromBytes(b)
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// smallCheckpoints makes checkpoints happen every n bytes for one test.
func smallCheckpoints(t testing.TB, n int64) {
	old := checkpointEvery
	checkpointEvery = n
	t.Cleanup(func() { checkpointEvery = old })
}

func mustKind(t testing.TB, err error, k errdefs.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", k)
	}
	if got := errdefs.KindOf(err); got != k {
		t.Fatalf("want a %s error, got %s: %v", k, got, err)
	}
}

func readBlob(t testing.TB, s *Store, dgst digest.Digest) []byte {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkBlob(t testing.TB, s *Store, dgst digest.Digest, want []byte) {
	t.Helper()
	if got := readBlob(t, s, dgst); !bytes.Equal(got, want) {
		t.Fatalf("blob %s: content differs (%d bytes, want %d)", dgst, len(got), len(want))
	}
	if err := s.Verify(context.Background(), dgst); err != nil {
		t.Fatal(err)
	}
}

func walkAll(t testing.TB, s *Store) map[digest.Digest]Info {
	t.Helper()
	m := map[digest.Digest]Info{}
	if err := s.Walk(context.Background(), func(i Info) error { m[i.Digest] = i; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func noIngests(t testing.TB, s *Store) {
	t.Helper()
	st, err := s.ListIngests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 0 {
		t.Fatalf("ingests left: %+v", st)
	}
	ents, err := os.ReadDir(s.ingst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("ingest dir not empty: %v", ents)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var errStop = errors.New("stop")

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

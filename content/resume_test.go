package content

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

const helperEnv = "BERTH_CONTENT_TEST_WRITER"

// helperMain is the process the killed-writer test kills: it opens a writer
// on root for ref, writes the first n bytes of test data (seed, size),
// reports "ready", and waits to be killed holding the writer open.
// Argument: root|ref|seed|size|n|checkpointEvery.
func helperMain() int {
	a := strings.Split(os.Getenv(helperEnv), "|")
	if len(a) != 6 {
		fmt.Fprintln(os.Stderr, "helper: bad argument")
		return 2
	}
	seed, _ := strconv.ParseUint(a[2], 10, 64)
	size, _ := strconv.Atoi(a[3])
	n, _ := strconv.Atoi(a[4])
	checkpointEvery, _ = strconv.ParseInt(a[5], 10, 64)
	data, dgst := testData(seed, size)
	s, err := Open(a[0])
	var w *Writer
	if err == nil {
		w, err = s.Writer(context.Background(), a[1], WithExpected(dgst, int64(size)))
		for p := data[:n]; err == nil && len(p) > 0; {
			k := min(len(p), 64<<10)
			_, err = w.Write(p[:k])
			p = p[k:]
		}
	}
	if err == nil {
		// Let the checkpoint in flight land, so the test knows there is one.
		err = w.waitCheckpoint()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Println("ready")
	// Until SIGKILL; if the test dies first, stdin closes and so does this.
	io.Copy(io.Discard, os.Stdin)
	return 1
}

// A writer killed in the middle of a blob: the blob is never visible, its
// lock dies with it, and the next writer resumes where it stopped.
func TestResumeAfterKill(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const seed, size, half = 9, 5<<20 + 333, 3<<20 + 77
	data, dgst := testData(seed, size)
	ref := "fetch-" + dgst.String()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d|%d|%d|%d", helperEnv, s.Root(), ref, seed, size, half, 1<<20))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper: %q %v", line, err)
	}

	st, err := s.Status(ctx, ref)
	if err != nil || st.Offset != half || st.Total != size || st.Expected != dgst || st.Ref != ref {
		t.Fatalf("status while the helper writes: %+v %v", st, err)
	}
	_, err = s.Writer(ctx, ref)
	mustKind(t, err, errdefs.KindConflict)
	mustKind(t, s.Abort(ctx, ref), errdefs.KindConflict)
	if _, err := s.Info(ctx, dgst); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("partial blob visible: %v", err)
	}
	if len(walkAll(t, s)) != 0 {
		t.Fatal("walk shows a partial blob")
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	killed = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", werr)
	}

	// Open after the crash keeps the ingest; the helper's checkpoints
	// (every MiB) are there for the resume.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	dir := s2.ingestDir(ref)
	off, _, ok := loadCheckpoint(dir)
	if !ok || off < 1<<20 || off > half {
		t.Fatalf("checkpoint after the kill: %d %v", off, ok)
	}
	w, err := s2.Writer(ctx, ref, WithExpected(dgst, size))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != half {
		t.Fatalf("resume offset %d, want %d", w.Offset(), half)
	}
	// What the killed writer wrote can be read back (a pull feeding its
	// decompressor the prefix before streaming the rest).
	prefix, err := io.ReadAll(w.Written())
	if err != nil || !bytes.Equal(prefix, data[:half]) {
		t.Fatalf("written prefix: %d bytes, %v", len(prefix), err)
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, size, dgst); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s2, dgst, data)
	noIngests(t, s2)
}

func TestResumeAfterClose(t *testing.T) {
	ctx := context.Background()
	smallCheckpoints(t, 64<<10)
	s := newStore(t)
	data, dgst := testData(10, 1<<20+5)
	ref := "r"
	cuts := []int{0, 1, 100_000, 100_001, 700_000, len(data)}
	for i := 1; i < len(cuts); i++ {
		w, err := s.Writer(ctx, ref, WithExpected(dgst, int64(len(data))))
		if err != nil {
			t.Fatal(err)
		}
		if w.Offset() != int64(cuts[i-1]) {
			t.Fatalf("step %d: resume offset %d, want %d", i, w.Offset(), cuts[i-1])
		}
		if _, err := w.Write(data[cuts[i-1]:cuts[i]]); err != nil {
			t.Fatal(err)
		}
		if i == len(cuts)-1 {
			if err := w.Commit(ctx, 0, ""); err != nil {
				t.Fatal(err)
			}
			break
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Close leaves a checkpoint of everything written.
		if off, _, ok := loadCheckpoint(s.ingestDir(ref)); !ok || off != int64(cuts[i]) {
			t.Fatalf("step %d: checkpoint at %d (%v), want %d", i, off, ok, cuts[i])
		}
		if _, err := s.Info(ctx, dgst); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Fatalf("blob visible before commit: %v", err)
		}
	}
	checkBlob(t, s, dgst, data)
}

// The checkpoint is what a resume trusts: without a usable one the whole
// file is hashed again, with one only the tail is.
func TestResumeCheckpointUse(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(11, 300_000)
	for _, damage := range []string{"none", "torn", "garbage", "missing", "beyond-data"} {
		t.Run(damage, func(t *testing.T) {
			ref := "ck-" + damage
			w, err := s.Writer(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data[:200_000])
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			dir := s.ingestDir(ref)
			state := filepath.Join(dir, fileState)
			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "torn":
				os.WriteFile(state, b[:len(b)-3], 0o600)
			case "garbage":
				b[len(b)/2] ^= 0xff
				os.WriteFile(state, b, 0o600)
			case "missing":
				os.Remove(state)
			case "beyond-data": // the data lost its tail (power loss)
				os.Truncate(filepath.Join(dir, fileData), 150_000)
			}
			w, err = s.Writer(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			from := int64(200_000)
			if damage == "beyond-data" {
				from = 150_000
			}
			if w.Offset() != from {
				t.Fatalf("offset %d, want %d", w.Offset(), from)
			}
			wantSaved := from
			if damage != "none" {
				wantSaved = 0
			}
			if w.saved != wantSaved {
				t.Fatalf("resumed from checkpoint at %d, want %d", w.saved, wantSaved)
			}
			w.Write(data[from:])
			if err := w.Commit(ctx, 0, dgst); err != nil {
				t.Fatal(err)
			}
			checkBlob(t, s, dgst, data)
			if err := s.Delete(ctx, dgst); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckpointEncoding(t *testing.T) {
	b := encodeCheckpoint(12345, []byte("state bytes"))
	off, st, err := decodeCheckpoint(b)
	if err != nil || off != 12345 || string(st) != "state bytes" {
		t.Fatalf("%d %q %v", off, st, err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, _, err := decodeCheckpoint(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for i := range len(b) {
		if _, _, err := decodeCheckpoint(b[:i]); err == nil {
			t.Fatalf("truncated to %d accepted", i)
		}
	}
}

func TestTruncateAndReset(t *testing.T) {
	ctx := context.Background()
	smallCheckpoints(t, 10_000)
	s := newStore(t)
	data, dgst := testData(12, 100_000)

	w, err := s.Writer(ctx, "t", WithExpected(dgst, 100_000))
	if err != nil {
		t.Fatal(err)
	}
	// A server answers from offset 30000 although we had 80000.
	w.Write(data[:80_000])
	mustKind(t, w.Truncate(80_001), errdefs.KindInvalid)
	mustKind(t, w.Truncate(-1), errdefs.KindInvalid)
	if err := w.Truncate(30_000); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 30_000 || w.Digest() != digest.FromBytes(data[:30_000]) {
		t.Fatalf("after truncate: %d %s", w.Offset(), w.Digest())
	}
	// The on-disk checkpoint must not claim more than the data has.
	if off, _, ok := loadCheckpoint(s.ingestDir("t")); !ok || off != 30_000 {
		t.Fatalf("checkpoint after truncate: %d %v", off, ok)
	}
	// Different bytes than before past the cut, then reopen: still right.
	w.Write(bytes.Repeat([]byte{'x'}, 40_000))
	w.Close()
	w, err = s.Writer(ctx, "t", WithExpected(dgst, 100_000))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 70_000 || w.Digest() != digest.FromBytes(append(bytes.Clone(data[:30_000]), bytes.Repeat([]byte{'x'}, 40_000)...)) {
		t.Fatalf("reopened: %d %s", w.Offset(), w.Digest())
	}
	// A server that ignores Range: start over.
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 || w.Digest() != digest.FromBytes(nil) {
		t.Fatalf("after reset: %d %s", w.Offset(), w.Digest())
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, 100_000, dgst); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, dgst, data)
}

func TestReopenForAnotherBlobStartsOver(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, da := testData(13, 5000)
	b, db := testData(14, 6000)
	w, err := s.Writer(ctx, "same-ref", WithExpected(da, 5000))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(a[:3000])
	w.Close()
	// No expectation: resume what is there.
	w, err = s.Writer(ctx, "same-ref")
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 3000 || w.expected != da || w.total != 5000 {
		t.Fatalf("plain reopen: %d %s %d", w.Offset(), w.expected, w.total)
	}
	w.Close()
	w, err = s.Writer(ctx, "same-ref", WithExpected(db, 6000))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Fatalf("reopen for another blob at %d, want 0", w.Offset())
	}
	// The old blob's checkpoint is replaced, not merely removed.
	if off, _, ok := loadCheckpoint(s.ingestDir("same-ref")); !ok || off != 0 {
		t.Fatalf("checkpoint after starting over: %d %v", off, ok)
	}
	if st, err := s.Status(ctx, "same-ref"); err != nil || st.Expected != db || st.Total != 6000 {
		t.Fatalf("status: %+v %v", st, err)
	}
	w.Write(b)
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, db, b)
}

// seekCounter counts the bytes read from it.
type seekCounter struct {
	*bytes.Reader
	read int
}

func (r *seekCounter) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.read += n
	return n, err
}

func TestIngestResumes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, dgst := testData(15, 200_000)

	// An interrupted ingest, then Ingest with a reader that seeks: only the
	// rest is read.
	w, err := s.Writer(ctx, "ing", WithExpected(dgst, 200_000))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:120_000])
	w.Close()
	r := &seekCounter{Reader: bytes.NewReader(data)}
	if got, err := s.Ingest(ctx, "ing", r, dgst, 200_000); err != nil || got != dgst {
		t.Fatalf("%s %v", got, err)
	}
	if r.read != 80_000 {
		t.Fatalf("ingest read %d bytes, want the 80000 missing", r.read)
	}
	checkBlob(t, s, dgst, data)
	s.Delete(ctx, dgst)

	// The same with a reader that cannot seek: it starts over.
	w, err = s.Writer(ctx, "ing", WithExpected(dgst, 200_000))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte{0}, 120_000)) // bytes that would be wrong
	w.Close()
	if got, err := s.Ingest(ctx, "ing", io.MultiReader(bytes.NewReader(data)), dgst, 200_000); err != nil || got != dgst {
		t.Fatalf("%s %v", got, err)
	}
	checkBlob(t, s, dgst, data)
	noIngests(t, s)
}

func TestIngestCancelled(t *testing.T) {
	s := newStore(t)
	data, dgst := testData(16, 3<<20)
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(data), n: 1 << 20, cancel: cancel}
	_, err := s.Ingest(ctx, "c", r, dgst, int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("cancelled ingest: %v", err)
	}
	st, err := s.Status(context.Background(), "c")
	if err != nil || st.Offset == 0 || st.Offset >= int64(len(data)) {
		t.Fatalf("cancelled ingest should be kept, partial: %+v %v", st, err)
	}
	if _, err := s.Info(context.Background(), dgst); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("blob after a cancelled ingest: %v", err)
	}
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

package content

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 64 << 20

// BenchmarkIngest is the whole path a layer takes into the store: write,
// sha256, checkpoints, fsync and rename at commit; "no-checkpoints" shows
// what the resumable hash state costs.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		name  string
		every int64
	}{{"checkpoints", checkpointEvery}, {"no-checkpoints", 1 << 62}} {
		b.Run(c.name, func(b *testing.B) {
			smallCheckpoints(b, c.every)
			benchIngest(b)
		})
	}
}

func benchIngest(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	data, dgst := testData(40, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := s.Ingest(ctx, "bench", bytes.NewReader(data), dgst, benchSize); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, dgst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCopyFile is the floor: io.Copy into a new file, no hash.
func BenchmarkCopyFile(b *testing.B) { benchCopy(b, false) }

// BenchmarkCopyFileSync adds the fsync any durable store pays.
func BenchmarkCopyFileSync(b *testing.B) { benchCopy(b, true) }

func benchCopy(b *testing.B, sync bool) {
	dir := b.TempDir()
	data, _ := testData(40, benchSize)
	b.SetBytes(benchSize)
	buf := make([]byte, 1<<20)
	for b.Loop() {
		p := filepath.Join(dir, "f")
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		// onlyWriter hides ReadFrom so both sides copy through a buffer.
		if _, err := io.CopyBuffer(onlyWriter{f}, bytes.NewReader(data), buf); err != nil {
			b.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
		b.StopTimer()
		os.Remove(p)
		b.StartTimer()
	}
}

type onlyWriter struct{ io.Writer }

// BenchmarkIngestNetReads feeds Ingest as an HTTP body does: 16 KiB reads.
func BenchmarkIngestNetReads(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	data, dgst := testData(40, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		r := &chunkReader{r: bytes.NewReader(data), max: 16 << 10}
		if _, err := s.Ingest(ctx, "bench", r, dgst, benchSize); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, dgst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkWriterIOCopy is a caller's plain io.Copy into a Writer from a
// source with 16 KiB reads (the registry client's download loop).
func BenchmarkWriterIOCopy(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	data, dgst := testData(40, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, err := s.Writer(ctx, "bench", WithExpected(dgst, benchSize))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, &chunkReader{r: bytes.NewReader(data), max: 16 << 10}); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(ctx, benchSize, dgst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, dgst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// chunkReader returns at most max bytes per Read, and is no WriterTo.
type chunkReader struct {
	r   io.Reader
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.max)]) }

// BenchmarkIngestSmall is a manifest or config: the fixed cost per blob
// (ingest setup, two fsyncs, rename, cleanup).
func BenchmarkIngestSmall(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	data, dgst := testData(41, 4<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Ingest(ctx, "small", bytes.NewReader(data), dgst, int64(len(data))); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, dgst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

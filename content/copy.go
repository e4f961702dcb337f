package content

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Ingest writes all of r as the blob expected (of size bytes; "" and 0 when
// unknown) through the ingest ref and commits it, returning its digest. A
// blob already stored is success without reading r. An interrupted ingest
// of the same ref is resumed when r can seek (r's current position is taken
// as the blob's start) and started over otherwise; on failure the ingest is
// kept for the next try, unless its data proved wrong.
func (s *Store) Ingest(ctx context.Context, ref string, r io.Reader, expected digest.Digest, size int64) (digest.Digest, error) {
	w, err := s.Writer(ctx, ref, WithExpected(expected, size))
	if IsExists(err) {
		return expected, nil
	}
	if err != nil {
		return "", err
	}
	defer w.Close()
	if off := w.Offset(); off > 0 {
		sk, ok := r.(io.Seeker)
		if !ok {
			err = w.Reset()
		} else if _, serr := sk.Seek(off, io.SeekCurrent); serr != nil {
			err = w.Reset()
		}
		if err != nil {
			return "", err
		}
	}
	if _, err := copyCtx(ctx, w, r); err != nil {
		return "", fmt.Errorf("ingest %q: %w", ref, err)
	}
	if err := w.Commit(ctx, size, expected); err != nil {
		return "", err
	}
	return w.Digest(), nil
}

// copyBufs holds copy buffers: big, so writes are few and the hash runs
// beside them (see parallelHashMin), and reused across downloads.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyCtx copies src to dst in chunks of up to 1 MiB, checking ctx between
// chunks. Each chunk is filled with as many reads as it takes: a network
// body gives 16 KiB at a time, and one write(2) per 16 KiB costs a third of
// the throughput.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w != n {
				return total, io.ErrShortWrite
			}
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, rerr
		}
	}
}

// ReadFrom makes io.Copy into a Writer use copyCtx's big, filled chunks.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	return copyCtx(context.Background(), plainWriter{w}, r)
}

// plainWriter hides ReadFrom.
type plainWriter struct{ io.Writer }

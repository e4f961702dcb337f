package content

import (
	"context"
	"fmt"
	"io"

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
	if _, err := copyCtx(ctx, w, r, nil); err != nil {
		return "", fmt.Errorf("ingest %q: %w", ref, err)
	}
	if err := w.Commit(ctx, size, expected); err != nil {
		return "", err
	}
	return w.Digest(), nil
}

// copyCtx copies src to dst with buf (1 MiB when nil), checking ctx between
// chunks so a cancelled download or verify stops within one chunk.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	if buf == nil {
		buf = make([]byte, 1<<20)
	}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
			if w != r {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

package image

import (
	"context"
	"io"
	"time"
)

// ProgressFunc hears how far the unpacking of one layer is: id is the
// layer's short chain ID (as docker names layers in its progress), current
// and total are bytes of the layer's blob.
type ProgressFunc func(id string, current, total int64)

type progressKey struct{}

// WithProgress returns a context under which layer unpacking (load, and
// later pull) reports to fn. It is a context value because unpacking is
// deep in the store and every caller of it may want or not want progress.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progressOf(ctx context.Context) ProgressFunc {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return fn
}

// progressInterval keeps progress to a few messages a second, whatever the
// read sizes.
const progressInterval = 100 * time.Millisecond

// progressReader reports the bytes read through it: at the first read, at
// most every progressInterval, and at EOF.
type progressReader struct {
	r         io.Reader
	fn        ProgressFunc
	id        string
	n, total  int64
	last      time.Time
	reported  int64
	sentFirst bool
}

func newProgressReader(ctx context.Context, r io.Reader, id string, total int64) io.Reader {
	fn := progressOf(ctx)
	if fn == nil {
		return r
	}
	return &progressReader{r: r, fn: fn, id: id, total: total}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	now := time.Now()
	if !p.sentFirst || (err == io.EOF && p.reported != p.n) || now.Sub(p.last) >= progressInterval {
		p.sentFirst, p.last, p.reported = true, now, p.n
		p.fn(p.id, p.n, p.total)
	}
	return n, err
}

package archive

import (
	"errors"
	"io"
	"sync"
)

// errCanceled is what a read-ahead Read returns once its cancel channel is
// closed; Apply reports the context's error instead.
var errCanceled = errors.New("canceled while waiting for the layer")

// Read-ahead sizes: a few chunks in flight keep the reading goroutine
// (input, hashing, decompression) busy while the other one extracts.
const (
	chunkSize   = 256 << 10
	chunksAhead = 4
)

// readahead runs fill in its own goroutine: fill reads the next chunk of
// the stream into a buffer (io.EOF at the end), and the reader hands the
// chunks out in order. Apply's two halves, decompressing with hashing and
// writing files, then use both cores.
type readahead struct {
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{}
	// cancel (a context's Done) makes Read give up waiting for input.
	cancel <-chan struct{}
	err    error  // set by the goroutine before it closes full
	buf    []byte // the chunk being read out, whole
	cur    []byte // its unread part
	once   sync.Once
}

// newReadahead starts the goroutine, which calls done, if not nil, as it
// ends. A closed cancel makes Read fail rather than wait.
func newReadahead(cancel <-chan struct{}, fill func([]byte) (int, error), done func()) *readahead {
	ra := &readahead{
		cancel: cancel,
		full:   make(chan []byte, chunksAhead),
		free:   make(chan []byte, chunksAhead+1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for range chunksAhead + 1 {
		ra.free <- make([]byte, chunkSize)
	}
	go ra.run(fill, done)
	return ra
}

func (ra *readahead) run(fill func([]byte) (int, error), done func()) {
	defer close(ra.done)
	if done != nil {
		defer done()
	}
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := fill(buf[:cap(buf)])
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				return
			}
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf
			ra.buf = nil
		}
		var buf []byte
		ok := false
		select {
		case buf, ok = <-ra.full:
		case <-ra.cancel:
			return 0, errCanceled
		}
		if !ok {
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// close stops the goroutine and waits until it no longer reads the input,
// so the caller may close it; abandon (nil) skips the wait, for a canceled
// context whose input may block forever.
func (ra *readahead) close(abandon <-chan struct{}) {
	ra.once.Do(func() { close(ra.stop) })
	select {
	case <-ra.done:
	case <-abandon:
	}
}

// fillFrom reads r into buf until buf is full, r ends (io.EOF) or fails.
func fillFrom(r io.Reader) func([]byte) (int, error) {
	return func(buf []byte) (int, error) {
		n := 0
		for n < len(buf) {
			m, err := r.Read(buf[n:])
			n += m
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
}

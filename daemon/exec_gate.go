package daemon

import (
	"io"
	"sync"
)

// startGate holds an exec's output until its start is known. When the
// process cannot start, the runtime says why on the process's stderr
// (which it holds until its exec), and whether that reached the stream
// before the start's error depended on timing; dockerd's stream carries
// only the error line the daemon writes. A started exec's early output
// is passed on at once.
type startGate struct {
	mu     sync.Mutex
	held   []heldWrite
	open   bool // started: writes go through
	closed bool // not started: writes are dropped
}

type heldWrite struct {
	w io.Writer
	b []byte
}

// writer is w behind the gate.
func (g *startGate) writer(w io.Writer) io.Writer { return &gateWriter{g: g, w: w} }

// release passes on what was held (started) or drops it (not started).
func (g *startGate) release(started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if started {
		for _, h := range g.held {
			_, _ = h.w.Write(h.b)
		}
	}
	g.held = nil
	g.open, g.closed = started, !started
}

type gateWriter struct {
	g *startGate
	w io.Writer
}

func (gw *gateWriter) Write(p []byte) (int, error) {
	g := gw.g
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.open:
		return gw.w.Write(p)
	case g.closed:
		return len(p), nil
	}
	g.held = append(g.held, heldWrite{w: gw.w, b: append([]byte(nil), p...)})
	return len(p), nil
}

package daemon

import (
	"context"
	"encoding/binary"
	"io"
	"strings"
	"sync"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim"
	"berth.dev/berth/shim/logs"
	"github.com/moby/moby/api/types/events"
)

// pendingAttach is an attach to a container that has not started yet (the
// docker CLI's run attaches before it starts): the start connects it to
// the new shim before the process runs, so no output is lost.
type pendingAttach struct {
	opts  shim.AttachOptions
	ready chan attachResult
}

type attachResult struct {
	a   *shim.Attachment
	err error
}

func (d *Daemon) connectPending(ctx context.Context, id string, client *shim.Client) {
	d.ctrs.mu.Lock()
	ps := d.ctrs.pending[id]
	delete(d.ctrs.pending, id)
	d.ctrs.mu.Unlock()
	for _, p := range ps {
		a, err := client.Attach(ctx, p.opts)
		p.ready <- attachResult{a, err}
	}
}

func (d *Daemon) failPending(id string, err error) {
	d.ctrs.mu.Lock()
	ps := d.ctrs.pending[id]
	delete(d.ctrs.pending, id)
	d.ctrs.mu.Unlock()
	for _, p := range ps {
		p.ready <- attachResult{nil, err}
	}
}

// ContainerAttach is POST /containers/{id}/attach: it copies the
// container's stdio to and from the client's streams until the process
// ends, the client detaches (the detach keys, ctrl-p ctrl-q by default)
// or ctx ends. A container that is not running is attached at its next
// start.
func (d *Daemon) ContainerAttach(ctx context.Context, name string, o container.AttachOptions) error {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return err
	}
	keys, err := detachKeys(o.DetachKeys)
	if err != nil {
		return err
	}
	c.Lock()
	tty, stdinOnce, openStdin := c.Config.Tty, c.Config.StdinOnce, c.Config.OpenStdin
	c.Unlock()
	stdin, stdout, stderr, err := o.GetStreams(tty)
	if err != nil {
		return err
	}
	// As dockerd: StdinOnce closes the container's input at the client's
	// EOF only without a terminal; with one, the CLI half-closes when it
	// sees the detach keys itself, and the container's input stays open.
	so := shim.AttachOptions{CloseStdin: stdinOnce && !tty}
	if o.Stdout && stdout != nil {
		so.Stdout = stdout
	}
	if o.Stderr && stderr != nil {
		so.Stderr = stderr
	}
	if !tty {
		// Non-terminal output is multiplexed with docker's stdcopy frames;
		// one lock keeps frames whole.
		var mu sync.Mutex
		if so.Stdout != nil {
			so.Stdout = &stdWriter{w: stdout, stream: 1, mu: &mu}
		}
		if so.Stderr != nil {
			so.Stderr = &stdWriter{w: stdout, stream: 2, mu: &mu}
		}
	}
	if o.Logs {
		// What the container wrote so far, then (with stream) what follows.
		c.Lock()
		lc, _ := logConfig(c.LogPath, c.HostConfig.LogConfig)
		c.Unlock()
		if lc.MaxFiles == 0 {
			lc.MaxFiles = logs.DefaultMaxFiles
		}
		err := logs.Read(ctx, lc, logs.ReadOptions{Tail: -1}, func(m logs.Message) error {
			w := so.Stdout
			if m.Stream == "stderr" {
				w = so.Stderr
			}
			if w == nil {
				return nil
			}
			_, err := w.Write(m.Line)
			return err
		})
		if err != nil {
			return err
		}
	}
	if !o.Stream {
		return nil
	}
	detached := make(chan struct{})
	var once sync.Once
	var att *shim.Attachment
	var attMu sync.Mutex
	if o.Stdin && openStdin && stdin != nil {
		so.Stdin = &detachReader{r: stdin, keys: keys, onDetach: func() {
			once.Do(func() { close(detached) })
			attMu.Lock()
			if att != nil {
				att.Close()
			}
			attMu.Unlock()
		}}
	}

	var a *shim.Attachment
	if r := d.runningOf(c.ID); r != nil {
		a, err = r.shim.Attach(ctx, so)
		if err != nil {
			return err
		}
	} else {
		p := &pendingAttach{opts: so, ready: make(chan attachResult, 1)}
		d.ctrs.mu.Lock()
		d.ctrs.pending[c.ID] = append(d.ctrs.pending[c.ID], p)
		d.ctrs.mu.Unlock()
		select {
		case res := <-p.ready:
			if res.err != nil {
				return res.err
			}
			a = res.a
		case <-ctx.Done():
			d.ctrs.mu.Lock()
			ps := d.ctrs.pending[c.ID]
			for i, q := range ps {
				if q == p {
					d.ctrs.pending[c.ID] = append(ps[:i], ps[i+1:]...)
				}
			}
			d.ctrs.mu.Unlock()
			select {
			case res := <-p.ready: // handed over meanwhile
				if res.a != nil {
					res.a.Close()
				}
			default:
			}
			return ctx.Err()
		}
	}
	attMu.Lock()
	att = a
	attMu.Unlock()
	d.publishContainer(c, events.ActionAttach, nil)
	done := make(chan error, 1)
	go func() { done <- a.Wait() }()
	select {
	case err = <-done:
	case <-detached:
		a.Close()
		d.publishContainer(c, events.ActionDetach, nil)
		return nil
	case <-ctx.Done():
		a.Close()
		return ctx.Err()
	}
	return err
}

// stdWriter frames writes as docker's stdcopy: stream byte, three zeros,
// big-endian length, payload.
type stdWriter struct {
	w      io.Writer
	stream byte
	mu     *sync.Mutex
}

func (s *stdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 8+len(p))
	buf[0] = s.stream
	binary.BigEndian.PutUint32(buf[4:], uint32(len(p)))
	copy(buf[8:], p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf); err != nil {
		return 0, err
	}
	if f, ok := s.w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return len(p), nil
}

// detachKeys parses docker's detach key spec ("ctrl-p,ctrl-q", "a,b").
func detachKeys(spec string) ([]byte, error) {
	if spec == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		k = strings.ToLower(strings.TrimSpace(k))
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, errdefs.Invalid("invalid detach keys (%s)", spec)
			}
		default:
			return nil, errdefs.Invalid("invalid detach keys (%s)", spec)
		}
	}
	return out, nil
}

// detachReader passes stdin through until the detach sequence; bytes of a
// partial sequence are held back until it is clear they are not one.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	onDetach func()
	buf      []byte
	err      error // the read error after buf
}

func (d *detachReader) Read(p []byte) (int, error) {
	for {
		if len(d.buf) > 0 {
			n := copy(p, d.buf)
			d.buf = d.buf[n:]
			return n, nil
		}
		if d.err != nil {
			// Bytes typed before the sequence went out first.
			if d.err == errDetached && d.onDetach != nil {
				d.onDetach()
				d.onDetach = nil
			}
			return 0, d.err
		}
		tmp := make([]byte, len(p))
		n, err := d.r.Read(tmp)
		var out []byte
		for _, b := range tmp[:n] {
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					err = errDetached
					break
				}
				continue
			}
			if d.matched > 0 {
				out = append(out, d.keys[:d.matched]...)
				d.matched = 0
			}
			out = append(out, b)
		}
		if err != nil && err != errDetached && d.matched > 0 {
			out = append(out, d.keys[:d.matched]...) // the input ended mid-sequence
			d.matched = 0
		}
		d.buf, d.err = out, err
	}
}

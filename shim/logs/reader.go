package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Message is one entry of a json-file log.
type Message struct {
	Line    []byte    // the output, with its newline unless Partial
	Stream  string    // "stdout" or "stderr"
	Time    time.Time // when the shim read it
	Partial bool      // the line goes on in the next entry (or the stream ended)
}

type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// ReadOptions selects entries, as the Engine API's logs endpoint does.
type ReadOptions struct {
	Since, Until time.Time // zero means unbounded; Since is inclusive, Until exclusive
	Tail         int       // last N entries only; < 0 means all
	Follow       bool      // keep reading new entries, across rotation
	// Stop ends following: once it is closed the reader returns after the
	// entries already written (the daemon closes it when the container exits).
	Stop <-chan struct{}
	// Poll is how often a follower looks for new data (default 100ms).
	Poll time.Duration
}

// Read calls fn for each entry of the log cfg.Path (rotated files first,
// oldest first) that opts selects, until the end, or with Follow until ctx
// is done or opts.Stop is closed. An error from fn ends the read and is
// returned. A missing log is an empty one.
func Read(ctx context.Context, cfg Config, opts ReadOptions, fn func(Message) error) error {
	files := openAll(cfg)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	keep := func(m *Message) (ok, past bool) {
		if !opts.Until.IsZero() && !m.Time.Before(opts.Until) {
			return false, true
		}
		return opts.Since.IsZero() || !m.Time.Before(opts.Since), false
	}
	var rs []*bufio.Reader
	var pending []byte // the start of a line the writer is still writing
	for _, f := range files {
		rs = append(rs, bufio.NewReader(f))
	}
	if opts.Tail >= 0 {
		// Only the last Tail selected entries: read everything once into a
		// ring (at most MaxSize*MaxFiles bytes of log) and replay it.
		ring := make([]Message, 0, min(opts.Tail, 4096))
		start := 0
		for _, r := range rs {
			for {
				m, rest, err := next(r)
				if err != nil {
					pending = rest
					break
				}
				ok, past := keep(&m)
				if past {
					break
				}
				if !ok || opts.Tail == 0 {
					continue
				}
				if len(ring) < opts.Tail {
					ring = append(ring, m)
				} else {
					ring[start] = m
					start = (start + 1) % len(ring)
				}
			}
		}
		for i := range ring {
			if err := fn(ring[(start+i)%len(ring)]); err != nil {
				return err
			}
		}
	} else {
		for _, r := range rs {
			for {
				m, rest, err := next(r)
				if err != nil {
					pending = rest
					break
				}
				ok, past := keep(&m)
				if past {
					return nil
				}
				if ok {
					if err := fn(m); err != nil {
						return err
					}
				}
			}
		}
	}
	if !opts.Follow {
		return nil
	}
	return follow(ctx, cfg, opts, files, rs, pending, keep, fn)
}

// follow reads the newest file as it grows; when the writer rotates it
// (cfg.Path is another inode), what is left of the old file is read, then
// the new one from its start.
func follow(ctx context.Context, cfg Config, opts ReadOptions, files []*os.File, rs []*bufio.Reader,
	partial []byte, keep func(*Message) (bool, bool), fn func(Message) error) error {
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	var f *os.File
	var r *bufio.Reader
	if len(files) > 0 && files[len(files)-1].Name() == cfg.Path {
		f, r = files[len(files)-1], rs[len(rs)-1]
	}
	if f == nil {
		partial = nil
	}
	stopping := false
	for {
		if f == nil {
			nf, err := os.Open(cfg.Path)
			if err == nil {
				f, r = nf, bufio.NewReader(nf)
				defer nf.Close()
			}
		}
		if f != nil {
			for {
				b, err := r.ReadBytes('\n')
				if err != nil {
					partial = append(partial, b...)
					break
				}
				if len(partial) > 0 {
					b = append(partial, b...)
					partial = nil
				}
				m, err := decode(b)
				if err != nil {
					continue
				}
				ok, past := keep(&m)
				if past {
					return nil
				}
				if ok {
					if err := fn(m); err != nil {
						return err
					}
				}
			}
			if rotated(f, cfg.Path) {
				// The writer renamed f away, and never writes to it again:
				// everything in it has been read.
				f, r, partial = nil, nil, nil
				continue
			}
		}
		if stopping {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opts.Stop:
			stopping = true // one more pass for what was written before
		case <-time.After(poll):
		}
	}
}

func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
	return sa.Ino != sb.Ino || sa.Dev != sb.Dev
}

// openAll opens Path.N-1 .. Path.1, Path: all that exist, oldest first.
func openAll(cfg Config) []*os.File {
	var files []*os.File
	for i := max(cfg.MaxFiles, 1) - 1; i >= 0; i-- {
		name := cfg.Path
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		if f, err := os.Open(name); err == nil {
			files = append(files, f)
		}
	}
	return files
}

// next decodes the next whole entry; at the end it returns what it read of
// a line not finished yet.
func next(r *bufio.Reader) (Message, []byte, error) {
	for {
		b, err := r.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return Message{}, b, io.ErrUnexpectedEOF
			}
			return Message{}, nil, err
		}
		m, err := decode(b)
		if err == nil {
			return m, nil, nil
		}
	}
}

var errBad = errors.New("bad log entry")

func decode(b []byte) (Message, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Message{}, fmt.Errorf("%w: %v", errBad, err)
	}
	n := len(e.Log)
	return Message{Line: []byte(e.Log), Stream: e.Stream, Time: e.Time, Partial: n == 0 || e.Log[n-1] != '\n'}, nil
}

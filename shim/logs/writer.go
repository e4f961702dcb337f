// Package logs is berth's json-file log driver: the writer the shim feeds
// with a container's output (one JSON object per line, as docker's
// json-file driver writes them, rotated by size) and the reader the daemon
// serves /containers/{id}/logs from (since, until, tail, follow across
// rotation).
package logs

import (
	"fmt"
	"os"
	"strconv"
	"time"
	"unicode/utf8"
)

// Defaults for rotation. Docker's json-file driver does not rotate unless
// told; berth rotates by default (as docker's "local" driver does) so that a
// chatty container cannot fill the disk: 10 MiB x 3 files.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
	// MaxLine is where a line without a newline is cut into a partial
	// entry, as docker does (its 16K copy buffer).
	MaxLine = 16 << 10
)

// Config says where a container's log lives and how it rotates.
type Config struct {
	Path     string // container.log; rotated files are Path.1 (newest) .. Path.N-1
	MaxSize  int64  // bytes per file before rotating; <= 0 never rotates
	MaxFiles int    // files kept, the current one included; <= 1 truncates in place
}

// Writer appends entries to a json-file log, rotating it when full. It is
// not safe for concurrent use; the shim serialises writers.
type Writer struct {
	cfg  Config
	f    *os.File
	size int64
	buf  []byte
}

// NewWriter opens (appending to) cfg.Path.
func NewWriter(cfg Config) (*Writer, error) {
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log: %w", err)
	}
	return &Writer{cfg: cfg, f: f, size: st.Size()}, nil
}

// Write records one entry: line is a whole line with its newline, or a
// partial one (cut at MaxLine, or the last bytes before EOF) without.
func (w *Writer) Write(stream string, line []byte, t time.Time) error {
	w.buf = AppendEntry(w.buf[:0], stream, line, t)
	if w.cfg.MaxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.cfg.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not keep a large buffer in an idle shim
	}
	return err
}

func (w *Writer) rotate() error {
	if w.cfg.MaxFiles <= 1 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate log: %w", err)
		}
		w.size = 0
		return nil
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	for i := w.cfg.MaxFiles - 1; i > 1; i-- {
		os.Rename(w.cfg.Path+"."+strconv.Itoa(i-1), w.cfg.Path+"."+strconv.Itoa(i)) // missing files are fine
	}
	if err := os.Rename(w.cfg.Path, w.cfg.Path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("open log after rotation: %w", err)
	}
	w.f, w.size = f, 0
	return nil
}

// Close closes the current file.
func (w *Writer) Close() error { return w.f.Close() }

// AppendEntry appends {"log":...,"stream":...,"time":...}\n to b. It is
// written by hand: the shim logs every line, and encoding/json's reflection
// and allocations cost memory in a process that must stay small. Invalid
// UTF-8 becomes U+FFFD as with encoding/json.
func AppendEntry(b []byte, stream string, line []byte, t time.Time) []byte {
	b = append(b, `{"log":"`...)
	b = appendEscaped(b, line)
	b = append(b, `","stream":"`...)
	b = appendEscaped(b, []byte(stream))
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hex = "0123456789abcdef"

func appendEscaped(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&': // as encoding/json's HTML-safe output
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

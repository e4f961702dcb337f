package shim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
)

// An attachment is one client's view of a process's stdio: it gets every
// output chunk as a frame, and may feed stdin (one client at a time).
type attachment struct {
	conn           *net.UnixConn
	stdout, stderr bool
	mu             sync.Mutex
}

func (p *proc) fanOut(stream byte, b []byte) {
	p.mu.Lock()
	as := make([]*attachment, 0, len(p.attaches))
	for a := range p.attaches {
		if (stream == StreamStdout && a.stdout) || (stream == StreamStderr && a.stderr) {
			as = append(as, a)
		}
	}
	p.mu.Unlock()
	var hdr [5]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(b)))
	for _, a := range as {
		a.mu.Lock()
		// A client that does not read for long is dropped rather than
		// stalling the container's output.
		a.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := (&net.Buffers{hdr[:], b}).WriteTo(a.conn)
		a.mu.Unlock()
		if err != nil {
			p.mu.Lock()
			delete(p.attaches, a)
			p.mu.Unlock()
			a.conn.Close()
		}
	}
}

// attach serves one attach connection until the process ends.
func (p *proc) attach(c *net.UnixConn, r *bufio.Reader, req *request) {
	a := &attachment{conn: c, stdout: req.Stdout, stderr: req.Stderr}
	p.mu.Lock()
	if req.Stdin && (p.stdinBusy || (!p.tty && p.stdin == nil && p.status != StatusStopped)) {
		p.mu.Unlock()
		if p.stdinBusy {
			reply(c, errResp(errdefs.Conflict("stdin of %s is attached already", p.name())))
		} else {
			reply(c, errResp(errdefs.Conflict("%s has no stdin", p.name())))
		}
		return
	}
	if req.Stdin {
		p.stdinBusy = true
	}
	reply(c, &response{})
	if p.attaches == nil { // exited already
		p.mu.Unlock()
		return
	}
	p.attaches[a] = struct{}{}
	p.mu.Unlock()
	gone := make(chan struct{})
	if !req.Stdin {
		// Nothing comes from such a client: EOF means it detached.
		go func() {
			r.ReadByte()
			close(gone)
		}()
	}
	if req.Stdin {
		go func() {
			defer func() {
				p.mu.Lock()
				p.stdinBusy = false
				p.mu.Unlock()
			}()
			select {
			case <-p.stdinReady:
			case <-p.done:
				return
			}
			buf := make([]byte, 4<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					p.mu.Lock()
					in := p.stdin
					p.mu.Unlock()
					if in == nil {
						return
					}
					if _, werr := in.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if req.CloseStdin && !errors.Is(err, net.ErrClosed) {
						p.closeStdin()
					}
					return
				}
			}
		}()
	}
	select {
	case <-p.done:
	case <-gone:
		p.mu.Lock()
		delete(p.attaches, a)
		p.mu.Unlock()
	}
}

package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/trace"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim/logs"
)

// proc is the container's init or one exec'd process, with its stdio.
type proc struct {
	s           *shim
	exec        string // "" for the init
	tty         bool
	processFile string // an exec's process.json

	// The container's ends of its stdio, handed to the runtime and closed
	// once it has passed them on.
	theirs []*os.File

	startMu    sync.Mutex
	mu         sync.Mutex
	pid        int
	status     string
	exit       Exit
	stdin      *os.File // our end: a pipe's write end, or the pty master
	console    *os.File
	stdinBusy  bool // an attach is feeding stdin
	attaches   map[*attachment]struct{}
	readers    []*os.File // output pipes or the pty master, read by copyOutput
	outputs    sync.WaitGroup
	stdinReady chan struct{} // closed when stdin (pipe or pty) can be written
	done       chan struct{} // closed when the exit is recorded and output drained
}

func (s *shim) newProc(exec string, tty, stdin bool) (*proc, error) {
	p := &proc{s: s, exec: exec, tty: tty, status: StatusCreated, attaches: map[*attachment]struct{}{},
		stdinReady: make(chan struct{}), done: make(chan struct{})}
	if tty {
		return p, nil // the pty comes over the console socket
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	in := null
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			null.Close()
			return nil, err
		}
		null.Close()
		in, p.stdin = r, w
	}
	p.theirs = []*os.File{in}
	for _, stream := range []byte{StreamStdout, StreamStderr} {
		r, w, err := os.Pipe()
		if err != nil {
			p.closeTheirs()
			return nil, err
		}
		p.theirs = append(p.theirs, w)
		p.copyOutput(r, stream)
	}
	close(p.stdinReady)
	return p, nil
}

func (p *proc) closeTheirs() {
	for _, f := range p.theirs {
		f.Close()
	}
	p.theirs = nil
}

// create runs the runtime's create for the init.
func (p *proc) create(h, w uint16) error {
	s := p.s
	args := []string{"create", "--bundle", s.bundle, "--pid-file", s.path(initPid)}
	stdio := p.theirs
	var cs *consoleSocket
	if p.tty {
		var err error
		if cs, err = s.listenConsole(); err != nil {
			return err
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
	}
	err := s.runtime(stdio, append(args, s.id)...)
	p.closeTheirs()
	if err != nil {
		return err
	}
	if cs != nil {
		if err := p.takeConsole(cs, h, w); err != nil {
			s.runtime(nil, "delete", "--force", s.id)
			return err
		}
	}
	pid, err := readPid(filepath.Join(s.dir, initPid))
	if err != nil {
		s.runtime(nil, "delete", "--force", s.id)
		return err
	}
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
	go p.waitExit(s.reaper.watch(pid))
	return nil
}

// start starts the init (runtime start) or runs an exec (runtime exec).
func (p *proc) start() error {
	p.startMu.Lock() // one start at a time; the second finds it started
	defer p.startMu.Unlock()
	p.mu.Lock()
	st := p.status
	p.mu.Unlock()
	if st != StatusCreated {
		return errdefs.Conflict("%s is %s", p.name(), st)
	}
	if p.exec == "" {
		// The time is taken before: a quick process may be reaped before
		// the runtime's start returns.
		p.mu.Lock()
		p.exit.StartedAt = time.Now()
		p.mu.Unlock()
		if err := p.s.runtime(nil, "start", p.s.id); err != nil {
			p.mu.Lock()
			p.exit.StartedAt = time.Time{}
			p.mu.Unlock()
			return err
		}
		p.mu.Lock()
		if p.status == StatusCreated {
			p.status = StatusRunning
		}
		p.mu.Unlock()
		return nil
	}
	return p.startExec()
}

func (p *proc) startExec() error {
	s := p.s
	pidFile := s.path("exec-" + p.exec + ".pid")
	args := []string{"exec", "--detach", "--pid-file", pidFile, "--process", p.processFile}
	var cs *consoleSocket
	if p.tty {
		var err error
		if cs, err = s.listenConsole(); err != nil {
			return err
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
	}
	p.mu.Lock()
	p.status = StatusRunning // no second start while this one runs
	p.mu.Unlock()
	fail := func(err error) error {
		p.mu.Lock()
		p.status, p.exit.ExitCode, p.exit.FinishedAt = StatusStopped, 126, time.Now()
		p.mu.Unlock()
		p.finish()
		return err
	}
	err := s.runtime(p.theirs, append(args, s.id)...)
	p.closeTheirs()
	if err != nil {
		return fail(err)
	}
	if cs != nil {
		if err := p.takeConsole(cs, 0, 0); err != nil {
			return fail(err)
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return fail(err)
	}
	p.mu.Lock()
	p.pid, p.exit.StartedAt = pid, time.Now()
	p.mu.Unlock()
	go p.waitExit(s.reaper.watch(pid))
	return nil
}

func (p *proc) name() string {
	if p.exec == "" {
		return "container " + p.s.id
	}
	return "exec " + p.exec
}

func (p *proc) takeConsole(cs *consoleSocket, h, w uint16) error {
	f, err := cs.receive()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.console, p.stdin = f, f
	p.mu.Unlock()
	if h > 0 && w > 0 {
		p.resize(h, w)
	}
	p.copyOutput(f, StreamStdout)
	close(p.stdinReady)
	return nil
}

// waitExit records the exit once ws comes and the output is drained.
func (p *proc) waitExit(ws <-chan unix.WaitStatus) {
	st := <-ws
	now := time.Now()
	trace.Step("shim: exit reaped")
	drained := make(chan struct{})
	go func() { p.outputs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		// Something outside the container's pid namespace (or none) still
		// holds its pipes: stop reading, the exit matters more.
		p.mu.Lock()
		p.closeOutputs()
		p.mu.Unlock()
		<-drained
	}
	code, sig := exitCode(st)
	p.mu.Lock()
	p.status = StatusStopped
	p.exit.Pid, p.exit.ExitCode, p.exit.Signal, p.exit.FinishedAt = p.pid, code, sig, now
	ex := p.exit
	p.mu.Unlock()
	if p.exec == "" {
		if err := writeExit(p.s.dir, &ex); err != nil {
			fmt.Fprintln(os.Stderr, "berth shim: record exit:", err)
		}
	}
	trace.Step("shim: exit recorded")
	p.finish()
}

// finish tells waiters and ends attach streams.
func (p *proc) finish() {
	p.mu.Lock()
	if p.stdin != nil && p.stdin != p.console {
		p.stdin.Close()
	}
	if p.console != nil {
		p.console.Close()
	}
	p.stdin, p.console = nil, nil
	for a := range p.attaches {
		a.conn.Close()
	}
	p.attaches = nil
	p.mu.Unlock()
	close(p.done)
}

// closeOutputs ends the output readers (the caller holds p.mu).
func (p *proc) closeOutputs() {
	for _, r := range p.readers {
		r.Close()
	}
}

// copyOutput reads one stream until EOF, fanning it out to attached clients
// and, for the init, to the log.
func (p *proc) copyOutput(r *os.File, stream byte) {
	p.outputs.Add(1)
	p.mu.Lock()
	p.readers = append(p.readers, r)
	p.mu.Unlock()
	name := "stdout"
	if stream == StreamStderr {
		name = "stderr"
	}
	go func() {
		defer p.outputs.Done()
		defer r.Close()
		var sp logs.Splitter
		buf := make([]byte, 16<<10)
		logLine := func(line []byte, partial bool) {
			p.s.logMu.Lock()
			if p.s.log != nil {
				if err := p.s.log.Write(name, line, time.Now()); err != nil {
					fmt.Fprintln(os.Stderr, "berth shim: log:", err)
				}
			}
			p.s.logMu.Unlock()
		}
		for {
			n, err := r.Read(buf)
			if n > 0 {
				p.fanOut(stream, buf[:n])
				if p.exec == "" {
					sp.Feed(buf[:n], logLine)
				}
			}
			if err != nil { // EOF, or EIO from a pty whose other side is gone
				break
			}
		}
		sp.Flush(logLine)
	}()
}

func (p *proc) closeStdin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.console != nil {
		_, err := p.console.Write([]byte{4}) // ^D: end of input on a terminal
		return err
	}
	if p.stdin != nil {
		err := p.stdin.Close()
		p.stdin = nil
		return err
	}
	return nil
}

func (p *proc) resize(h, w uint16) error {
	p.mu.Lock()
	con := p.console
	p.mu.Unlock()
	if con == nil {
		return errdefs.Conflict("%s has no terminal", p.name())
	}
	rc, err := con.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	return nil
}

func (p *proc) kill(sig int, all bool) error {
	if sig == 0 {
		sig = int(unix.SIGKILL)
	}
	p.mu.Lock()
	st, pid := p.status, p.pid
	p.mu.Unlock()
	if st == StatusStopped {
		return errdefs.Conflict("%s is not running", p.name())
	}
	if p.exec != "" {
		if pid == 0 {
			return errdefs.Conflict("%s is not started", p.name())
		}
		// Our child until we reap it: the pid cannot be reused meanwhile.
		return unix.Kill(pid, unix.Signal(sig))
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	return p.s.runtime(nil, append(args, p.s.id, strconv.Itoa(sig))...)
}

func (p *proc) state() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return State{ID: p.s.id, Exec: p.exec, Pid: p.pid, Status: p.status, Tty: p.tty, ExitCode: p.exit.ExitCode,
		StartedAt: p.exit.StartedAt, FinishedAt: p.exit.FinishedAt, ShimPid: os.Getpid()}
}

func (p *proc) exitInfo() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", file, b)
	}
	return pid, nil
}

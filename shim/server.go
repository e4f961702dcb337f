package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/trace"
	"berth.dev/berth/shim/logs"
)

// Main runs `berth shim ...` and `berth init-reaper ...`; args[0] is the
// subcommand. It returns the process exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "init-reaper" {
		return InitReaper(args[1:])
	}
	if len(args) > 1 && args[1] == "--spare" {
		prepare()
		if SpareInit != nil {
			SpareInit(args[2:])
		}
		if args = spareArgs(len(args) > 2 && args[2] == aheadFlag); args == nil {
			return 0 // not needed after all
		}
	}
	if err := serve(args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berth shim:", err)
		return 1
	}
	return 0
}

// shim is the state of one monitor process.
type shim struct {
	id, bundle, dir string
	rt              []string // runtime command and its global flags
	inproc          Runner   // berth's own runtime in this process, or nil
	dirFd           int      // O_PATH fd of dir, for socket paths too long for sun_path
	reaper          *reaper
	exitTimeout     time.Duration

	logMu sync.Mutex
	log   *logs.Writer // nil without logging

	mu      sync.Mutex
	init    *proc
	execs   map[string]*proc
	clients int       // connections open now
	idle    time.Time // when the last client left
	ln      *net.UnixListener
	exiting chan struct{}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("berth shim", flag.ContinueOnError)
	s := &shim{execs: map[string]*proc{}, exiting: make(chan struct{})}
	var tty, stdin bool
	var height, width uint
	var readyFd int
	var lc logs.Config
	fs.StringVar(&s.id, "id", "", "container ID")
	fs.StringVar(&s.bundle, "bundle", "", "bundle directory")
	fs.StringVar(&s.dir, "state-dir", "", "state directory (socket, exit.json)")
	fs.BoolVar(&tty, "tty", false, "give the container a pty")
	fs.BoolVar(&stdin, "stdin", false, "keep the container's stdin open")
	fs.UintVar(&height, "height", 0, "initial pty rows")
	fs.UintVar(&width, "width", 0, "initial pty columns")
	fs.StringVar(&lc.Path, "log-path", "", "json-file log (none when empty)")
	fs.Int64Var(&lc.MaxSize, "log-max-size", logs.DefaultMaxSize, "rotate the log at this size (<=0: never)")
	fs.IntVar(&lc.MaxFiles, "log-max-files", logs.DefaultMaxFiles, "log files kept")
	fs.IntVar(&readyFd, "ready-fd", -1, "fd told \"ok\" or the error once the container is created")
	fs.DurationVar(&s.exitTimeout, "exit-timeout", 0, "after the exit, leave alone when no client came for this long (0: wait for shutdown)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.rt = fs.Args()
	if s.id == "" || s.bundle == "" || s.dir == "" || len(s.rt) == 0 {
		return errors.New("usage: berth shim --id ID --bundle DIR --state-dir DIR [flags] -- RUNTIME [ARGS...]")
	}
	if InProcess != nil {
		s.inproc = InProcess(s.rt)
	}
	if early == nil {
		prepare()
	}

	var ready *os.File
	if readyFd >= 0 {
		ready = os.NewFile(uintptr(readyFd), "ready")
	}
	trace.Step("shim: arguments read")
	err := s.setup(tty, stdin, uint16(height), uint16(width), lc)
	if err != nil {
		s.cleanup() // before the starter hears of it: nothing is left for it to find
	}
	if ready != nil {
		msg := "ok\n"
		if err != nil {
			msg = err.Error()
		}
		_, werr := ready.WriteString(msg)
		ready.Close()
		if werr != nil && err == nil {
			// The starter gave up (its context ended) and closed its end:
			// nobody will ever know of this container, so it goes.
			err = errors.New("the starter is gone: deleting the container")
			s.runtime(nil, "delete", "--force", s.id)
			select {
			case <-s.init.done:
			case <-time.After(5 * time.Second):
			}
			s.cleanup()
		}
	}
	if err != nil {
		return err
	}
	s.acceptLoop()
	return nil
}

// early is what a shim sets up before knowing its container, which a
// spare does while it waits for its arguments: off the start's path (the
// signal handlers alone are round trips to the Go runtime's signal thread).
var early *struct {
	reaper *reaper
	err    error // of becoming a subreaper
}

func prepare() {
	// Heap profiling's bucket table alone is bigger than a shim's heap.
	goruntime.MemProfileRate = 0
	signal.Ignore(unix.SIGHUP, unix.SIGPIPE, unix.SIGINT, unix.SIGTERM)
	early = &struct {
		reaper *reaper
		err    error
	}{}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		early.err = fmt.Errorf("become a subreaper: %w", err)
		return
	}
	early.reaper = newReaper()
}

func (s *shim) setup(tty, stdin bool, h, w uint16, lc logs.Config) error {
	if early.err != nil {
		return early.err
	}
	s.reaper = early.reaper
	fd, err := unix.Open(s.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open state dir: %w", err)
	}
	s.dirFd = fd
	os.Remove(filepath.Join(s.dir, ExitName)) // a fresh container
	if lc.Path != "" {
		if s.log, err = logs.NewWriter(lc); err != nil {
			return err
		}
	}
	// The socket and pid file first: the starter waits from the runtime's
	// create to the ready message, and nothing answers on the socket until
	// then (the accept loop starts after it). A spare made them ahead.
	if s.ln = premade; s.ln == nil {
		if err := os.WriteFile(filepath.Join(s.dir, PidName), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return err
		}
		if err := s.listen(); err != nil {
			return err
		}
	}
	p, err := s.newProc("", tty, stdin)
	if err != nil {
		return err
	}
	s.init = p
	return p.create(h, w)
}

func (s *shim) listen() error {
	sock := s.path(SocketName)
	os.Remove(sock)
	ln, err := listenPrivate(sock)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// listenPrivate listens on a socket only its owner may connect to.
func listenPrivate(sock string) (*net.UnixListener, error) {
	old := unix.Umask(0o077) // the socket is born private
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil { // connecting needs write only
		ln.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// path is name in the state dir, reached through /proc/self/fd when the
// whole path does not fit a socket address (108 bytes).
func (s *shim) path(name string) string {
	p := filepath.Join(s.dir, name)
	if len(p) < 100 {
		return p
	}
	return fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), s.dirFd, name)
}

var settling atomic.Bool

// settle gives the heap back to the kernel a moment after a burst of work
// (create, start, a request): a shim spends its life idle, and what the Go
// scavenger would return only slowly is resident memory per container.
// That is also when the shim's heap is kept small (a collection at 25%
// growth, a 4 MiB soft limit): one of many idle shims, its size matters
// more than GC time. Not before: the whole binary's initialisation leaves
// the heap near such a limit, and the collector then ran all through a
// container's start (2-3 ms of it). Set after every burst, as the
// runtime's in-process steps lift them for their duration.
func (s *shim) settle() {
	if settling.CompareAndSwap(false, true) {
		time.AfterFunc(300*time.Millisecond, func() {
			settling.Store(false)
			debug.SetGCPercent(25)
			debug.SetMemoryLimit(4 << 20)
			debug.FreeOSMemory()
		})
	}
}

func (s *shim) acceptLoop() {
	s.settle()
	if s.exitTimeout > 0 {
		go s.lingerWatch()
	}
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				<-s.exiting // shutdown: its handler answers, then exits
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.clients++
		s.mu.Unlock()
		go func() {
			defer s.settle()
			s.handle(c)
			c.Close()
			s.mu.Lock()
			s.clients--
			s.idle = time.Now()
			s.mu.Unlock()
		}()
	}
}

// lingerWatch ends a shim whose container has exited and that nobody has
// asked about for exitTimeout: exit.json stays for the daemon to find.
func (s *shim) lingerWatch() {
	<-s.init.done
	for {
		time.Sleep(s.exitTimeout / 4)
		s.mu.Lock()
		gone := s.clients == 0 && time.Since(maxTime(s.idle, s.init.exit.FinishedAt)) > s.exitTimeout
		s.mu.Unlock()
		if gone {
			s.shutdown()
			os.Exit(0)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *shim) handle(c *net.UnixConn) {
	r := bufio.NewReaderSize(c, 1024)
	line, err := r.ReadBytes('\n') // the socket is the daemon's alone (0600)
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(c, &response{Error: "bad request: " + err.Error(), Kind: int(errdefs.KindInvalid)})
		return
	}
	trace.Step("shim: " + req.Op)
	defer trace.Step("shim: " + req.Op + " answered")
	var resp response
	switch req.Op {
	case "attach":
		p, err := s.proc(req.Exec)
		if err != nil {
			reply(c, errResp(err))
			return
		}
		p.attach(c, r, &req)
		return
	case "wait":
		p, err := s.proc(req.Exec)
		if err == nil {
			// The client may go away while this waits: notice it.
			gone := make(chan struct{})
			go func() { r.ReadByte(); close(gone) }()
			select {
			case <-p.done:
				ex := p.exitInfo()
				resp.Exit = &ex
			case <-gone:
				return
			}
		}
		if err != nil {
			resp = *errResp(err)
		}
	case "shutdown":
		if err := s.shutdown(); err != nil {
			reply(c, errResp(err))
			return
		}
		reply(c, &resp)
		c.Close()
		close(s.exiting)
		return
	default:
		err := s.do(&req, &resp)
		if err != nil {
			resp = *errResp(err)
		}
	}
	reply(c, &resp)
}

func (s *shim) do(req *request, resp *response) error {
	if req.Op == "exec" {
		return s.newExec(req)
	}
	p, err := s.proc(req.Exec)
	if err != nil {
		return err
	}
	switch req.Op {
	case "start":
		if err := p.start(); err != nil {
			return err
		}
		st := p.state() // saves the starter a state request
		resp.State = &st
		return nil
	case "state":
		st := p.state()
		resp.State = &st
		return nil
	case "kill":
		return p.kill(req.Signal, req.All)
	case "resize":
		return p.resize(req.Height, req.Width)
	case "close-stdin":
		return p.closeStdin()
	case "delete":
		return s.deleteExec(p)
	}
	return errdefs.Invalid("unknown operation %q", req.Op)
}

func (s *shim) proc(exec string) (*proc, error) {
	if exec == "" {
		return s.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[exec]
	if !ok {
		return nil, errdefs.NotFound("no exec %q in container %s", exec, s.id)
	}
	return p, nil
}

func (s *shim) newExec(req *request) error {
	if !validExecID(req.Exec) {
		return errdefs.Invalid("bad exec ID %q", req.Exec)
	}
	var pr struct {
		Terminal bool `json:"terminal"`
	}
	if err := json.Unmarshal(req.Process, &pr); err != nil {
		return errdefs.Invalid("exec process: %v", err)
	}
	if s.init.state().Status != StatusRunning {
		return errdefs.Conflict("container %s is not running", s.id)
	}
	s.mu.Lock()
	_, dup := s.execs[req.Exec]
	s.mu.Unlock()
	if dup {
		return errdefs.Conflict("exec %q exists", req.Exec)
	}
	file := s.path("exec-" + req.Exec + ".json")
	if err := os.WriteFile(file, req.Process, 0o600); err != nil {
		return fmt.Errorf("write exec process: %w", err)
	}
	p, err := s.newProc(req.Exec, pr.Terminal, req.Stdin)
	if err != nil {
		return err
	}
	p.processFile = file
	s.mu.Lock()
	s.execs[req.Exec] = p
	s.mu.Unlock()
	return nil
}

// validExecID keeps exec IDs to names that are safe in file names.
func validExecID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// deleteExec forgets an exec that has ended (or never started).
func (s *shim) deleteExec(p *proc) error {
	if p.exec == "" {
		return errdefs.Invalid("delete takes an exec; the container goes with shutdown")
	}
	p.mu.Lock()
	st := p.status
	p.mu.Unlock()
	if st == StatusRunning {
		return errdefs.Conflict("%s is running", p.name())
	}
	if st == StatusCreated {
		// Never started: end its pipes and anyone waiting for it.
		p.startMu.Lock()
		p.mu.Lock()
		p.closeOutputs()
		p.closeTheirs()
		p.status, p.exit.ExitCode, p.exit.FinishedAt = StatusStopped, -1, time.Now()
		p.mu.Unlock()
		p.startMu.Unlock()
		p.finish()
	}
	s.mu.Lock()
	delete(s.execs, p.exec)
	s.mu.Unlock()
	os.Remove(filepath.Join(s.dir, "exec-"+p.exec+".json"))
	os.Remove(filepath.Join(s.dir, "exec-"+p.exec+".pid"))
	return nil
}

// shutdown deletes a container that is not running and ends the shim.
func (s *shim) shutdown() error {
	st := s.init.state()
	if st.Status == StatusRunning {
		return errdefs.Conflict("container %s is running", s.id)
	}
	if err := s.runtime(nil, "delete", "--force", s.id); err != nil {
		return err
	}
	if st.Status == StatusCreated {
		<-s.init.done
	}
	s.cleanup()
	return nil
}

// cleanup removes what the shim made in the state dir, except exit.json
// and logs: the daemon owns the dir and removes it with the container.
func (s *shim) cleanup() {
	if s.ln != nil {
		s.ln.Close()
	}
	for _, n := range []string{SocketName, PidName, initPid, rtErr} {
		os.Remove(filepath.Join(s.dir, n))
	}
	s.mu.Lock()
	for id := range s.execs {
		os.Remove(filepath.Join(s.dir, "exec-"+id+".json"))
		os.Remove(filepath.Join(s.dir, "exec-"+id+".pid"))
	}
	s.mu.Unlock()
	s.logMu.Lock()
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
	s.logMu.Unlock()
}

func reply(c *net.UnixConn, r *response) {
	b, _ := json.Marshal(r)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(b, '\n'))
	c.SetWriteDeadline(time.Time{})
}

func errResp(err error) *response {
	return &response{Error: err.Error(), Kind: int(errdefs.KindOf(err))}
}

// writeExit records e in dir/exit.json atomically: a daemon that was down
// learns the exit from it. Not synced: it is for a daemon that died, not
// the machine (after an OS crash no shim and no container is left, and the
// exec root is usually a tmpfs), and the two fsyncs cost every exit about
// a millisecond before any waiter heard of it.
func writeExit(dir string, e *Exit) error {
	b, _ := json.Marshal(e)
	tmp := filepath.Join(dir, ExitName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ExitName))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

package shim

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim/logs"
)

// Options describe the container a new shim runs.
type Options struct {
	ID       string
	Bundle   string
	StateDir string // the shim's directory (socket, exit.json, shim.log); made if missing
	// Binary is the executable run as `BINARY shim ...`: the berth binary,
	// or the smaller berth-shim (shim/cmd/berth-shim), which costs less
	// memory per container (default: DefaultBinary()).
	Binary string
	// Runtime is the OCI runtime command with its global flags, e.g.
	// {"/usr/sbin/runc", "--root", "/run/berth/runc"} (default: this
	// program's `runtime --root <StateDir>/../../runtime`, i.e.
	// <exec-root>/runtime for a state dir <exec-root>/containers/<id>).
	Runtime []string
	Tty     bool
	Stdin   bool // keep a stdin pipe open (docker's -i)
	Height  uint16
	Width   uint16
	// Log is the json-file log; an empty Path logs nothing. MaxSize and
	// MaxFiles of 0 take logs.DefaultMaxSize and logs.DefaultMaxFiles;
	// a negative MaxSize never rotates.
	Log logs.Config
	// Spares, when set, has a shim process of Binary started ahead of
	// need, which this start takes instead of starting one.
	Spares *Spares
	// ExitTimeout, when positive, lets a shim whose container exited end
	// itself after that long without clients (exit.json stays). Zero keeps
	// it until Shutdown, which is what live restore wants.
	ExitTimeout time.Duration
}

// DefaultBinary is berth-shim beside this program when there is one (it
// costs a container about half the memory), else this program itself.
func DefaultBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("shim: find the berth binary: %w", err)
	}
	small := filepath.Join(filepath.Dir(self), "berth-shim")
	if st, err := os.Stat(small); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return small, nil
	}
	return self, nil
}

// Client talks to one shim. It is safe for concurrent use: every call is a
// connection of its own.
type Client struct {
	dir  string
	sock string
	pid  int
	proc *os.Process // when we started it: reaped in the background
}

// Start spawns a shim for opts (detached in its own session, so it outlives
// the caller) and returns once the container is created, or the error that
// kept it from being created.
func Start(ctx context.Context, opts Options) (*Client, error) {
	if opts.ID == "" || opts.Bundle == "" || opts.StateDir == "" {
		return nil, errdefs.Invalid("shim: ID, Bundle and StateDir are required")
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = DefaultBinary(); err != nil {
			return nil, err
		}
	}
	rt := opts.Runtime
	if len(rt) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("shim: find the berth binary: %w", err)
		}
		rt = []string{self, "runtime", "--root", filepath.Join(filepath.Dir(filepath.Dir(filepath.Clean(opts.StateDir))), "runtime")}
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("shim: state dir: %w", err)
	}
	lc := opts.Log
	if lc.MaxSize == 0 {
		lc.MaxSize = logs.DefaultMaxSize
	}
	if lc.MaxFiles == 0 {
		lc.MaxFiles = logs.DefaultMaxFiles
	}
	args := []string{"shim", "--id", opts.ID, "--bundle", opts.Bundle, "--state-dir", opts.StateDir, "--ready-fd", "3"}
	if opts.Tty {
		args = append(args, "--tty", "--height", strconv.Itoa(int(opts.Height)), "--width", strconv.Itoa(int(opts.Width)))
	}
	if opts.Stdin {
		args = append(args, "--stdin")
	}
	if lc.Path != "" {
		args = append(args, "--log-path", lc.Path, "--log-max-size", strconv.FormatInt(lc.MaxSize, 10),
			"--log-max-files", strconv.Itoa(lc.MaxFiles))
	}
	if opts.ExitTimeout > 0 {
		args = append(args, "--exit-timeout", opts.ExitTimeout.String())
	}
	args = append(append(args, "--"), rt...)

	var c *Client
	var rd *os.File
	if sp := opts.Spares.take(bin); sp != nil {
		if err := sp.hand(filepath.Join(opts.StateDir, LogName), args); err == nil {
			c = &Client{dir: opts.StateDir, sock: socketPath(opts.StateDir), pid: sp.proc.Pid, proc: sp.proc}
			rd = sp.ready
		} else {
			sp.proc.Kill()
			sp.ready.Close()
		}
	}
	if c == nil {
		var err error
		if c, rd, err = spawn(bin, args, opts.StateDir); err != nil {
			return nil, err
		}
	}
	defer rd.Close()

	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rd)
		msg <- string(b)
	}()
	select {
	case m := <-msg:
		if m == "ok\n" {
			return c, nil
		}
		if m == "" {
			b, _ := os.ReadFile(filepath.Join(opts.StateDir, LogName))
			m = "the shim died: " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("shim: create %s: %s", opts.ID, m)
	case <-ctx.Done():
		// Closing our end tells the shim: once created, it deletes the
		// container and exits (killing it would leave the container).
		rd.Close()
		return nil, ctx.Err()
	}
}

// spawn starts a shim with args and returns its client and the read end
// of its ready pipe.
func spawn(bin string, args []string, stateDir string) (*Client, *os.File, error) {
	logf, err := os.OpenFile(filepath.Join(stateDir, LogName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("shim: log: %w", err)
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer null.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Dir = stateDir // for ps and /proc: which container a shim is for
	// One P: fewer threads and per-P caches in a process that mostly
	// sleeps (measured: about 150 kB less than two).
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		wr.Close()
		rd.Close()
		return nil, nil, fmt.Errorf("shim: start: %w", err)
	}
	wr.Close()
	// The shim is our child until we die: reap it whenever it ends.
	go cmd.Process.Wait()
	return &Client{dir: stateDir, sock: socketPath(stateDir), pid: cmd.Process.Pid, proc: cmd.Process}, rd, nil
}

// Connect returns a client for the shim in stateDir (a daemon coming back).
// A shim that is gone is a NotFound error; ReadExit may still tell how its
// container ended.
func Connect(stateDir string) (*Client, error) {
	c := &Client{dir: stateDir, sock: socketPath(stateDir)}
	st, err := c.State(context.Background(), "")
	if err != nil {
		return nil, err
	}
	c.pid = st.ShimPid
	return c, nil
}

// ReadExit reads the exit a shim recorded in stateDir (NotFound when none).
func ReadExit(stateDir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, ExitName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("no exit recorded in %s", stateDir)
	}
	if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(stateDir, ExitName), err)
	}
	return &e, nil
}

// InitPid is the container's init process ID, which the runtime's create
// wrote; 0 when it is not known.
func (c *Client) InitPid() int {
	pid, _ := readPid(filepath.Join(c.dir, initPid))
	return pid
}

// Pid is the shim's process ID.
func (c *Client) Pid() int { return c.pid }

// Close forgets the shim; it and its container go on.
func (c *Client) Close() error { return nil }

func socketPath(dir string) string { return filepath.Join(dir, SocketName) }

// dial connects to the socket, through an O_PATH fd of the directory when
// the path is longer than a socket address can hold.
func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	path := c.sock
	if len(path) >= 100 {
		dir, err := os.OpenFile(c.dir, os.O_RDONLY|unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, errdefs.NotFound("shim of %s: %v", c.dir, err)
		}
		defer dir.Close()
		path = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), SocketName)
	}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errdefs.NotFound("no shim answers in %s: %v", c.dir, err)
		}
		return nil, errdefs.Unavailable("shim of %s: %v", c.dir, err)
	}
	return conn.(*net.UnixConn), nil
}

// call sends req and reads the answer on a fresh connection, which it
// returns for streams; ctx ends the wait.
func (c *Client) call(ctx context.Context, req *request) (*response, *net.UnixConn, *bufio.Reader, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, errdefs.Unavailable("shim %s: no answer: %v", req.Op, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("shim %s: bad answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		conn.Close()
		return nil, nil, nil, errdefs.Mark(errdefs.Kind(resp.Kind), errors.New(resp.Error))
	}
	return &resp, conn, r, nil
}

func (c *Client) simple(ctx context.Context, req *request) (*response, error) {
	resp, conn, _, err := c.call(ctx, req)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return resp, nil
}

// Start starts the container's init (execID "") or a created exec.
func (c *Client) Start(ctx context.Context, execID string) error {
	_, err := c.simple(ctx, &request{Op: "start", Exec: execID})
	return err
}

// StartState is Start that also reports the process as it is once started
// (what State would say), in the same round trip.
func (c *Client) StartState(ctx context.Context, execID string) (*State, error) {
	resp, err := c.simple(ctx, &request{Op: "start", Exec: execID})
	if err != nil {
		return nil, err
	}
	if resp.State == nil { // a shim that does not say
		return c.State(ctx, execID)
	}
	return resp.State, nil
}

// State reports the init (execID "") or an exec.
func (c *Client) State(ctx context.Context, execID string) (*State, error) {
	resp, err := c.simple(ctx, &request{Op: "state", Exec: execID})
	if err != nil {
		return nil, err
	}
	return resp.State, nil
}

// Kill signals the init (all: every process of the container) or an exec.
func (c *Client) Kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	_, err := c.simple(ctx, &request{Op: "kill", Exec: execID, Signal: int(sig), All: all})
	return err
}

// Wait blocks until the process has exited and its output is drained.
func (c *Client) Wait(ctx context.Context, execID string) (*Exit, error) {
	resp, err := c.simple(ctx, &request{Op: "wait", Exec: execID})
	if err != nil {
		return nil, err
	}
	return resp.Exit, nil
}

// Resize sets the terminal size of the init or an exec.
func (c *Client) Resize(ctx context.Context, execID string, height, width uint16) error {
	_, err := c.simple(ctx, &request{Op: "resize", Exec: execID, Height: height, Width: width})
	return err
}

// CloseStdin ends the process's input (EOF on a pipe, ^D on a terminal).
func (c *Client) CloseStdin(ctx context.Context, execID string) error {
	_, err := c.simple(ctx, &request{Op: "close-stdin", Exec: execID})
	return err
}

// Exec registers an extra process (started by Start(ctx, execID)) that runs
// in the container through the runtime's exec. Its terminal is
// process.Terminal; stdin says whether it gets a stdin pipe.
func (c *Client) Exec(ctx context.Context, execID string, process *specs.Process, stdin bool) error {
	b, err := json.Marshal(process)
	if err != nil {
		return errdefs.Invalid("exec process: %v", err)
	}
	_, err = c.simple(ctx, &request{Op: "exec", Exec: execID, Process: b, Stdin: stdin})
	return err
}

// DeleteExec forgets an exec that has exited or was never started.
func (c *Client) DeleteExec(ctx context.Context, execID string) error {
	if execID == "" {
		return errdefs.Invalid("DeleteExec needs an exec ID")
	}
	_, err := c.simple(ctx, &request{Op: "delete", Exec: execID})
	return err
}

// Shutdown deletes the exited (or never started) container with the
// runtime and ends the shim. exit.json and the log stay.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.simple(ctx, &request{Op: "shutdown"})
	if err != nil {
		return err
	}
	// The shim exits right after answering; wait for it (our child is
	// reaped by Start's goroutine, others by their reaper).
	c.WaitGone()
	return nil
}

// ShutdownAsync is Shutdown without waiting for the shim's process to
// end (about a millisecond of Go and kernel exit): WaitGone does, later.
func (c *Client) ShutdownAsync(ctx context.Context) error {
	_, err := c.simple(ctx, &request{Op: "shutdown"})
	return err
}

// WaitGone waits (up to 5 s) for the shim's process to end after a
// shutdown.
func (c *Client) WaitGone() {
	if c.pid > 0 {
		waitGone(c.pid, 5*time.Second)
	}
}

// waitGone waits up to limit for process pid to end. A pidfd becomes
// readable the moment the process exits, reaped or not, so the caller goes
// on at once (polling every 10 ms cost a run --rm 5-10 ms); without
// pidfds (kernel < 5.3) it polls.
func waitGone(pid int, limit time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		deadline := time.Now().Add(limit)
		for alive(pid) {
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
				break
			}
			if fds[0].Revents != 0 {
				return
			}
		}
		return
	}
	if err == unix.ESRCH {
		return
	}
	for end := time.Now().Add(limit); alive(pid) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}

// AttachOptions say which streams an attach carries. Output goes to Stdout
// and Stderr (with a terminal, all of it to Stdout); Stdin, when set, is
// copied to the process; CloseStdin closes the process's stdin when Stdin
// ends (docker's StdinOnce).
type AttachOptions struct {
	Exec           string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	CloseStdin     bool
}

// Attachment is a live attach.
type Attachment struct {
	conn *net.UnixConn
	done chan error
}

// Attach connects to the process's stdio. Output is copied until the
// process has exited (Wait returns then) or Close. Stdin is read until it
// ends, whatever happens to the process.
func (c *Client) Attach(ctx context.Context, o AttachOptions) (*Attachment, error) {
	req := &request{Op: "attach", Exec: o.Exec, Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil, CloseStdin: o.CloseStdin}
	_, conn, r, err := c.call(ctx, req)
	if err != nil {
		return nil, err
	}
	a := &Attachment{conn: conn, done: make(chan error, 1)}
	if o.Stdin != nil {
		go func() {
			io.Copy(conn, o.Stdin)
			conn.CloseWrite()
		}()
	}
	go func() { a.done <- demux(r, o.Stdout, o.Stderr) }()
	return a, nil
}

// Wait returns when the output stream ends.
func (a *Attachment) Wait() error {
	err := <-a.done
	a.done <- err
	return err
}

// Close detaches.
func (a *Attachment) Close() error { return a.conn.Close() }

func demux(r *bufio.Reader, stdout, stderr io.Writer) error {
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[1:]))
		w := stdout
		if hdr[0] == StreamStderr {
			w = stderr
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return err
		}
	}
}

// alive says whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

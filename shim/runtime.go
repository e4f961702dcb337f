package shim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/trace"
)

// InProcess, when set, runs berth's own runtime inside the shim instead of
// starting the runtime's binary for each step (a process start per create,
// start, kill and delete): given the runtime command line the shim was
// started with, it returns that runtime's Runner, or nil when the command
// line is another runtime (runc, crun). The berth binary sets it (package
// shim/inproc); the lean berth-shim leaves it nil and links no runtime.
var InProcess func(rt []string) Runner

// SpareInit, when set, runs in a spare shim before its arguments come,
// with the spare's tag (NewSpares): the in-process runtime starts there
// what it can ahead of the container (package shim/inproc: a spare
// container init).
var SpareInit func(tag []string)

// Runner runs one runtime command, args as the runtime's CLI takes them,
// with stdio (as for the CLI) and the runtime's log going to logPath.
// handled is false for what it leaves to the runtime's CLI.
type Runner func(stdio []*os.File, logPath string, args []string) (handled bool, err error)

// runtime runs the runtime command with args and waits for it. stdio, when
// given, are its stdin, stdout and stderr (for create and exec, the
// container's own); otherwise it gets /dev/null and a file in the state dir
// for its errors. The runtime's own log (--log) goes to the state dir.
func (s *shim) runtime(stdio []*os.File, args ...string) error {
	trace.Step("shim: runtime " + args[0])
	defer trace.Step("shim: runtime " + args[0] + " done")
	if s.inproc != nil {
		if handled, err := s.inproc(stdio, s.path(rtLog), args); handled {
			if err != nil {
				return fmt.Errorf("runtime %s: %w", args[0], err)
			}
			return nil
		}
	}
	full := append(append([]string{}, s.rt[1:]...), "--log", s.path(rtLog), "--log-format", "json")
	full = append(full, args...)
	cmd := exec.Command(s.rt[0], full...)
	cmd.Dir = s.dir
	var errFile *os.File
	if len(stdio) == 3 {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	} else {
		f, err := os.CreateTemp(s.dir, rtErr+".*")
		if err != nil {
			return fmt.Errorf("runtime stderr: %w", err)
		}
		os.Remove(f.Name())
		defer f.Close()
		errFile = f
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("runtime %s: %w", args[0], err)
	}
	ws := <-s.reaper.watch(cmd.Process.Pid)
	cmd.Process.Release()
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	code, _ := exitCode(ws)
	msg := ""
	if errFile != nil {
		b := make([]byte, 4096)
		n, _ := errFile.ReadAt(b, 0)
		msg = string(bytes.TrimSpace(b[:n]))
	}
	if msg == "" {
		msg = lastLogError(filepath.Join(s.dir, rtLog))
	}
	return fmt.Errorf("runtime %s (exit %d): %s", args[0], code, msg)
}

// lastLogError is the last line of the runtime's log, where runc, crun and
// berth write the reason of a failure.
func lastLogError(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	var e struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal(b, &e) == nil && e.Msg != "" {
		return e.Msg // --log-format json, as all three write it
	}
	return string(b)
}

type consoleSocket struct {
	ln   *net.UnixListener
	path string
}

var consoleSeq atomic.Int64

// listenConsole makes the socket the runtime sends a pty master to.
func (s *shim) listenConsole() (*consoleSocket, error) {
	name := "console-" + strconv.FormatInt(consoleSeq.Add(1), 10) + ".sock"
	path := s.path(name)
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{ln: ln, path: path}, nil
}

func (c *consoleSocket) close() { c.ln.Close() }

// receive takes the pty master the runtime sent (it has exited by now, so
// the message is queued already).
func (c *consoleSocket) receive() (*os.File, error) {
	c.ln.SetDeadline(time.Now().Add(5 * time.Second))
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: the runtime sent no terminal: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) == 0 {
		return nil, fmt.Errorf("console socket: no file descriptor in the message")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking, so the Go poller serves it and Close stops a Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

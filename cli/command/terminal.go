package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/term"
	"golang.org/x/sys/unix"
)

// defaultDetachKeys is docker's escape sequence when none is configured.
// (closedChan is a start that is already over.)
const defaultDetachKeys = "ctrl-p,ctrl-q"

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// hijacked is one attached session (run, start -a, attach, exec): the
// streams to copy and whether the container has a terminal.
type hijacked struct {
	resp       client.HijackedResponse
	in         io.Reader // nil: stdin not attached
	out, err   io.Writer
	tty        bool
	detachKeys string
}

// stream copies stdin to the connection and its output back, until the
// output ends, or the detach keys are read (term.EscapeError). With a
// terminal, the CLI's stdin is raw while it runs and is restored on every
// path; the output is one raw stream, else stdcopy frames say which.
func (c *CLI) stream(ctx context.Context, h hijacked) error {
	restore := func() {}
	in := h.in
	if in != nil && h.tty {
		var err error
		if restore, err = c.rawInput(); err != nil {
			return fmt.Errorf("unable to set IO streams as raw terminal: %s", err)
		}
		keys, err := term.ToBytes(h.detachKeys)
		if err != nil || h.detachKeys == "" {
			keys, _ = term.ToBytes(defaultDetachKeys)
		}
		in = term.NewEscapeProxy(in, keys)
	}
	defer restore()

	outputDone := make(chan error, 1)
	if h.out != nil || h.err != nil {
		go func() {
			var err error
			if h.out != nil && h.tty {
				_, err = io.Copy(h.out, h.resp.Reader)
				restore() // before anything else is printed
			} else {
				_, err = stdcopy.StdCopy(orDiscard(h.out), orDiscard(h.err), h.resp.Reader)
			}
			outputDone <- err
		}()
	} else {
		outputDone = nil
	}
	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if in != nil {
			_, err := io.Copy(h.resp.Conn, in)
			restore()
			var esc term.EscapeError
			if errors.As(err, &esc) {
				detached <- err
				return
			}
		}
		_ = h.resp.CloseWrite() // the container's stdin sees EOF
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone != nil {
			select {
			case err := <-outputDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func isEscape(err error) bool {
	var esc term.EscapeError
	return errors.As(err, &esc)
}

// rawInput puts the CLI's stdin, if a terminal, in raw mode; restore may
// be called any number of times.
func (c *CLI) rawInput() (restore func(), err error) {
	fd, ok := terminalFd(c.In)
	if !ok {
		return func() {}, nil
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { _ = term.RestoreTerminal(fd, state) }) }, nil
}

// checkTTY refuses a terminal session whose stdin is not one, as docker.
func (c *CLI) checkTTY(attachStdin, tty bool) error {
	if _, ok := terminalFd(c.In); tty && attachStdin && !ok {
		return errors.New("the input device is not a TTY")
	}
	return nil
}

// ttySize is the size of the CLI's output terminal (0, 0 if none).
func (c *CLI) ttySize() (h, w uint) {
	fd, ok := terminalFd(c.Out)
	if !ok {
		return 0, 0
	}
	ws, err := term.GetWinsize(fd)
	if err != nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}

// monitorTTYSize sends the terminal's size now (before the caller goes on,
// so that what is typed next sees it; retried a little in the background
// when it fails: an exec's process may not be there yet) and on every
// SIGWINCH until ctx ends.
func (c *CLI) monitorTTYSize(ctx context.Context, resize func(ctx context.Context, h, w uint) error) {
	send := func() error {
		h, w := c.ttySize()
		if h == 0 && w == 0 {
			return nil
		}
		return resize(ctx, h, w)
	}
	if err := send(); err != nil {
		go func() {
			for i := 1; i <= 10 && ctx.Err() == nil; i++ {
				slog.Debug("resize", "err", err)
				time.Sleep(time.Duration(i) * 10 * time.Millisecond)
				if err = send(); err == nil {
					return
				}
			}
		}()
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-winch:
				_ = send()
			case <-ctx.Done():
				return
			}
		}
	}()
}

func containerResizer(cl *client.Client, id string) func(context.Context, uint, uint) error {
	return func(ctx context.Context, h, w uint) error {
		_, err := cl.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

func execResizer(cl *client.Client, id string) func(context.Context, uint, uint) error {
	return func(ctx context.Context, h, w uint) error {
		_, err := cl.ExecResize(ctx, id, client.ExecResizeOptions{Height: h, Width: w})
		return err
	}
}

// signalCatch is the registration for every signal that --sig-proxy
// needs, made in the background: signal.Notify for all signals is a round
// trip to the runtime's signal thread per signal (1.5-3 ms of CPU here),
// which run makes while its create request is on the way.
type signalCatch struct {
	sigs  chan os.Signal
	ready chan struct{}
}

func catchSignals() *signalCatch {
	sc := &signalCatch{sigs: make(chan os.Signal, 16), ready: make(chan struct{})}
	go func() {
		signal.Notify(sc.sigs, proxied()...)
		close(sc.ready)
	}()
	return sc
}

// proxied are the signals the CLI passes on: the standard ones a process
// can catch but SIGCHLD, SIGPIPE and SIGURG (the Go runtime's own), as
// docker's CLI does; not the real-time ones, which docker's passes too.
// Go enables each signal with a round trip to its signal thread: all 65
// cost 1.1-1.9 ms of a start's CPU here, these 26 0.35-0.5 ms. A
// real-time signal reaches a container with `docker kill --signal`.
func proxied() []os.Signal {
	var sigs []os.Signal
	for n := syscall.Signal(1); n < 32; n++ {
		switch n {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGPIPE, unix.SIGURG:
			continue
		}
		sigs = append(sigs, n)
	}
	return sigs
}

// release lets the signals go when no proxy came of the catch.
func (sc *signalCatch) release() {
	go func() {
		<-sc.ready
		signal.Stop(sc.sigs)
	}()
}

// proxySignals forwards the signals the CLI receives to the container
// (docker's --sig-proxy) until stop is called; meanwhile SIGINT and SIGTERM
// do not end the CLI, which exits with the container's code. Signals wait
// for started to close: the container's output can arrive before its start
// returns, and a kill before that is refused (not running).
func (c *CLI) proxySignals(cl *client.Client, id string, started <-chan struct{}) (stop func()) {
	return c.proxyCaught(catchSignals(), cl, id, started)
}

// proxyCaught is proxySignals with signals caught since sc was made.
// Those that came before are dropped: Main has dealt with them (SIGINT
// cancels the command).
func (c *CLI) proxyCaught(sc *signalCatch, cl *client.Client, id string, started <-chan struct{}) (stop func()) {
	<-sc.ready
	sigs := sc.sigs
	for drained := false; !drained; {
		select {
		case <-sigs:
		default:
			drained = true
		}
	}
	c.proxying.Store(true)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig, ok := s.(syscall.Signal)
				// SIGURG is the Go runtime's own preemption signal.
				if !ok || sig == unix.SIGCHLD || sig == unix.SIGPIPE || sig == unix.SIGURG {
					continue
				}
				select {
				case <-started:
				case <-done:
					return
				}
				name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
				if _, err := cl.ContainerKill(context.Background(), id, client.ContainerKillOptions{Signal: name}); err != nil {
					slog.Debug("forward signal", "signal", name, "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			c.proxying.Store(false)
			// As costly as the Notify, and what is caught meanwhile is
			// dropped: a CLI that is about to exit need not wait for it.
			go signal.Stop(sigs)
		})
	}
}

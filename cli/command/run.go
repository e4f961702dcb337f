package command

import (
	"context"
	"fmt"
	"log/slog"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"berth.dev/berth/internal/trace"
)

type runOptions struct {
	containerOptions
	detach     bool
	detachKeys string
	sigProxy   bool
}

func newRunCommand(c *CLI) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd, o, args)
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	return cmd
}

// run is docker's run: create, attach (before the start, so no output is
// lost), start, then wait for the stream and the exit, whose code is the
// CLI's.
func (c *CLI) run(cmd *cobra.Command, o *runOptions, args []string) error {
	ctx := cmd.Context()
	req, err := o.config(flagsOf(cmd), args)
	if err != nil {
		return withHelp(err, "run", ExitUsage)
	}
	if err := validatePull(o.pull); err != nil {
		return withHelp(err, "run", ExitUsage)
	}
	cfg := req.config
	if o.detach {
		if len(o.attach) != 0 {
			return errConflictAttachDetach
		}
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	} else if err := c.checkTTY(cfg.AttachStdin, cfg.Tty); err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	// With a terminal, signals are the terminal's business (^C is a byte).
	proxy := o.sigProxy && !cfg.Tty
	var caught *signalCatch
	if proxy {
		caught = catchSignals() // while the create is on its way
	}
	trace.Step("cli: create")
	id, err := c.createContainer(ctx, cl, &o.containerOptions, req)
	if err != nil {
		if caught != nil {
			caught.release()
		}
		return runStatus(err)
	}
	trace.Step("cli: created")
	started := make(chan struct{})
	if proxy {
		defer c.proxyCaught(caught, cl, id, started)()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The wait is asked beside the attach: both are in place before the
	// start, and neither needs the other's answer.
	waiting := make(chan (<-chan int), 1)
	go func() { waiting <- waitExitOrRemoved(ctx, cl, id, o.rm) }()
	attach := cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr
	var streamDone chan error
	closeAttach := func() {}
	if attach {
		keys := o.detachKeys
		resp, err := cl.ContainerAttach(context.WithoutCancel(ctx), id, client.ContainerAttachOptions{
			Stream: true, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: keys})
		if err != nil {
			return err
		}
		trace.Step("cli: attached")
		closeAttach = resp.Close
		defer resp.Close()
		h := hijacked{resp: resp.HijackedResponse, tty: cfg.Tty, detachKeys: keys}
		if cfg.AttachStdin {
			h.in = c.In
		}
		if cfg.AttachStdout {
			h.out = c.Out
		}
		if cfg.AttachStderr {
			h.err = c.Err
			if cfg.Tty {
				h.err = c.Out
			}
		}
		streamDone = make(chan error, 1)
		go func() { streamDone <- c.stream(ctx, h) }()
	}
	status := <-waiting
	// The start is not cancelled with the CLI: berth daemon undoes a start
	// whose request goes away, even when the process already ran.
	trace.Step("cli: start")
	_, err = cl.ContainerStart(context.WithoutCancel(ctx), id, client.ContainerStartOptions{})
	trace.Step("cli: started")
	close(started)
	if err != nil {
		if attach {
			closeAttach() // the daemon may hold an attach to what never starts
			<-streamDone
		}
		if o.rm {
			<-status
		}
		return runStatus(err)
	}
	if !attach {
		fmt.Fprintln(c.Out, id)
		return nil
	}
	if cfg.Tty {
		if _, ok := terminalFd(c.Out); ok {
			c.monitorTTYSize(ctx, containerResizer(cl, id))
		}
	}
	err = <-streamDone
	trace.Step("cli: stream ended")
	if err != nil {
		if isEscape(err) {
			return nil // detached with the keys: the container runs on
		}
		slog.Debug("hijack", "err", err)
		return interrupted(ctx, err)
	}
	return exitStatus(ctx, status)
}

// exitStatus waits for the container's code and makes it the CLI's; an
// interrupted CLI (its context cancelled) ends at once, with Main's code.
func exitStatus(ctx context.Context, status <-chan int) error {
	select {
	case code := <-status:
		if code != 0 {
			return statusError{code: code, err: errNoMessage}
		}
	case <-ctx.Done():
	}
	return nil
}

// interrupted hides the error of a stream cut by the CLI's own
// interruption: Main then gives 128 plus the signal.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// errNoMessage is an exit status without words (the container's code).
var errNoMessage = fmt.Errorf("%s", "")

// waitExitOrRemoved waits for the container's next exit (or its removal,
// with --rm) and gives its code; 125 when the wait fails.
func waitExitOrRemoved(ctx context.Context, cl *client.Client, id string, removed bool) <-chan int {
	cond := container.WaitConditionNextExit
	if removed {
		cond = container.WaitConditionRemoved
	}
	w := cl.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	status := make(chan int, 1)
	go func() {
		select {
		case <-ctx.Done():
		case r := <-w.Result:
			trace.Step("cli: wait answered")
			if r.Error != nil {
				slog.Error("Error waiting for container: " + r.Error.Message)
				status <- ExitUsage
				return
			}
			status <- int(r.StatusCode)
		case err := <-w.Error:
			slog.Error("error waiting for container: " + err.Error())
			status <- ExitUsage
		}
	}()
	return status
}

package command

import (
	"context"
	"errors"

	"berth.dev/berth/client"
	"github.com/spf13/cobra"
)

type execOptions struct {
	detach, interactive, tty, privileged bool
	detachKeys, user, workdir            string
	env, envFile                         listFlag
}

func newExecCommand(c *CLI) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.exec(cmd.Context(), o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.VarP(&envFlag{&o.env}, "env", "e", "Set environment variables")
	f.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// exec is docker's: the container is looked up first (so "No such
// container" wins over a terminal error), the exec made, then attached and
// started; the exit code is the process's, from the exec's inspect (126 and
// 127 come from the daemon when the command cannot run).
func (c *CLI) exec(ctx context.Context, o *execOptions, name string, cmdArgs []string) error {
	env, err := readKVFiles(o.envFile, o.env, true)
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if _, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
		return err
	}
	if !o.detach {
		if err := c.checkTTY(o.interactive, o.tty); err != nil {
			return err
		}
	}
	opts := client.ExecCreateOptions{User: o.user, Privileged: o.privileged, TTY: o.tty, AttachStdin: o.interactive,
		AttachStdout: !o.detach, AttachStderr: !o.detach, DetachKeys: o.detachKeys, Env: env, WorkingDir: o.workdir, Cmd: cmdArgs}
	var size client.ConsoleSize
	if o.tty {
		h, w := c.ttySize()
		size = client.ConsoleSize{Height: h, Width: w}
		opts.ConsoleSize = size
	}
	res, err := cl.ExecCreate(ctx, name, opts)
	if err != nil {
		return err
	}
	if res.ID == "" {
		return errors.New("exec ID empty")
	}
	if o.detach {
		_, err := cl.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: o.tty, ConsoleSize: size})
		return err
	}
	resp, err := cl.ExecAttach(ctx, res.ID, client.ExecAttachOptions{TTY: o.tty, ConsoleSize: size})
	if err != nil {
		return err
	}
	defer resp.Close()
	h := hijacked{resp: resp.HijackedResponse, out: c.Out, err: c.Err, tty: o.tty, detachKeys: o.detachKeys}
	if o.interactive {
		h.in = c.In
	}
	if o.tty {
		h.err = c.Out
	}
	done := make(chan error, 1)
	go func() { done <- c.stream(ctx, h) }()
	if o.tty {
		if _, ok := terminalFd(c.In); ok {
			mctx, cancel := context.WithCancel(ctx)
			defer cancel()
			c.monitorTTYSize(mctx, execResizer(cl, res.ID))
		}
	}
	if err := <-done; err != nil {
		return interrupted(ctx, err)
	}
	ins, err := cl.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return statusError{code: -1, err: errNoMessage}
		}
		return err
	}
	if ins.ExitCode != 0 {
		return statusError{code: ins.ExitCode, err: errNoMessage}
	}
	return nil
}

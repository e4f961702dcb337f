package command

import (
	"context"
	"errors"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func newAttachCommand(c *CLI) *cobra.Command {
	var detachKeys string
	var noStdin, sigProxy bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.attach(cmd.Context(), args[0], detachKeys, noStdin, sigProxy)
		},
	}
	f := cmd.Flags()
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	f.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}

// attachableState is docker's check before an attach.
func attachableState(ctx context.Context, cl *client.Client, name string) (container.InspectResponse, error) {
	res, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, err
	}
	st := res.Container.State
	switch {
	case st == nil || !st.Running:
		//lint:ignore ST1005 docker's words, shown verbatim
		return res.Container, errors.New("You cannot attach to a stopped container, start it first")
	case st.Paused:
		//lint:ignore ST1005 docker's words, shown verbatim
		return res.Container, errors.New("You cannot attach to a paused container, unpause it first")
	case st.Restarting:
		//lint:ignore ST1005 docker's words, shown verbatim
		return res.Container, errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return res.Container, nil
}

// attach is docker's: the wait is asked first, so an exit while attaching
// is not missed; the exit code is the container's. Detaching with the keys
// ends it with "read escape sequence" (exit 1), as docker's.
func (c *CLI) attach(ctx context.Context, name, detachKeys string, noStdin, sigProxy bool) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	w := cl.ContainerWait(context.WithoutCancel(ctx), name, client.ContainerWaitOptions{})
	ctr, err := attachableState(ctx, cl, name)
	if err != nil {
		return err
	}
	if err := c.checkTTY(!noStdin, ctr.Config.Tty); err != nil {
		return err
	}
	opts := client.ContainerAttachOptions{Stream: true, Stdin: !noStdin && ctr.Config.OpenStdin,
		Stdout: true, Stderr: true, DetachKeys: detachKeys}
	if sigProxy && !ctr.Config.Tty {
		defer c.proxySignals(cl, ctr.ID, closedChan)()
	}
	resp, err := cl.ContainerAttach(ctx, name, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if _, err := attachableState(ctx, cl, name); err != nil {
		return err
	}
	h := hijacked{resp: resp.HijackedResponse, out: c.Out, err: c.Err, tty: ctr.Config.Tty, detachKeys: detachKeys}
	if opts.Stdin {
		h.in = c.In
	}
	if ctr.Config.Tty {
		if _, ok := terminalFd(c.Out); ok {
			// One size off and back, so that a shell redraws its prompt
			// for the new attach, as docker does.
			hh, ww := c.ttySize()
			_ = containerResizer(cl, ctr.ID)(ctx, hh+1, ww+1)
			c.monitorTTYSize(ctx, containerResizer(cl, ctr.ID))
		}
	}
	if err := c.stream(ctx, h); err != nil {
		return interrupted(ctx, err)
	}
	select {
	case <-ctx.Done():
	case r := <-w.Result:
		if r.Error != nil {
			return errors.New(r.Error.Message)
		}
		if r.StatusCode != 0 {
			return statusError{code: int(r.StatusCode), err: errNoMessage}
		}
	case err := <-w.Error:
		return err
	}
	return nil
}

// startAttached is `start -a` / `start -i` of one container: attach, wait,
// start, and the container's exit code.
func (c *CLI) startAttached(ctx context.Context, name, detachKeys string, stdin bool) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := res.Container
	started := make(chan struct{})
	if !ctr.Config.Tty {
		defer c.proxySignals(cl, ctr.ID, started)()
	}
	opts := client.ContainerAttachOptions{Stream: true, Stdin: stdin && ctr.Config.OpenStdin, Stdout: true, Stderr: true, DetachKeys: detachKeys}
	resp, err := cl.ContainerAttach(ctx, ctr.ID, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	h := hijacked{resp: resp.HijackedResponse, out: c.Out, err: c.Err, tty: ctr.Config.Tty, detachKeys: detachKeys}
	if opts.Stdin {
		h.in = c.In
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- c.stream(ctx, h) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	status := waitExitOrRemoved(ctx, cl, ctr.ID, ctr.HostConfig != nil && ctr.HostConfig.AutoRemove)
	_, err = cl.ContainerStart(context.WithoutCancel(ctx), ctr.ID, client.ContainerStartOptions{})
	close(started)
	if err != nil {
		resp.Close()
		<-streamDone
		if ctr.HostConfig != nil && ctr.HostConfig.AutoRemove {
			<-status
		}
		return err
	}
	if ctr.Config.Tty {
		if _, ok := terminalFd(c.Out); ok {
			c.monitorTTYSize(ctx, containerResizer(cl, ctr.ID))
		}
	}
	if err := <-streamDone; err != nil {
		if isEscape(err) {
			return nil
		}
		return interrupted(ctx, err)
	}
	return exitStatus(ctx, status)
}

package client

import (
	"context"
	"net/url"

	"github.com/moby/moby/api/types/container"
)

// ConsoleSize is a terminal's size.
type ConsoleSize struct{ Height, Width uint }

func consoleSize(tty bool, s ConsoleSize) (*[2]uint, error) {
	if s.Height == 0 && s.Width == 0 {
		return nil, nil
	}
	if !tty {
		return nil, errInvalid("console size is only supported when TTY is enabled")
	}
	return &[2]uint{s.Height, s.Width}, nil
}

// ExecCreateOptions is the process to run in a container.
type ExecCreateOptions struct {
	User         string
	Privileged   bool
	TTY          bool
	ConsoleSize  ConsoleSize
	AttachStdin  bool
	AttachStderr bool
	AttachStdout bool
	DetachKeys   string
	Env          []string
	WorkingDir   string
	Cmd          []string
}

// ExecCreateResult is the exec's ID.
type ExecCreateResult struct{ ID string }

// ExecCreate prepares a process in a running container.
func (c *Client) ExecCreate(ctx context.Context, id string, o ExecCreateOptions) (ExecCreateResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ExecCreateResult{}, err
	}
	size, err := consoleSize(o.TTY, o.ConsoleSize)
	if err != nil {
		return ExecCreateResult{}, err
	}
	resp, err := c.post(ctx, "/containers/"+id+"/exec", nil, nil, container.ExecCreateRequest{User: o.User, Privileged: o.Privileged,
		Tty: o.TTY, ConsoleSize: size, AttachStdin: o.AttachStdin, AttachStderr: o.AttachStderr, AttachStdout: o.AttachStdout,
		DetachKeys: o.DetachKeys, Env: o.Env, WorkingDir: o.WorkingDir, Cmd: o.Cmd})
	r, err := answer[container.ExecCreateResponse](resp, err)
	return ExecCreateResult{ID: r.ID}, err
}

// ExecStartOptions: detached, with a tty of a size.
type ExecStartOptions struct {
	Detach      bool
	TTY         bool
	ConsoleSize ConsoleSize
}

// ExecStartResult is empty.
type ExecStartResult struct{}

// ExecStart starts an exec detached.
func (c *Client) ExecStart(ctx context.Context, id string, o ExecStartOptions) (ExecStartResult, error) {
	size, err := consoleSize(o.TTY, o.ConsoleSize)
	if err != nil {
		return ExecStartResult{}, err
	}
	resp, err := c.post(ctx, "/exec/"+id+"/start", nil, nil, container.ExecStartRequest{Detach: o.Detach, Tty: o.TTY, ConsoleSize: size})
	if err != nil {
		return ExecStartResult{}, err
	}
	closeBody(resp)
	return ExecStartResult{}, nil
}

// ExecAttachOptions: with a tty of a size.
type ExecAttachOptions struct {
	TTY         bool
	ConsoleSize ConsoleSize `json:",omitzero"`
}

// ExecAttachResult is the exec's stream.
type ExecAttachResult struct{ HijackedResponse }

// ExecAttach starts an exec and returns its streams.
func (c *Client) ExecAttach(ctx context.Context, id string, o ExecAttachOptions) (ExecAttachResult, error) {
	size, err := consoleSize(o.TTY, o.ConsoleSize)
	if err != nil {
		return ExecAttachResult{}, err
	}
	h, err := c.postHijacked(ctx, "/exec/"+id+"/start", nil, container.ExecStartRequest{Tty: o.TTY, ConsoleSize: size})
	return ExecAttachResult{HijackedResponse: h}, err
}

// ExecInspectOptions is empty.
type ExecInspectOptions struct{}

// ExecInspectResult is an exec's state.
type ExecInspectResult struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    int
	PID         int
}

// ExecInspect inspects an exec.
func (c *Client) ExecInspect(ctx context.Context, id string, _ ExecInspectOptions) (ExecInspectResult, error) {
	r, err := answer[container.ExecInspectResponse](c.get(ctx, "/exec/"+id+"/json", nil))
	if err != nil {
		return ExecInspectResult{}, err
	}
	res := ExecInspectResult{ID: r.ID, ContainerID: r.ContainerID, Running: r.Running, PID: r.Pid}
	if r.ExitCode != nil {
		res.ExitCode = *r.ExitCode
	}
	return res, nil
}

// ExecResizeOptions is the exec's terminal size.
type ExecResizeOptions ContainerResizeOptions

// ExecResizeResult is empty.
type ExecResizeResult struct{}

// ExecResize resizes an exec's terminal.
func (c *Client) ExecResize(ctx context.Context, id string, o ExecResizeOptions) (ExecResizeResult, error) {
	id, err := trimID("exec", id)
	if err != nil {
		return ExecResizeResult{}, err
	}
	resp, err := c.post(ctx, "/exec/"+id+"/resize", sizeQuery(o.Height, o.Width), nil, nil)
	if err != nil {
		return ExecResizeResult{}, err
	}
	closeBody(resp)
	return ExecResizeResult{}, nil
}

// ContainerAttachOptions: which streams, past logs, detach keys.
type ContainerAttachOptions struct {
	Stream     bool
	Stdin      bool
	Stdout     bool
	Stderr     bool
	DetachKeys string
	Logs       bool
}

// ContainerAttachResult is the container's stream.
type ContainerAttachResult struct{ HijackedResponse }

// ContainerAttach attaches to a container's streams.
func (c *Client) ContainerAttach(ctx context.Context, id string, o ContainerAttachOptions) (ContainerAttachResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerAttachResult{}, err
	}
	q := url.Values{}
	for k, on := range map[string]bool{"stream": o.Stream, "stdin": o.Stdin, "stdout": o.Stdout, "stderr": o.Stderr, "logs": o.Logs} {
		if on {
			q.Set(k, "1")
		}
	}
	if o.DetachKeys != "" {
		q.Set("detachKeys", o.DetachKeys)
	}
	h, err := c.postHijacked(ctx, "/containers/"+id+"/attach", q, nil)
	return ContainerAttachResult{HijackedResponse: h}, err
}

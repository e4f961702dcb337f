package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execConfig is one exec: made by create, run once by start.
type execConfig struct {
	mu          sync.Mutex
	ID          string
	ContainerID string
	Config      containertypes.ExecCreateRequest
	Running     bool
	Started     bool
	ExitCode    *int
	Pid         int
}

type execs struct {
	mu sync.Mutex
	m  map[string]*execConfig
}

func (d *Daemon) execStore() *execs {
	d.ctrs.mu.Lock()
	defer d.ctrs.mu.Unlock()
	if d.ctrs.execs == nil {
		d.ctrs.execs = &execs{m: map[string]*execConfig{}}
	}
	return d.ctrs.execs
}

// ContainerExecCreate is POST /containers/{id}/exec.
func (d *Daemon) ContainerExecCreate(ctx context.Context, name string, req containertypes.ExecCreateRequest) (string, error) {
	var id string
	err := d.job(ctx, "container.exec-create", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		if len(req.Cmd) == 0 {
			return errdefs.Invalid("no exec command specified")
		}
		c.Lock()
		paused := c.State.Status == container.StatusPaused
		c.Unlock()
		if d.runningOf(c.ID) == nil {
			return errdefs.Conflict("Container %s is not running", c.ID)
		}
		if paused {
			return errdefs.Conflict("Container %s is paused, unpause the container before exec", name) // as named, as dockerd
		}
		if _, err := detachKeys(req.DetachKeys); err != nil {
			return err
		}
		id = container.NewID()
		es := d.execStore()
		es.mu.Lock()
		es.m[id] = &execConfig{ID: id, ContainerID: c.ID, Config: req}
		es.mu.Unlock()
		d.publishContainer(c, events.Action("exec_create: "+joinArgs(req.Cmd)), map[string]string{"execID": id})
		return nil
	})
	return id, err
}

// joinArgs is the command in exec events, as dockerd writes it: the
// words joined by spaces ("exec_start: /bin/sh -c test -f /tmp/ok").
func joinArgs(a []string) string { return strings.Join(a, " ") }

func (d *Daemon) getExec(id string) (*execConfig, error) {
	es := d.execStore()
	es.mu.Lock()
	defer es.mu.Unlock()
	e, ok := es.m[id]
	if !ok {
		return nil, errdefs.NotFound("No such exec instance: %s", id)
	}
	return e, nil
}

// ContainerExecInspect is GET /exec/{id}/json.
func (d *Daemon) ContainerExecInspect(ctx context.Context, id string) (*containertypes.ExecInspectResponse, error) {
	e, err := d.getExec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg := e.Config
	out := &containertypes.ExecInspectResponse{ID: e.ID, Running: e.Running, ExitCode: e.ExitCode, ContainerID: e.ContainerID,
		OpenStdin: cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr, Pid: e.Pid, CanRemove: e.ExitCode != nil,
		ProcessConfig: &containertypes.ExecProcessConfig{Tty: cfg.Tty, Entrypoint: cfg.Cmd[0], Arguments: slices.Clone(cfg.Cmd[1:]),
			Privileged: &cfg.Privileged, User: cfg.User}}
	if out.ProcessConfig.Arguments == nil {
		out.ProcessConfig.Arguments = []string{}
	}
	return out, nil
}

// ContainerExecResize is POST /exec/{id}/resize.
func (d *Daemon) ContainerExecResize(ctx context.Context, id string, height, width int) error {
	e, err := d.getExec(id)
	if err != nil {
		return err
	}
	r := d.runningOf(e.ContainerID)
	if r == nil {
		return errdefs.Conflict("Container %s is not running", e.ContainerID)
	}
	return r.shim.Resize(ctx, id, uint16(height), uint16(width))
}

// execProcess is the exec's process: the container's own, with the
// exec's command, terminal, environment, directory and user.
func (d *Daemon) execProcess(c *container.Container, cfg containertypes.ExecCreateRequest) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(d.shimDir(c.ID), "bundle", "config.json"))
	if err != nil {
		return nil, fmt.Errorf("exec: the container's spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("exec: the container's spec: %w", err)
	}
	p := s.Process
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.Env = container.Env(container.MergeEnv(p.Env, cfg.Env), cfg.Tty)
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	p.ConsoleSize = nil
	if cfg.User != "" {
		c.Lock()
		groups := c.HostConfig.GroupAdd
		c.Unlock()
		cr, err := container.ResolveUser(c.RootfsPath(), cfg.User, groups)
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: cr.UID, GID: cr.GID, AdditionalGids: cr.Groups}
	}
	if cfg.Privileged {
		caps := container.AllCaps()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	return p, nil
}

// ContainerExecStart is POST /exec/{id}/start. Without detach,
// getStreams hands over the client's connection and the call lasts until
// the process has ended (its exit code recorded) or the client detaches.
func (d *Daemon) ContainerExecStart(ctx context.Context, id string, detach bool,
	getStreams func(tty bool) (io.Reader, io.Writer, io.Writer, error)) error {
	e, err := d.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.Started {
		e.mu.Unlock()
		return errdefs.Conflict("exec %s has already been started", id)
	}
	e.Started = true
	cfg := e.Config
	e.mu.Unlock()
	c, err := d.ctrs.store.Get(e.ContainerID)
	if err != nil {
		return err
	}
	r := d.runningOf(c.ID)
	if r == nil {
		return errdefs.Conflict("Container %s is not running", c.ID)
	}
	p, err := d.execProcess(c, cfg)
	if err != nil {
		return err
	}
	client := r.shim
	bg := context.WithoutCancel(ctx)
	if err := client.Exec(bg, id, p, cfg.AttachStdin && !detach); err != nil {
		return err
	}
	d.publishContainer(c, events.Action("exec_start: "+joinArgs(cfg.Cmd)), map[string]string{"execID": id})
	if detach {
		if err := client.Start(bg, id); err != nil {
			_ = client.DeleteExec(bg, id)
			return err
		}
		d.execStarted(bg, client, e)
		go d.execWait(bg, client, c, e)
		return nil
	}
	keys, err := detachKeys(cfg.DetachKeys)
	if err != nil {
		return err
	}
	stdin, stdout, stderr, err := getStreams(cfg.Tty)
	if err != nil {
		return err
	}
	so := shim.AttachOptions{Exec: id, CloseStdin: !cfg.Tty}
	if cfg.AttachStdout {
		so.Stdout = stdout
	}
	if cfg.AttachStderr {
		so.Stderr = stderr
	}
	if !cfg.Tty {
		var mu sync.Mutex
		if so.Stdout != nil {
			so.Stdout = &stdWriter{w: stdout, stream: 1, mu: &mu}
		}
		if so.Stderr != nil {
			so.Stderr = &stdWriter{w: stdout, stream: 2, mu: &mu}
		}
	}
	gate := &startGate{}
	if so.Stdout != nil {
		so.Stdout = gate.writer(so.Stdout)
	}
	if so.Stderr != nil {
		so.Stderr = gate.writer(so.Stderr)
	}
	detached := make(chan struct{})
	var once sync.Once
	var att *shim.Attachment
	var attMu sync.Mutex
	if cfg.AttachStdin && stdin != nil {
		so.Stdin = &detachReader{r: stdin, keys: keys, onDetach: func() {
			once.Do(func() { close(detached) })
			attMu.Lock()
			if att != nil {
				att.Close()
			}
			attMu.Unlock()
		}}
	}
	a, err := client.Attach(bg, so)
	if err != nil {
		_ = client.DeleteExec(bg, id)
		return err
	}
	attMu.Lock()
	att = a
	attMu.Unlock()
	if err := client.Start(bg, id); err != nil {
		gate.release(false)
		a.Close()
		_ = client.DeleteExec(bg, id)
		// The stream is the client's now: the error goes into it, as
		// dockerd writes it, and the exit code says what failed.
		var w io.Writer = stdout
		if !cfg.Tty {
			w = &stdWriter{w: stdout, stream: 1, mu: &sync.Mutex{}}
		}
		fmt.Fprintf(w, "%s\r\n", err)
		code := 126
		if msg := err.Error(); strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
			code = 127
		}
		e.mu.Lock()
		e.ExitCode = &code
		e.mu.Unlock()
		return nil
	}
	gate.release(true)
	d.execStarted(bg, client, e)
	done := make(chan error, 1)
	go func() { done <- a.Wait() }()
	select {
	case <-done:
		d.execWait(bg, client, c, e) // recorded before the client asks
	case <-detached:
		a.Close()
		go d.execWait(bg, client, c, e)
	case <-ctx.Done():
		a.Close()
		go d.execWait(bg, client, c, e)
	}
	return nil
}

func (d *Daemon) execStarted(ctx context.Context, client *shim.Client, e *execConfig) {
	st, err := client.State(ctx, e.ID)
	e.mu.Lock()
	e.Running = true
	if err == nil {
		e.Pid = st.Pid
	}
	e.mu.Unlock()
}

// execWait records the exec's exit and forgets it in the shim.
func (d *Daemon) execWait(ctx context.Context, client *shim.Client, c *container.Container, e *execConfig) {
	code := -1
	if ex, err := client.Wait(ctx, e.ID); err == nil {
		code = ex.ExitCode
	}
	_ = client.DeleteExec(ctx, e.ID)
	e.mu.Lock()
	e.Running, e.ExitCode, e.Pid = false, &code, 0
	e.mu.Unlock()
	d.publishContainer(c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": strconv.Itoa(code)})
}

// forgetExecs drops the exec records of a container (removed, or started
// afresh: its execs ended with its previous run).
func (d *Daemon) forgetExecs(containerID string) {
	es := d.execStore()
	es.mu.Lock()
	defer es.mu.Unlock()
	for id, e := range es.m {
		if e.ContainerID == containerID {
			delete(es.m, id)
		}
	}
}

package daemon

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/shim"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Health checks, as dockerd runs them: while a container runs (and is not
// paused) a monitor goroutine execs the probe in it every interval (the
// start interval while it is still starting within its start period),
// kills a probe that outlasts the timeout, and keeps the last results in
// State.Health; retries failures in a row make it unhealthy, one success
// healthy. Failures inside the start period do not count.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5    // results kept in State.Health.Log
	maxProbeOutput       = 4096 // bytes of a probe's output kept
)

// mergeHealthcheck puts the image's HEALTHCHECK (and SHELL) under the
// create request's, field by field as dockerd does, after checking the
// request's values.
func mergeHealthcheck(cfg *containertypes.Config, ic image.ContainerConfig) error {
	if h := cfg.Healthcheck; h != nil {
		for _, f := range []struct {
			name string
			v    time.Duration
		}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
			if f.v != 0 && f.v < containertypes.MinimumDuration {
				return errdefs.Invalid("%s in Healthcheck cannot be less than %s", f.name, containertypes.MinimumDuration)
			}
		}
		if h.Retries < 0 {
			return errdefs.Invalid("Retries in Healthcheck cannot be negative")
		}
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = ic.Shell
	}
	ih := ic.Healthcheck
	if ih == nil {
		return nil
	}
	if cfg.Healthcheck == nil {
		cfg.Healthcheck = &containertypes.HealthConfig{Test: ih.Test, Interval: ih.Interval, Timeout: ih.Timeout,
			StartPeriod: ih.StartPeriod, StartInterval: ih.StartInterval, Retries: ih.Retries}
		return nil
	}
	h := cfg.Healthcheck
	if len(h.Test) == 0 {
		h.Test = ih.Test
	}
	if h.Interval == 0 {
		h.Interval = ih.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = ih.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = ih.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = ih.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = ih.Retries
	}
	return nil
}

// probeCmd is the probe's command line, nil without a health check (none
// configured, or NONE). Callers hold c's lock.
func probeCmd(c *container.Container) []string {
	h := c.Config.Healthcheck
	if h == nil || len(h.Test) < 2 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return slices.Clone(h.Test[1:])
	case "CMD-SHELL":
		sh := c.Config.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(sh), h.Test[1])
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// startHealth begins the health monitor of a container that has just
// started (its status back to starting, the log kept) or, restored after
// a daemon restart, goes on from its recorded state. The monitor ends when
// this run of the container does (r.done).
func (d *Daemon) startHealth(c *container.Container, r *running, restored bool) {
	c.Lock()
	cmd := probeCmd(c)
	if cmd == nil {
		c.Unlock()
		return
	}
	h := c.State.Health
	if h == nil {
		h = &containertypes.Health{}
		c.State.Health = h
	}
	if !restored || h.Status == "" {
		h.Status, h.FailingStreak = containertypes.Starting, 0
		if err := c.Save(); err != nil {
			d.log.Warn("save container", "id", c.ID, "error", err)
		}
	}
	hc := *c.Config.Healthcheck
	started := c.State.StartedAt
	c.Unlock()
	go d.healthMonitor(c, r, cmd, hc, started)
}

func (d *Daemon) healthMonitor(c *container.Container, r *running, cmd []string, hc containertypes.HealthConfig, started time.Time) {
	interval := orDefault(hc.Interval, defaultProbeInterval)
	startInterval := orDefault(hc.StartInterval, defaultStartInterval)
	startPeriod := hc.StartPeriod
	next := func() time.Duration {
		if time.Since(started) >= startPeriod {
			return interval
		}
		c.Lock()
		starting := c.State.Health != nil && c.State.Health.Status == containertypes.Starting
		c.Unlock()
		if starting {
			return startInterval
		}
		return interval
	}
	timer := time.NewTimer(next())
	defer timer.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-timer.C:
		}
		if d.shuttingDown.Load() {
			return // live restore: the next daemon resumes the checks
		}
		c.Lock()
		paused := c.State.Status == container.StatusPaused
		c.Unlock()
		if !paused { // dockerd stops probing a paused container
			res := d.runProbe(c, r, cmd, orDefault(hc.Timeout, defaultProbeTimeout))
			select {
			case <-r.done:
				return // the container ended under the probe: not its health
			default:
			}
			d.healthResult(c, r, res, hc, startPeriod)
		}
		timer.Reset(next())
	}
}

// runProbe runs one probe as an exec (exec_create, exec_start and
// exec_die events as dockerd's probes make) and returns its result.
func (d *Daemon) runProbe(c *container.Container, r *running, cmd []string, timeout time.Duration) *containertypes.HealthcheckResult {
	ctx := context.Background()
	res := &containertypes.HealthcheckResult{Start: time.Now(), ExitCode: -1}
	fail := func(err error) *containertypes.HealthcheckResult {
		res.End, res.Output = time.Now(), err.Error()
		return res
	}
	req := containertypes.ExecCreateRequest{Cmd: cmd, AttachStdout: true, AttachStderr: true}
	e := &execConfig{ID: container.NewID(), ContainerID: c.ID, Config: req, Started: true}
	es := d.execStore()
	es.mu.Lock()
	es.m[e.ID] = e
	es.mu.Unlock()
	defer func() { // dockerd keeps no record of a probe's exec once it is done
		es.mu.Lock()
		delete(es.m, e.ID)
		es.mu.Unlock()
	}()
	attrs := map[string]string{"execID": e.ID}
	d.publishContainer(c, events.Action("exec_create: "+joinArgs(cmd)), attrs)
	p, err := d.execProcess(c, req)
	if err != nil {
		return fail(err)
	}
	client := r.shim
	if err := client.Exec(ctx, e.ID, p, false); err != nil {
		return fail(err)
	}
	d.publishContainer(c, events.Action("exec_start: "+joinArgs(cmd)), attrs)
	out := &limitedBuffer{}
	a, err := client.Attach(ctx, shim.AttachOptions{Exec: e.ID, Stdout: out, Stderr: out})
	if err != nil {
		_ = client.DeleteExec(ctx, e.ID)
		return fail(err)
	}
	defer a.Close()
	if err := client.Start(ctx, e.ID); err != nil {
		_ = client.DeleteExec(ctx, e.ID)
		return fail(err)
	}
	d.execStarted(ctx, client, e)
	outDone := make(chan struct{})
	go func() { _ = a.Wait(); close(outDone) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-outDone:
	case <-r.done:
	case <-timer.C:
		timedOut = true
		if err := client.Kill(ctx, e.ID, syscall.SIGKILL, false); err != nil {
			d.log.Debug("kill health probe", "id", c.ID, "error", err)
		}
		a.Close() // a child of the probe may hold its output open
	}
	// The exit is the shim's to tell; bounded, as a killed probe's
	// children may keep its output (and so the shim's wait) open.
	wctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	d.execWait(wctx, client, c, e)
	cancel()
	res.End = time.Now()
	e.mu.Lock()
	if e.ExitCode != nil {
		res.ExitCode = *e.ExitCode
	}
	e.mu.Unlock()
	res.Output = out.String()
	if timedOut {
		res.ExitCode = -1
		if res.Output != "" {
			res.Output = fmt.Sprintf("Health check exceeded timeout (%v): %s", timeout, res.Output)
		} else {
			res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		}
	}
	return res
}

// healthResult records a probe's result and publishes a change of status
// ("health_status: healthy").
func (d *Daemon) healthResult(c *container.Container, r *running, res *containertypes.HealthcheckResult, hc containertypes.HealthConfig, startPeriod time.Duration) {
	if d.runningOf(c.ID) != r {
		return // a later run of the container has its own monitor
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	c.Lock()
	h := c.State.Health
	if h == nil {
		c.Unlock()
		return
	}
	old := h.Status
	if len(h.Log) >= maxHealthLog {
		h.Log = slices.Clone(h.Log[len(h.Log)+1-maxHealthLog:])
	}
	h.Log = append(h.Log, res)
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = containertypes.Healthy
	} else if h.Status != containertypes.Starting || res.Start.Sub(c.State.StartedAt) >= startPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = containertypes.Unhealthy
		}
	}
	now := h.Status
	if err := c.Save(); err != nil {
		d.log.Warn("save container", "id", c.ID, "error", err)
	}
	c.Unlock()
	if now != old {
		d.publishContainer(c, events.Action("health_status: "+string(now)), nil)
	}
}

// healthStatus is a container's health for ps and its filter: "none"
// without a health check. Callers hold c's lock.
func healthStatus(c *container.Container) containertypes.HealthStatus {
	if c.State.Health == nil || probeCmd(c) == nil {
		return containertypes.NoHealthcheck
	}
	return c.State.Health.Status
}

// healthSuffix is what ps adds to "Up 5 seconds" for a running container
// with a health check. Callers hold c's lock.
func healthSuffix(c *container.Container) string {
	switch s := healthStatus(c); s {
	case containertypes.NoHealthcheck:
		return ""
	case containertypes.Starting:
		return " (health: starting)"
	default:
		return " (" + string(s) + ")"
	}
}

// checkHealthFilter checks ps's health filter values, in dockerd's words.
func checkHealthFilter(values []string) error {
	for _, v := range values {
		switch containertypes.HealthStatus(v) {
		case containertypes.NoHealthcheck, containertypes.Starting, containertypes.Healthy, containertypes.Unhealthy:
		default:
			return errdefs.Invalid("Unrecognised filter value for health: %s", v)
		}
	}
	return nil
}

// cloneHealth copies h for inspect, which encodes it after the lock is
// released while the monitor goes on changing it.
func cloneHealth(h *containertypes.Health) *containertypes.Health {
	if h == nil {
		return nil
	}
	out := &containertypes.Health{Status: h.Status, FailingStreak: h.FailingStreak, Log: make([]*containertypes.HealthcheckResult, len(h.Log))}
	for i, r := range h.Log {
		rr := *r
		out.Log[i] = &rr
	}
	return out
}

// limitedBuffer keeps the first maxProbeOutput bytes written to it; its
// text ends in "..." when more came, as dockerd's does.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(maxProbeOutput-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

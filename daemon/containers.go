package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/trace"
	berthruntime "berth.dev/berth/runtime"
	"berth.dev/berth/shim"
	"berth.dev/berth/shim/logs"
	"berth.dev/berth/snapshot"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// running is the daemon's side of a container whose shim lives.
type running struct {
	shim *shim.Client
	done chan struct{} // closed once the exit is recorded and the shim is gone
}

// containers is the daemon's container state beside the store.
type containers struct {
	store   *container.Store
	mu      sync.Mutex
	running map[string]*running
	ops     map[string]*sync.Mutex      // one lifecycle operation per container at a time
	pending map[string][]*pendingAttach // attaches waiting for a start
	execs   *execs
	// cleanups are --rm containers' exits ending in the background
	// (autoremove.go).
	cleanups map[string]*exitCleanup
	// creating are --rm containers' file systems being made after their
	// create's answer (createlater.go).
	creating map[string]*pendingFS
}

func (d *Daemon) openContainers() error {
	s, bad, err := container.Open(filepath.Join(d.cfg.DataRoot, "containers"))
	if err != nil {
		return err
	}
	for _, e := range bad {
		d.log.Warn("container record skipped", "error", e)
	}
	defer d.removeOrphanFilesystems(s)
	d.ctrs = &containers{store: s, running: map[string]*running{}, ops: map[string]*sync.Mutex{}, pending: map[string][]*pendingAttach{},
		cleanups: map[string]*exitCleanup{}, creating: map[string]*pendingFS{}}
	d.images.Running = func(id string) bool {
		c, err := s.Get(id)
		if err != nil {
			return false
		}
		c.Lock()
		defer c.Unlock()
		return c.Running()
	}
	return nil
}

// opLock serialises start, stop, kill and remove of one container.
func (d *Daemon) opLock(id string) func() {
	d.ctrs.mu.Lock()
	m := d.ctrs.ops[id]
	if m == nil {
		m = &sync.Mutex{}
		d.ctrs.ops[id] = m
	}
	d.ctrs.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (d *Daemon) runningOf(id string) *running {
	d.ctrs.mu.Lock()
	defer d.ctrs.mu.Unlock()
	return d.ctrs.running[id]
}

func (d *Daemon) shimDir(id string) string { return filepath.Join(d.cfg.ExecRoot, "containers", id) }

func (d *Daemon) publishContainer(c *container.Container, action events.Action, extra map[string]string) {
	c.Lock()
	attrs := map[string]string{"name": strings.TrimPrefix(c.Name, "/"), "image": c.Config.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	id := c.ID
	c.Unlock()
	for k, v := range extra {
		attrs[k] = v
	}
	d.events.Publish(events.ContainerEventType, action, id, attrs)
}

// ContainerCreate is POST /containers/create.
func (d *Daemon) ContainerCreate(ctx context.Context, name string, cfg *containertypes.Config, hc *containertypes.HostConfig, nc *nettypes.NetworkingConfig) (*containertypes.CreateResponse, error) {
	var out *containertypes.CreateResponse
	err := d.job(ctx, "container.create", true, func(ctx context.Context) error {
		if cfg == nil || cfg.Image == "" {
			return errdefs.Invalid("no image specified")
		}
		if hc == nil {
			hc = &containertypes.HostConfig{}
		}
		switch hc.RestartPolicy.Name {
		case "", "no", "always", "unless-stopped":
			if hc.RestartPolicy.MaximumRetryCount != 0 {
				return errdefs.Invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
			}
		case "on-failure":
			if hc.RestartPolicy.MaximumRetryCount < 0 {
				return errdefs.Invalid("invalid restart policy: maximum retry count cannot be negative")
			}
		default:
			return errdefs.Invalid("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name)
		}
		if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
			return errdefs.Invalid("can't create 'AutoRemove' container with restart policy")
		}
		img, err := d.images.Get(ctx, cfg.Image)
		if err != nil {
			return err
		}
		ic := img.Config.Config
		// The image's run configuration under the request's.
		cfg.Env = container.CreateEnv(ic.Env, cfg.Env)
		if len(cfg.Entrypoint) == 0 && cfg.Entrypoint == nil {
			cfg.Entrypoint = ic.Entrypoint
			if len(cfg.Cmd) == 0 {
				cfg.Cmd = ic.Cmd
			}
		}
		if cfg.WorkingDir == "" {
			cfg.WorkingDir = ic.WorkingDir
		}
		if cfg.User == "" {
			cfg.User = ic.User
		}
		if cfg.StopSignal == "" {
			cfg.StopSignal = ic.StopSignal
		}
		if err := mergeHealthcheck(cfg, ic); err != nil {
			return err
		}
		for p := range ic.ExposedPorts { // the image's EXPOSE, for -P
			if port, err := nettypes.ParsePort(p); err == nil {
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = nettypes.PortSet{}
				}
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
		args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
		if len(args) == 0 {
			return errdefs.Invalid("no command specified")
		}
		if cfg.StopSignal != "" {
			if _, err := parseSignal(cfg.StopSignal); err != nil {
				return err
			}
		}
		if err := container.CheckSecurityOpt(hc); err != nil {
			return err
		}
		from, fromBinds, err := d.volumesFrom(hc.VolumesFrom)
		if err != nil {
			return err
		}
		plan, err := container.PlanVolumes(hc, from, cfg.Volumes, ic.Volumes)
		if err != nil {
			return err
		}
		fromBinds = container.KeepInherited(hc, plan, fromBinds)
		if _, err := logConfig("", hc.LogConfig); err != nil {
			return err
		}
		if hc.NetworkMode == "" {
			hc.NetworkMode = "default"
		}
		nets, err := d.planNetworks(hc, nc)
		if err != nil {
			return err
		}
		if hc.Runtime == "" {
			d.mu.RLock()
			hc.Runtime = d.cfg.DefaultRuntime
			d.mu.RUnlock()
		}
		if _, ok := runtimes()[hc.Runtime]; !ok {
			return errdefs.Invalid("unknown or invalid runtime name: %s", hc.Runtime)
		}
		id := container.NewID()
		c, err := d.ctrs.store.New(id, name)
		if err != nil {
			return err
		}
		mps, err := d.attachVolumes(id, plan)
		if err != nil {
			_ = d.ctrs.store.Delete(c)
			return err
		}
		c.Lock()
		c.MountPoints, c.InheritedBinds = mps, fromBinds
		c.Networks = nets
		c.Created = time.Now().UTC()
		c.Image = img.ID.String()
		c.Config, c.HostConfig = cfg, hc
		c.Path, c.Args = args[0], args[1:]
		c.LogPath = filepath.Join(c.Dir(), id+"-json.log")
		c.Driver = d.images.Driver().Name()
		c.State = container.State{Status: container.StatusCreated}
		if hc.AutoRemove {
			c.Unlock()
			d.createFilesLater(context.WithoutCancel(ctx), c, img.ID.String())
		} else {
			err = c.Save()
			c.Unlock()
			trace.Step("create: record saved")
			if err == nil {
				_, _, err = d.images.CreateContainer(ctx, id, img.ID.String())
			}
			trace.Step("create: snapshot made")
			if err != nil {
				_ = d.ctrs.store.Delete(c)
				d.detachVolumes(id, mps, true)
				return err
			}
		}
		d.publishContainer(c, events.ActionCreate, nil)
		out = &containertypes.CreateResponse{ID: id, Warnings: []string{}}
		return nil
	})
	return out, err
}

// ContainerStart is POST /containers/{id}/start. Every start runs a fresh
// shim (the runtime's create happens here, as in docker), so a stopped
// container starts again the same way.
func (d *Daemon) ContainerStart(ctx context.Context, name string) error {
	return d.job(ctx, "container.start", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		unlock := d.opLock(c.ID)
		defer unlock()
		c.Lock()
		c.ManuallyStopped = false
		c.Unlock()
		return d.start(context.WithoutCancel(ctx), c)
	})
}

func (d *Daemon) start(ctx context.Context, c *container.Container) error {
	c.Lock()
	st := c.State.Status
	c.Unlock()
	if st == container.StatusRestarting && d.runningOf(c.ID) == nil {
		st = container.StatusExited // waiting for its policy's restart
	}
	switch st {
	case container.StatusRunning, container.StatusPaused, container.StatusRestarting:
		return nil // docker answers 304
	case container.StatusRemoving, container.StatusDead:
		return errdefs.Conflict("container %s is marked for removal and cannot be started", c.ID)
	}
	if _, err := d.startShim(ctx, c); err != nil {
		code := 128
		msg := err.Error()
		switch {
		case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
			code = 127
			err = errdefs.Mark(errdefs.KindInvalid, err)
		case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
			code = 126
			err = errdefs.Mark(errdefs.KindInvalid, err)
		}
		c.Lock()
		c.SetExited(code, time.Now().UTC(), msg)
		_ = c.Save()
		auto := c.HostConfig.AutoRemove
		c.Unlock()
		d.failPending(c.ID, err)
		if auto {
			go d.autoRemove(c)
		}
		return err
	}
	return nil
}

// startShim mounts the root, writes the bundle, runs the shim (the
// runtime's create), connects waiting attaches, starts the process and
// begins monitoring it.
func (d *Daemon) startShim(ctx context.Context, c *container.Container) (*shim.Client, error) {
	// The next spare shim boots once this start is done, not during the
	// runtime's create, for the two cores.
	if d.spares != nil {
		defer d.spares.Refill()
	}
	if err := d.fsReady(c.ID); err != nil {
		return nil, err
	}
	mounts, err := d.images.ContainerMounts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	c.Lock()
	if c.HostConfig.AutoRemove {
		mounts = withVolatile(mounts)
	}
	c.Unlock()
	rootfs := c.RootfsPath()
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	if maybeMounted(rootfs) {
		_ = snapshot.UnmountAll(rootfs) // a mount left by a daemon that died
	}
	trace.Step("start: mounts known")
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return nil, fmt.Errorf("mount container %s: %w", c.ID, err)
	}
	trace.Step("start: root mounted")
	ok := false
	defer func() {
		if !ok {
			_ = snapshot.UnmountAll(rootfs)
		}
	}()
	c.Lock()
	wd := c.Config.WorkingDir
	c.Unlock()
	if err := makeWorkdir(rootfs, wd); err != nil {
		return nil, err
	}
	vols, err := d.mountVolumes(c, rootfs)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			d.unmountVolumes(c)
		}
	}()
	c.Lock()
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	c.Unlock()
	netw, err := d.prepareNetwork(c, hostname)
	if err != nil {
		return nil, err
	}
	c.Lock()
	spec, err := container.Spec(c, container.SpecOptions{Rootfs: rootfs, InitBinary: initBinary(), Volumes: vols, NetNSPath: netw.nsPath})
	if err == nil && len(netw.env) > 0 {
		spec.Process.Env = withLinkEnv(spec.Process.Env, netw.env)
	}
	tty, stdin := c.Config.Tty, c.Config.OpenStdin
	var h, w uint16
	if cs := c.HostConfig.ConsoleSize; cs[0] > 0 {
		h, w = uint16(cs[0]), uint16(cs[1])
	}
	logCfg, lerr := logConfig(c.LogPath, c.HostConfig.LogConfig)
	rtName := c.HostConfig.Runtime
	c.Unlock()
	if err == nil {
		err = lerr
	}
	if err != nil {
		return nil, err
	}
	trace.Step("start: spec made")
	if err := d.writeEtcFiles(c, netw, spec.Hostname); err != nil {
		return nil, err
	}
	state := d.shimDir(c.ID)
	if err := os.RemoveAll(state); err != nil {
		return nil, err
	}
	bundle := filepath.Join(state, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return nil, err
	}
	var rtCmd []string // nil: the shim's default, this binary's runtime
	if rtName != "" && rtName != DefaultRuntime {
		if rtCmd, err = d.runtimeCmd(rtName); err != nil {
			return nil, err
		}
	}
	d.forgetExecs(c.ID)
	trace.Step("start: bundle written")
	client, err := shim.Start(ctx, shim.Options{ID: c.ID, Bundle: bundle, StateDir: state, Tty: tty, Stdin: stdin,
		Height: h, Width: w, Log: logCfg, Runtime: rtCmd, Spares: d.spares})
	if err != nil {
		return nil, err
	}
	trace.Step("start: shim created the container")
	if err := d.joinNetworks(c, netw, client.InitPid()); err != nil {
		d.abandonShim(client, c.ID)
		return nil, err
	}
	trace.Step("start: network joined")
	d.connectPending(ctx, c.ID, client)
	trace.Step("start: attaches connected")
	st, err := client.StartState(ctx, "")
	if err != nil && !startRaced(err) {
		d.abandonShim(client, c.ID)
		d.leaveNetworks(c)
		return nil, err
	}
	trace.Step("start: started")
	if err != nil {
		st, err = client.State(ctx, "")
	}
	if err != nil {
		d.abandonShim(client, c.ID)
		d.leaveNetworks(c)
		return nil, err
	}
	ok = true
	r := &running{shim: client, done: make(chan struct{})}
	d.ctrs.mu.Lock()
	d.ctrs.running[c.ID] = r
	d.ctrs.mu.Unlock()
	c.Lock()
	c.SetRunning(st.Pid, st.StartedAt.UTC())
	if err := c.SaveLazy(); err != nil {
		d.log.Warn("save container", "id", c.ID, "error", err)
	}
	c.Unlock()
	trace.Step("start: state saved")
	d.publishContainer(c, events.ActionStart, nil)
	go d.monitor(c, r)
	d.startHealth(c, r, false)
	return client, nil
}

// runtimeRoot is berth's own runtime's state root, under the exec root.
func (d *Daemon) runtimeRoot() string { return filepath.Join(d.cfg.ExecRoot, "runtime") }

// runtimeCmd is the OCI runtime command with its state root: berth's own
// under <exec-root>/runtime (the shim's default), others under
// <exec-root>/runtime-<name>.
func (d *Daemon) runtimeCmd(name string) ([]string, error) {
	rt, ok := runtimes()[name]
	if !ok {
		return nil, errdefs.Invalid("unknown or invalid runtime name: %s", name)
	}
	root := d.runtimeRoot()
	if name != DefaultRuntime {
		root += "-" + name
	}
	return append(append([]string{rt.Path}, rt.Args...), "--root", root), nil
}

// startRaced recognises a runtime start that lost a race with a process
// that ran and exited at once: `runtime start` opens the init's pidfd
// after releasing it through the exec fifo, so a quick process may be
// reaped by then (ESRCH). The process did run and the shim has its exit;
// the container is treated as started. (The runtime should open the pidfd
// before the fifo; reported.)
func startRaced(err error) bool {
	return strings.Contains(err.Error(), "open init process: no such process")
}

// initBinary is what --init bind-mounts: berth-shim beside the daemon's
// binary (static, fit for any image), else the daemon's binary.
func initBinary() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	if p := filepath.Join(filepath.Dir(self), "berth-shim"); fileExists(p) {
		return p
	}
	return self
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// monitor waits for the container's exit, ends its shim, unmounts its
// root, records the exit and, for --rm, removes the container.
func (d *Daemon) monitor(c *container.Container, r *running) {
	ctx := context.Background()
	oom := d.watchOOM(c)
	exit, err := r.shim.Wait(ctx, "")
	if err != nil {
		// The shim is gone (killed); its exit.json may still tell.
		exit, err = shim.ReadExit(d.shimDir(c.ID))
	}
	trace.Step("monitor: exit known")
	code, at, msg := 255, time.Now().UTC(), ""
	if err != nil {
		msg = "shim lost: " + err.Error()
	} else {
		code, at = exit.ExitCode, exit.FinishedAt.UTC()
	}
	ooms := oom.stop() // before the shim's shutdown removes the cgroup
	c.Lock()
	fast := c.HostConfig.AutoRemove // never with a restart policy (create refuses it)
	c.Unlock()
	if fast {
		d.exitAndRemove(c, r, code, at, msg, ooms)
		return
	}
	// The shim's process ends while the root is unmounted and the exit
	// recorded; the monitor waits for it before anyone hears of the exit.
	if err := r.shim.ShutdownAsync(ctx); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		d.log.Warn("shim shutdown", "id", c.ID, "error", err)
	}
	trace.Step("monitor: shim shut down")
	if err := snapshot.UnmountAll(c.RootfsPath()); err != nil {
		d.log.Warn("unmount container root", "id", c.ID, "error", err)
	}
	d.unmountVolumes(c)
	d.leaveNetworks(c)
	trace.Step("monitor: unmounted")
	c.Lock()
	c.SetExited(code, at, msg)
	c.State.OOMKilled = ooms > 0 // as dockerd: any kill in the run, the init's or not
	auto := c.HostConfig.AutoRemove
	restart := !d.shuttingDown.Load() && c.ShouldRestart()
	save := c.Save
	if auto && !restart {
		// Removed next: after an OS crash it would be removed anyway
		// (restore finds it running, its shim gone).
		save = c.SaveLazy
	}
	if err := save(); err != nil {
		d.log.Warn("save container", "id", c.ID, "error", err)
	}
	trace.Step("monitor: exit saved")
	if restart {
		c.SetStatus(container.StatusRestarting)
	}
	c.Unlock()
	r.shim.WaitGone()
	trace.Step("monitor: shim gone")
	d.ctrs.mu.Lock()
	if d.ctrs.running[c.ID] == r { // not a start that came meanwhile
		delete(d.ctrs.running, c.ID)
	}
	d.ctrs.mu.Unlock()
	close(r.done)
	d.publishContainer(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	if restart {
		d.restartLater(c)
		return
	}
	if auto {
		d.autoRemove(c)
	}
}

// restartLater starts c again after a backoff that doubles from 100 ms
// (up to a minute) with each restart, as dockerd's; a stop, kill or rm
// meanwhile cancels it.
func (d *Daemon) restartLater(c *container.Container) {
	c.Lock()
	n := min(c.RestartCount, 10)
	c.Unlock()
	delay := min(100*time.Millisecond<<n, time.Minute)
	time.AfterFunc(delay, func() {
		unlock := d.opLock(c.ID)
		defer unlock()
		c.Lock()
		ok := c.State.Status == container.StatusRestarting && !c.Removed() && !c.ManuallyStopped && !d.shuttingDown.Load()
		if ok {
			c.RestartCount++
			_ = c.Save()
		}
		c.Unlock()
		if !ok {
			return
		}
		if err := d.start(context.Background(), c); err != nil {
			d.log.Warn("restart by policy", "id", c.ID, "error", err)
		}
	})
}

func (d *Daemon) autoRemove(c *container.Container) {
	// --rm takes the anonymous volumes too, as docker's does.
	if err := d.ContainerRemove(context.Background(), c.ID, true, true); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		d.log.Warn("auto-remove", "id", c.ID, "error", err)
	}
}

// parseSignal takes docker's forms: "SIGTERM", "TERM", "term", "15".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalid("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, errdefs.Invalid("invalid signal: %s", s)
	}
	return sig, nil
}

// ContainerKill is POST /containers/{id}/kill.
func (d *Daemon) ContainerKill(ctx context.Context, name, signal string) error {
	return d.job(ctx, "container.kill", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if errdefs.Is(err, errdefs.KindNotFound) {
			return errdefs.NotFound("Cannot kill container: %s: %v", name, err)
		}
		if err != nil {
			return err
		}
		sig := syscall.SIGKILL
		if signal != "" {
			if sig, err = parseSignal(signal); err != nil {
				return err
			}
		}
		r := d.runningOf(c.ID)
		if r == nil {
			return errdefs.Conflict("Cannot kill container: %s: Container %s is not running", name, c.ID)
		}
		c.Lock()
		c.ManuallyStopped = true
		_ = c.Save()
		c.Unlock()
		if err := r.shim.Kill(ctx, "", sig, false); err != nil {
			select {
			case <-r.done: // it exited meanwhile, its shim going with it
				return errdefs.Conflict("Cannot kill container: %s: Container %s is not running", name, c.ID)
			case <-time.After(time.Second):
			}
			return fmt.Errorf("%s: %w", "Cannot kill container: "+name, err) // dockerd's capital
		}
		d.publishContainer(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
		return nil
	})
}

// ContainerStop is POST /containers/{id}/stop: the stop signal, then
// SIGKILL after the timeout.
func (d *Daemon) ContainerStop(ctx context.Context, name string, o container.StopOptions) error {
	return d.job(ctx, "container.stop", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		unlock := d.opLock(c.ID)
		defer unlock()
		return d.stop(context.WithoutCancel(ctx), c, o)
	})
}

func (d *Daemon) stop(ctx context.Context, c *container.Container, o container.StopOptions) error {
	c.Lock()
	if !d.shuttingDown.Load() {
		c.ManuallyStopped = true
	}
	if c.State.Status == container.StatusRestarting && d.runningOf(c.ID) == nil {
		c.SetStatus(container.StatusExited) // its pending restart is off
	}
	_ = c.Save()
	c.Unlock()
	r := d.runningOf(c.ID)
	if r == nil {
		return nil // docker answers 304
	}
	c.Lock()
	sigName := c.Config.StopSignal
	timeout := 10
	if c.Config.StopTimeout != nil {
		timeout = *c.Config.StopTimeout
	}
	c.Unlock()
	if o.Signal != "" {
		sigName = o.Signal
	}
	if o.Timeout != nil {
		timeout = *o.Timeout
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		var err error
		if sig, err = parseSignal(sigName); err != nil {
			return err
		}
	}
	if err := r.shim.Kill(ctx, "", sig, false); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		d.log.Debug("stop signal", "id", c.ID, "error", err)
	}
	d.publishContainer(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	d.thawIfPaused(ctx, c)
	var after <-chan time.Time
	if timeout >= 0 {
		after = time.After(time.Duration(timeout) * time.Second)
	}
	select {
	case <-r.done:
	case <-after:
		if err := r.shim.Kill(ctx, "", syscall.SIGKILL, true); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			d.log.Warn("stop: SIGKILL", "id", c.ID, "error", err)
		}
		d.publishContainer(c, events.ActionKill, map[string]string{"signal": "9"})
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s did not exit 30s after SIGKILL", c.ID)
		}
	}
	d.publishContainer(c, events.ActionStop, nil)
	return nil
}

// ContainerRestart is POST /containers/{id}/restart.
func (d *Daemon) ContainerRestart(ctx context.Context, name string, o container.StopOptions) error {
	return d.job(ctx, "container.restart", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		unlock := d.opLock(c.ID)
		defer unlock()
		ctx = context.WithoutCancel(ctx)
		if err := d.stop(ctx, c, o); err != nil {
			return err
		}
		if err := d.start(ctx, c); err != nil {
			return err
		}
		d.publishContainer(c, events.ActionRestart, nil)
		return nil
	})
}

// ContainerRemove is DELETE /containers/{id}.
func (d *Daemon) ContainerRemove(ctx context.Context, name string, force, volumes bool) error {
	return d.remove(ctx, name, force, volumes, false)
}

// remove removes a container; with later, the files of an --rm
// container's exit may go after the answer (autoremove.go).
func (d *Daemon) remove(ctx context.Context, name string, force, volumes, later bool) error {
	return d.job(ctx, "container.remove", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		unlock := d.opLock(c.ID)
		defer unlock()
		ctx = context.WithoutCancel(ctx)
		if r := d.runningOf(c.ID); r != nil {
			if !force {
				return errdefs.Conflict("cannot remove container %q: container is running: stop the container before removing or force remove", strings.TrimPrefix(c.Name, "/"))
			}
			// Not running (conflict) means it is exiting: the monitor
			// records that.
			if err := r.shim.Kill(ctx, "", syscall.SIGKILL, true); err != nil && !errdefs.Is(err, errdefs.KindNotFound) && !errdefs.Is(err, errdefs.KindConflict) {
				// A container that has just exited has a shim the
				// monitor is shutting down, which may hang up on the
				// kill: the monitor's end is what counts.
				select {
				case <-r.done:
				case <-time.After(5 * time.Second):
					return fmt.Errorf("cannot remove container %s: kill: %w", c.ID, err)
				}
			}
			d.thawIfPaused(ctx, c)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				return fmt.Errorf("cannot remove container %s: it did not exit 30s after SIGKILL", c.ID)
			}
		}
		c.Lock()
		if c.State.Status == container.StatusRemoving {
			c.Unlock()
			return errdefs.Conflict("removal of container %s is already in progress", c.ID)
		}
		c.SetStatus(container.StatusRemoving)
		c.Unlock()
		if err := d.removeFilesOrLater(ctx, c, later); err != nil {
			c.Lock()
			c.SetStatus(container.StatusDead)
			_ = c.Save()
			c.Unlock()
			return err
		}
		c.Lock()
		mps := c.MountPoints
		c.Unlock()
		d.detachVolumes(c.ID, mps, volumes)
		d.failPending(c.ID, errdefs.NotFound("container %s was removed", c.ID))
		d.forgetExecs(c.ID)
		d.ctrs.mu.Lock()
		delete(d.ctrs.ops, c.ID)
		d.ctrs.mu.Unlock()
		c.Lock()
		c.SetRemoved()
		c.Unlock()
		d.publishContainer(c, events.ActionDestroy, nil)
		return nil
	})
}

func (d *Daemon) removeFiles(ctx context.Context, c *container.Container) error {
	// A file system that could not be made leaves less to remove.
	_ = d.fsReady(c.ID)
	d.ctrs.mu.Lock()
	delete(d.ctrs.creating, c.ID)
	d.ctrs.mu.Unlock()
	if err := snapshot.UnmountAll(c.RootfsPath()); err != nil {
		return fmt.Errorf("remove container %s: unmount: %w", c.ID, err)
	}
	trace.Step("remove: unmounted")
	if err := d.images.RemoveContainer(ctx, c.ID); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	trace.Step("remove: snapshot removed")
	if err := d.discard(d.cfg.ExecRoot, d.shimDir(c.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	trace.Step("remove: shim dir removed")
	if err := d.discard(d.cfg.DataRoot, c.Dir()); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	err := d.ctrs.store.Delete(c)
	trace.Step("remove: record removed")
	return err
}

// RestoreContainers reattaches to the shims of containers that ran when
// the daemon stopped, records the exits of those that ended meanwhile, and
// starts again (in the background) those whose restart policy says so.
func (d *Daemon) RestoreContainers(ctx context.Context) {
	defer func() {
		for _, c := range d.ctrs.store.List() {
			c.Lock()
			if c.State.Status == container.StatusRestarting && d.runningOf(c.ID) == nil {
				c.State.Status = container.StatusExited
			}
			again := !c.Running() && c.HasBeenStarted && c.ShouldRestart()
			c.Unlock()
			if again {
				go func() {
					unlock := d.opLock(c.ID)
					defer unlock()
					if err := d.start(context.Background(), c); err != nil {
						d.log.Warn("start by restart policy", "id", c.ID, "error", err)
					}
				}()
			}
		}
	}()
	for _, c := range d.ctrs.store.List() {
		c.Lock()
		wasRunning, dead := c.Running(), c.State.Status == container.StatusDead
		c.Unlock()
		if dead {
			// A removal that failed half-way: try again, as dockerd does.
			if err := d.ContainerRemove(ctx, c.ID, true, false); err != nil {
				d.log.Warn("remove dead container", "id", c.ID, "error", err)
			}
			continue
		}
		if !wasRunning {
			// A daemon that died inside a start leaves a shim (and a
			// mount) behind a container recorded as not running.
			if client, err := shim.Connect(d.shimDir(c.ID)); err == nil {
				_ = client.Kill(ctx, "", syscall.SIGKILL, true)
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, _ = client.Wait(wctx, "")
				cancel()
				_ = client.Shutdown(ctx)
				d.log.Warn("ended the shim of a container that was not running", "id", c.ID)
			}
			_ = snapshot.UnmountAll(c.RootfsPath())
			c.Lock()
			auto := c.HostConfig != nil && c.HostConfig.AutoRemove
			c.Unlock()
			if auto {
				// As dockerd: an --rm container that does not run goes,
				// whether it ran or not (a create whose daemon died
				// before its files were made, see createFilesLater).
				d.autoRemove(c)
			}
			continue
		}
		client, err := shim.Connect(d.shimDir(c.ID))
		if err == nil {
			r := &running{shim: client, done: make(chan struct{})}
			d.ctrs.mu.Lock()
			d.ctrs.running[c.ID] = r
			d.ctrs.mu.Unlock()
			d.restoreNetworks(c)
			// One that exited meanwhile is recorded before the API
			// answers, so the first ps already shows it.
			if st, err := client.State(ctx, ""); err == nil && st.Status == shim.StatusStopped {
				d.monitor(c, r)
				continue
			}
			go d.monitor(c, r)
			d.startHealth(c, r, true)
			d.log.Info("container restored", "id", c.ID)
			continue
		}
		code, at, msg := 255, time.Now().UTC(), "the container's shim was gone at daemon start"
		if e, rerr := shim.ReadExit(d.shimDir(c.ID)); rerr == nil {
			code, at, msg = e.ExitCode, e.FinishedAt.UTC(), ""
		}
		_ = snapshot.UnmountAll(c.RootfsPath())
		d.unmountVolumes(c)
		d.leaveNetworks(c)
		c.Lock()
		c.SetExited(code, at, msg)
		if err := c.Save(); err != nil {
			d.log.Warn("save container", "id", c.ID, "error", err)
		}
		auto := c.HostConfig.AutoRemove
		c.Unlock()
		d.log.Info("container exited while the daemon was down", "id", c.ID, "exitCode", code)
		if auto {
			go d.autoRemove(c)
		}
	}
}

var errDetached = errors.New("detached")

// closeContainers runs at daemon shutdown. Running containers go on (live
// restore); when none runs, what the runtime keeps between starts goes:
// the read-only view of the binary and the empty berth cgroup parents.
// It reports whether none runs.
func (d *Daemon) closeContainers() bool {
	if d.ctrs == nil {
		return true
	}
	d.shuttingDown.Store(true)
	d.mu.RLock()
	live := d.cfg.LiveRestoreEnabled()
	d.mu.RUnlock()
	if !live {
		// Without live restore the containers stop with the daemon, as
		// dockerd's do (stop signal, 10 s, SIGKILL; in parallel).
		var wg sync.WaitGroup
		for _, c := range d.ctrs.store.List() {
			if d.runningOf(c.ID) == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				unlock := d.opLock(c.ID)
				defer unlock()
				if err := d.stop(context.Background(), c, container.StopOptions{}); err != nil {
					d.log.Warn("stop at shutdown", "id", c.ID, "error", err)
				}
			}()
		}
		wg.Wait()
	}
	d.ctrs.mu.Lock()
	n := len(d.ctrs.running)
	d.ctrs.mu.Unlock()
	if n > 0 {
		return false
	}
	rt := &berthruntime.Runtime{Root: d.runtimeRoot()}
	if err := rt.ReleaseInitBinary(); err != nil {
		d.log.Warn("release the runtime's binary view", "error", err)
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	for _, dir := range append(dirs, "/sys/fs/cgroup/berth") {
		_ = os.Remove(dir) // only when empty: another daemon's containers stay
	}
	return true
}

// containerCounts are /info's container numbers.
func (d *Daemon) containerCounts() (all, running, paused, stopped int) {
	for _, c := range d.ctrs.store.List() {
		c.Lock()
		switch c.State.Status {
		case container.StatusRunning, container.StatusRestarting:
			running++
		case container.StatusPaused:
			paused++
		default:
			stopped++
		}
		c.Unlock()
		all++
	}
	return
}

// logConfig is the json-file log of a container: docker's log options
// max-size ("10m"; -1 never rotates) and max-file. Only json-file exists.
func logConfig(path string, lc containertypes.LogConfig) (logs.Config, error) {
	cfg := logs.Config{Path: path}
	if lc.Type != "" && lc.Type != "json-file" {
		return cfg, errdefs.NotImplemented("log driver %q is not supported (json-file only)", lc.Type)
	}
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			n, err := parseSize(v)
			if err != nil {
				return cfg, errdefs.Invalid("invalid log option max-size=%s: %v", v, err)
			}
			cfg.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return cfg, errdefs.Invalid("invalid log option max-file=%s", v)
			}
			cfg.MaxFiles = n
		default:
			return cfg, errdefs.Invalid("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if cfg.MaxFiles > 1 && cfg.MaxSize == 0 {
		return cfg, errdefs.Invalid("max-file cannot be set without max-size")
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = -1 // docker's default: no rotation
	}
	return cfg, nil
}

// parseSize reads "100", "10k", "10m", "1g" (docker's RAMInBytes units).
func parseSize(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	t := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(s), "b"), "i"))
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}

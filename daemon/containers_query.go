package daemon

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim/logs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"
)

// ContainerWait is POST /containers/{id}/wait. It resolves the container
// and takes the condition's starting point at once (the caller answers
// with headers then, so that a client's start cannot overtake it) and
// returns the wait itself.
func (d *Daemon) ContainerWait(ctx context.Context, name, condition string) (func(context.Context) (int, error), error) {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", "not-running", "next-exit", "removed":
	default:
		return nil, errdefs.Invalid("invalid condition: %q", condition)
	}
	c.Lock()
	_, exits0, _ := c.Watch()
	c.Unlock()
	return func(ctx context.Context) (int, error) {
		for {
			c.Lock()
			ch, exits, removed := c.Watch()
			st, code := c.State.Status, c.State.ExitCode
			c.Unlock()
			switch condition {
			case "", "not-running":
				if st != container.StatusRunning && st != container.StatusPaused && st != container.StatusRestarting || removed {
					return code, nil
				}
			case "next-exit":
				if exits > exits0 || removed {
					return code, nil
				}
			case "removed":
				if removed {
					return code, nil
				}
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
	}, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ContainerInspect is GET /containers/{id}/json.
func (d *Daemon) ContainerInspect(ctx context.Context, name string) (*containertypes.InspectResponse, error) {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	st := c.State
	out := &containertypes.InspectResponse{
		ID: c.ID, Created: formatTime(c.Created), Path: c.Path, Args: nonNil(c.Args),
		State: &containertypes.State{
			Status: containertypes.ContainerState(st.Status), Running: c.Running(), Paused: st.Status == container.StatusPaused,
			Restarting: st.Status == container.StatusRestarting, Dead: st.Status == container.StatusDead, OOMKilled: st.OOMKilled,
			Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: formatTime(st.StartedAt), FinishedAt: formatTime(st.FinishedAt), Health: cloneHealth(st.Health),
		},
		Image: c.Image, LogPath: c.LogPath, Name: c.Name, RestartCount: c.RestartCount, Driver: c.Driver,
		Platform: "linux", ExecIDs: nil, HostConfig: c.HostConfig, Config: c.Config,
		GraphDriver:     &storage.DriverData{Name: c.Driver, Data: map[string]string{}},
		NetworkSettings: networkSettings(c),
		Mounts:          mountPoints(c),
	}
	if c.HasBeenStarted {
		out.ResolvConfPath, out.HostnamePath, out.HostsPath = c.ResolvConfPath(), c.HostnamePath(), c.HostsPath()
	}
	return out, nil
}

func mountPoints(c *container.Container) []containertypes.MountPoint {
	out := []containertypes.MountPoint{}
	for _, b := range c.HostConfig.Binds {
		if container.IsVolumeBind(b) {
			continue // volumeMountPoints
		}
		m, err := container.ParseBind(b)
		if err != nil {
			continue
		}
		rw, mode := true, ""
		if parts := strings.Split(b, ":"); len(parts) == 3 {
			mode = parts[2]
		}
		prop := "rprivate"
		for _, o := range m.Options {
			switch o {
			case "ro":
				rw = false
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				prop = o
			}
		}
		out = append(out, containertypes.MountPoint{Type: "bind", Source: m.Source, Destination: m.Destination,
			Mode: mode, RW: rw, Propagation: mount.Propagation(prop)})
	}
	for _, m := range c.HostConfig.Mounts {
		if m.Type == mount.TypeVolume {
			continue // volumeMountPoints
		}
		mp := containertypes.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if m.Type == mount.TypeBind {
			mp.Propagation = mount.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
		}
		out = append(out, mp)
	}
	for _, b := range c.InheritedBinds {
		prop := b.Propagation
		if prop == "" {
			prop = "rprivate"
		}
		out = append(out, containertypes.MountPoint{Type: mount.TypeBind, Source: b.Source, Destination: b.Destination,
			RW: b.RW, Propagation: mount.Propagation(prop)})
	}
	return append(out, volumeMountPoints(c)...)
}

// Containers is GET /containers/json.
func (d *Daemon) Containers(ctx context.Context, o container.ListOptions) ([]containertypes.Summary, error) {
	out := []containertypes.Summary{}
	err := d.job(ctx, "container.list", false, func(ctx context.Context) error {
		f := o.Filters
		if err := f.Validate("status", "name", "id", "label", "label!", "ancestor", "exited", "before", "since", "health", "volume", "network"); err != nil {
			return err
		}
		if err := checkHealthFilter(f.Get("health")); err != nil {
			return err
		}
		for _, s := range f.Get("status") {
			switch s {
			case "created", "running", "paused", "restarting", "removing", "exited", "dead":
			default:
				return errdefs.Invalid("invalid filter 'status=%s'", s)
			}
		}
		for _, n := range f.Get("name") {
			if _, err := regexp.Compile(n); err != nil {
				return errdefs.Invalid("invalid filter 'name=%s': %v", n, err)
			}
		}
		var exited []int
		for _, e := range f.Get("exited") {
			n, err := strconv.Atoi(e)
			if err != nil {
				return errdefs.Invalid("invalid filter 'exited=%s'", e)
			}
			exited = append(exited, n)
		}
		boundary := func(key string) (time.Time, error) {
			vs := f.Get(key)
			if len(vs) == 0 {
				return time.Time{}, nil
			}
			c, err := d.ctrs.store.Get(vs[0])
			if err != nil {
				return time.Time{}, err
			}
			c.Lock()
			defer c.Unlock()
			return c.Created, nil
		}
		before, err := boundary("before")
		if err != nil {
			return err
		}
		since, err := boundary("since")
		if err != nil {
			return err
		}
		var ancestors []string
		for _, a := range f.Get("ancestor") {
			img, err := d.images.Get(ctx, a)
			if err != nil {
				continue // docker matches nothing for an unknown image
			}
			ancestors = append(ancestors, img.ID.String())
		}
		all := o.All || f.Has("status") || f.Has("exited")
		if o.Limit > 0 {
			all = true
		}
		for _, c := range d.ctrs.store.List() {
			c.Lock()
			s, ok := d.summaryLocked(c, o, f, all, exited, ancestors, before, since)
			c.Unlock()
			if ok && o.Size {
				s.SizeRw, s.SizeRootFs = d.containerSize(ctx, c.ID, s.ImageID)
			}
			if ok {
				out = append(out, s)
			}
			if o.Limit > 0 && len(out) >= o.Limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func (d *Daemon) summaryLocked(c *container.Container, o container.ListOptions, f filters.Args, all bool, exited []int, ancestors []string, before, since time.Time) (containertypes.Summary, bool) {
	st := c.State
	if !all && !c.Running() {
		return containertypes.Summary{}, false
	}
	if f.Has("status") && !f.Match("status", st.Status) {
		return containertypes.Summary{}, false
	}
	if len(exited) > 0 {
		if st.Status != container.StatusExited {
			return containertypes.Summary{}, false
		}
		hit := false
		for _, e := range exited {
			hit = hit || e == st.ExitCode
		}
		if !hit {
			return containertypes.Summary{}, false
		}
	}
	if f.Has("name") && !matchRegexp(f.Get("name"), c.Name) {
		return containertypes.Summary{}, false
	}
	if f.Has("id") {
		hit := false
		for _, id := range f.Get("id") {
			hit = hit || strings.HasPrefix(c.ID, id)
		}
		if !hit {
			return containertypes.Summary{}, false
		}
	}
	if !f.MatchLabels("label", c.Config.Labels) {
		return containertypes.Summary{}, false
	}
	if f.Has("ancestor") {
		hit := false
		for _, a := range ancestors {
			hit = hit || a == c.Image
		}
		if !hit {
			return containertypes.Summary{}, false
		}
	}
	if f.Has("health") && !f.Match("health", string(healthStatus(c))) {
		return containertypes.Summary{}, false
	}
	if f.Has("volume") && !mountsVolume(c, f.Get("volume")) {
		return containertypes.Summary{}, false
	}
	if f.Has("network") && !onNetwork(c, f.Get("network")) {
		return containertypes.Summary{}, false
	}
	if !before.IsZero() && !c.Created.Before(before) {
		return containertypes.Summary{}, false
	}
	if !since.IsZero() && !c.Created.After(since) {
		return containertypes.Summary{}, false
	}
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	s := containertypes.Summary{
		ID: c.ID, Names: []string{c.Name}, Image: c.Config.Image, ImageID: c.Image, Command: cmd,
		Created: c.Created.Unix(), Ports: []containertypes.PortSummary{}, Labels: c.Config.Labels,
		State: containertypes.ContainerState(st.Status), Status: statusText(c), Mounts: mountPoints(c),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if h := healthStatus(c); h != containertypes.NoHealthcheck {
		s.Health = &containertypes.HealthSummary{Status: h, FailingStreak: c.State.Health.FailingStreak}
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	s.Ports = portSummaries(c.Ports, c.Config.ExposedPorts)
	s.NetworkSettings = &containertypes.NetworkSettingsSummary{Networks: networkSettings(c).Networks}
	return s, true
}

// statusText is docker's human status: "Up 5 seconds", "Exited (0) 2
// minutes ago", "Created".
func statusText(c *container.Container) string {
	st := c.State
	switch st.Status {
	case container.StatusRunning:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + healthSuffix(c)
	case container.StatusPaused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StatusExited:
		if st.FinishedAt.IsZero() {
			return ""
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case container.StatusCreated:
		return "Created"
	case container.StatusRemoving:
		return "Removal In Progress"
	case container.StatusDead:
		return "Dead"
	}
	return st.Status
}

// humanDuration is docker's go-units HumanDuration.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Round(time.Hour).Hours()); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}

// ContainerLogs is GET /containers/{id}/logs: it says whether the
// container has a terminal (raw output) and returns the read, which calls
// fn for each selected entry; following ends when the container exits.
func (d *Daemon) ContainerLogs(ctx context.Context, name string, o container.LogsOptions) (tty bool, read func(fn func(logs.Message) error) error, err error) {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return false, nil, err
	}
	if !o.Stdout && !o.Stderr {
		return false, nil, errdefs.Invalid("you must choose at least one stream")
	}
	c.Lock()
	tty = c.Config.Tty
	lc, _ := logConfig(c.LogPath, c.HostConfig.LogConfig)
	c.Unlock()
	if lc.MaxFiles == 0 {
		lc.MaxFiles = logs.DefaultMaxFiles
	}
	stop := make(chan struct{})
	if r := d.runningOf(c.ID); r != nil {
		stop = r.done
	} else {
		close(stop)
	}
	ro := logs.ReadOptions{Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow, Stop: stop}
	return tty, func(fn func(logs.Message) error) error {
		return logs.Read(ctx, lc, ro, func(m logs.Message) error {
			if (m.Stream == "stdout" && !o.Stdout) || (m.Stream == "stderr" && !o.Stderr) {
				return nil
			}
			return fn(m)
		})
	}, nil
}

// ContainerResize is POST /containers/{id}/resize.
func (d *Daemon) ContainerResize(ctx context.Context, name string, height, width int) error {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return err
	}
	r := d.runningOf(c.ID)
	if r == nil {
		return errdefs.Conflict("Container %s is not running", c.ID)
	}
	return r.shim.Resize(ctx, "", uint16(height), uint16(width))
}

// matchRegexp is docker's name filter: any value as a regular expression
// found in the name (with its "/"). Values were checked by Containers.
func matchRegexp(exprs []string, s string) bool {
	for _, e := range exprs {
		if re, err := regexp.Compile(e); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// containerSize is what the container's writable layer holds and that
// plus its image (docker ps -s).
func (d *Daemon) containerSize(ctx context.Context, id, imageID string) (rw, rootfs int64) {
	if d.fsReady(id) == nil {
		if u, err := d.images.Driver().Usage(ctx, id); err == nil {
			rw = u.Size
		}
	}
	rootfs = rw
	if img, err := d.images.Get(ctx, imageID); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

// containersDiskUsage is /system/df's containers: each with its sizes, and
// the totals (what stopped containers hold is reclaimable).
func (d *Daemon) containersDiskUsage(ctx context.Context) ([]containertypes.Summary, *containertypes.DiskUsage) {
	du := &containertypes.DiskUsage{}
	var list []containertypes.Summary
	for _, c := range d.ctrs.store.List() {
		c.Lock()
		s, _ := d.summaryLocked(c, container.ListOptions{}, filters.Args{}, true, nil, nil, time.Time{}, time.Time{})
		running := c.Running()
		c.Unlock()
		s.SizeRw, s.SizeRootFs = d.containerSize(ctx, s.ID, s.ImageID)
		list = append(list, s)
		du.TotalCount++
		du.TotalSize += s.SizeRw
		if running {
			du.ActiveCount++
		} else {
			du.Reclaimable += s.SizeRw
		}
	}
	du.Items = list
	return list, du
}

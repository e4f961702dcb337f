package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerPause is POST /containers/{id}/pause: the runtime freezes the
// container's cgroup.
func (d *Daemon) ContainerPause(ctx context.Context, name string) error {
	return d.job(ctx, "container.pause", true, func(ctx context.Context) error {
		return d.freeze(ctx, name, true)
	})
}

// ContainerUnpause is POST /containers/{id}/unpause.
func (d *Daemon) ContainerUnpause(ctx context.Context, name string) error {
	return d.job(ctx, "container.unpause", true, func(ctx context.Context) error {
		return d.freeze(ctx, name, false)
	})
}

func (d *Daemon) freeze(ctx context.Context, name string, pause bool) error {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return err
	}
	unlock := d.opLock(c.ID)
	defer unlock()
	c.Lock()
	st, rtName := c.State.Status, c.HostConfig.Runtime
	c.Unlock()
	// In dockerd's order: an unpause of a stopped container is "not paused".
	if !pause && st != container.StatusPaused {
		return errdefs.Conflict("Container %s is not paused", c.ID)
	}
	if d.runningOf(c.ID) == nil {
		return errdefs.Conflict("Container %s is not running", c.ID)
	}
	if pause && st == container.StatusPaused {
		return errdefs.Conflict("Container %s is already paused", c.ID)
	}
	if rtName == "" {
		rtName = DefaultRuntime
	}
	rt, err := d.runtimeCmd(rtName)
	if err != nil {
		return err
	}
	op, status, action := "pause", container.StatusPaused, events.ActionPause
	if !pause {
		op, status, action = "resume", container.StatusRunning, events.ActionUnPause
	}
	cmd := exec.CommandContext(ctx, rt[0], append(rt[1:], op, c.ID)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s container %s: %v: %s", op, c.ID, err, strings.TrimSpace(string(out)))
	}
	c.Lock()
	c.SetStatus(status)
	err = c.Save()
	c.Unlock()
	d.publishContainer(c, action, nil)
	return err
}

// ContainerRename is POST /containers/{id}/rename.
func (d *Daemon) ContainerRename(ctx context.Context, name, newName string) error {
	return d.job(ctx, "container.rename", true, func(ctx context.Context) error {
		if newName == "" {
			return errdefs.Invalid("Neither old nor new names may be empty")
		}
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		old, err := d.ctrs.store.Rename(c, newName)
		if err != nil {
			return err
		}
		d.publishContainer(c, events.ActionRename, map[string]string{"oldName": old})
		return nil
	})
}

// ContainersPrune is POST /containers/prune: every stopped container
// (filters label, label!, until).
func (d *Daemon) ContainersPrune(ctx context.Context, f filters.Args) (*containertypes.PruneReport, error) {
	rep := &containertypes.PruneReport{ContainersDeleted: []string{}}
	err := d.job(ctx, "container.prune", true, func(ctx context.Context) error {
		if err := f.Validate("label", "label!", "until"); err != nil {
			return err
		}
		until, err := untilFilter(f)
		if err != nil {
			return err
		}
		for _, c := range d.ctrs.store.List() {
			c.Lock()
			skip := c.Running() || !f.MatchLabels("label", c.Config.Labels) ||
				(f.Has("label!") && matchAnyLabel(f.Get("label!"), c.Config.Labels)) ||
				(!until.IsZero() && !c.Created.Before(until))
			id := c.ID
			c.Unlock()
			if skip {
				continue
			}
			if err := d.ContainerRemove(ctx, id, false, false); err != nil {
				if errdefs.Is(err, errdefs.KindNotFound) || errdefs.Is(err, errdefs.KindConflict) {
					continue // removed or started meanwhile
				}
				return err
			}
			rep.ContainersDeleted = append(rep.ContainersDeleted, id)
		}
		d.events.Publish(events.ContainerEventType, events.ActionPrune, "", map[string]string{"reclaimed": "0"})
		return nil
	})
	return rep, err
}

// untilFilter is a prune's "until" filter: a duration before now, or a
// time; zero when not given.
func untilFilter(f filters.Args) (time.Time, error) {
	vs := f.Get("until")
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	if dur, err := time.ParseDuration(vs[0]); err == nil {
		return time.Now().Add(-dur), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, vs[0]); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
		return time.Unix(secs, 0), nil
	}
	return time.Time{}, errdefs.Invalid("invalid filter 'until=%s'", vs[0])
}

func matchAnyLabel(exprs []string, labels map[string]string) bool {
	for _, e := range exprs {
		k, v, hasV := strings.Cut(e, "=")
		if got, ok := labels[k]; ok && (!hasV || got == v) {
			return true
		}
	}
	return false
}

// thawIfPaused resumes a paused container after a signal was sent to it,
// so that the signal is acted on (a frozen process does not die).
func (d *Daemon) thawIfPaused(ctx context.Context, c *container.Container) {
	c.Lock()
	paused, rtName := c.State.Status == container.StatusPaused, c.HostConfig.Runtime
	c.Unlock()
	if !paused {
		return
	}
	if rtName == "" {
		rtName = DefaultRuntime
	}
	rt, err := d.runtimeCmd(rtName)
	if err != nil {
		return
	}
	if out, err := exec.CommandContext(ctx, rt[0], append(rt[1:], "resume", c.ID)...).CombinedOutput(); err != nil {
		d.log.Warn("resume a paused container to stop it", "id", c.ID, "error", err, "output", string(out))
	}
}

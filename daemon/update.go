package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerUpdate is POST /containers/{id}/update: new limits and restart
// policy kept in the container's HostConfig and, while it runs, written
// to its cgroups by the runtime's update (the code that set them at
// create). A failed live update leaves the record as it was.
func (d *Daemon) ContainerUpdate(ctx context.Context, name string, u *containertypes.UpdateConfig) (*containertypes.UpdateResponse, error) {
	out := &containertypes.UpdateResponse{}
	err := d.job(ctx, "container.update", true, func(ctx context.Context) error {
		if err := container.ValidateUpdate(u); err != nil {
			return err
		}
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		unlock := d.opLock(c.ID)
		defer unlock()
		c.Lock()
		st := c.State.Status
		if st == container.StatusRemoving || st == container.StatusDead {
			c.Unlock()
			return errCannotUpdate(c.ID, errdefs.Conflict("container is marked for removal and cannot be \"update\""))
		}
		if u.BlkioWeight > 0 && !blkioWeightSupported() {
			out.Warnings = append(out.Warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
			u.BlkioWeight = 0
		}
		before := *c.HostConfig
		if err := c.Update(u); err != nil {
			c.Unlock()
			return errCannotUpdate(c.ID, err)
		}
		res, rtName := c.LiveResources(), c.HostConfig.Runtime
		c.Unlock()
		if (st == container.StatusRunning || st == container.StatusPaused) && d.runningOf(c.ID) != nil {
			if err := d.runtimeUpdate(ctx, rtName, c.ID, res); err != nil {
				c.Lock()
				*c.HostConfig = before
				c.Unlock()
				return errCannotUpdate(c.ID, err)
			}
		}
		c.Lock()
		err = c.Save()
		c.Unlock()
		if err != nil {
			return errCannotUpdate(c.ID, err)
		}
		d.publishContainer(c, events.ActionUpdate, nil)
		return nil
	})
	return out, err
}

// runtimeUpdate runs `<runtime> update -r - <id>` with the limits on stdin
// (runc's form; berth's runtime takes it too).
func (d *Daemon) runtimeUpdate(ctx context.Context, rtName, id string, res any) error {
	if rtName == "" {
		rtName = DefaultRuntime
	}
	rt, err := d.runtimeCmd(rtName)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, rt[0], append(rt[1:], "update", "-r", "-", id)...)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// errCannotUpdate words a failed update as dockerd does, keeping its kind.
func errCannotUpdate(id string, err error) error {
	return fmt.Errorf("%s: %w", "Cannot update container "+id, err)
}

// blkioWeightSupported is dockerd's check: on cgroup v1 the blkio
// controller must have blkio.weight (kernels without CFQ have only BFQ's
// blkio.bfq.weight, which docker does not use).
func blkioWeightSupported() bool {
	if _, err := os.Stat("/sys/fs/cgroup/blkio"); err != nil {
		return true // cgroup v2: io.weight
	}
	_, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight")
	return err == nil
}

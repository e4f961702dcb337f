package daemon

import (
	"context"
	"fmt"
	"os"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/internal/trace"
	"berth.dev/berth/snapshot"
)

// An --rm container is created to be started at once (`run --rm`): its
// root is mounted in the background from the create's answer, while the
// CLI sends its attach, wait and start (about a millisecond of round
// trips), and the start takes the mount instead of making it (an overlay
// mount is 0.5-1 ms of the kernel's checks of the upper and work
// directories). A premount nobody took is dropped (unmounted) before
// anything else mounts or removes the container's file system (cp,
// export, rm) and at the daemon's Close; a daemon that dies leaves it to
// the restore, which unmounts the roots of containers that are not
// running.

// premount is a root being mounted ahead of a start.
type premount struct {
	done chan struct{}
	err  error
}

// premountRoot starts mounting c's root in the background.
func (d *Daemon) premountRoot(c *container.Container) {
	pm := &premount{done: make(chan struct{})}
	d.ctrs.mu.Lock()
	d.ctrs.premounts[c.ID] = pm
	d.ctrs.mu.Unlock()
	go func() {
		defer close(pm.done)
		pm.err = d.mountRoot(context.Background(), c)
		trace.Step("create: root premounted")
	}()
}

// mountRoot mounts c's root file system on its rootfs directory.
func (d *Daemon) mountRoot(ctx context.Context, c *container.Container) error {
	mounts, err := d.images.ContainerMounts(ctx, c.ID)
	if err != nil {
		return err
	}
	c.Lock()
	if c.HostConfig.AutoRemove {
		mounts = withVolatile(mounts)
	}
	c.Unlock()
	rootfs := c.RootfsPath()
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	_ = snapshot.UnmountAll(rootfs) // a mount left by a daemon that died
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount container %s: %w", c.ID, err)
	}
	return nil
}

// takePremount returns whether c's root is mounted by a premount, which
// the caller now owns; it waits for one under way.
func (d *Daemon) takePremount(id string) bool {
	d.ctrs.mu.Lock()
	pm := d.ctrs.premounts[id]
	delete(d.ctrs.premounts, id)
	d.ctrs.mu.Unlock()
	if pm == nil {
		return false
	}
	<-pm.done
	return pm.err == nil
}

// dropPremount unmounts c's root if a premount nobody took mounted it.
func (d *Daemon) dropPremount(c *container.Container) {
	if d.takePremount(c.ID) {
		if err := snapshot.UnmountAll(c.RootfsPath()); err != nil {
			d.log.Warn("unmount a premounted root", "id", c.ID, "error", err)
		}
	}
}

// dropPremounts drops every premount nobody took (the daemon's Close).
func (d *Daemon) dropPremounts() {
	if d.ctrs == nil {
		return
	}
	d.ctrs.mu.Lock()
	var ids []string
	for id := range d.ctrs.premounts {
		ids = append(ids, id)
	}
	d.ctrs.mu.Unlock()
	for _, id := range ids {
		if c, err := d.ctrs.store.Get(id); err == nil {
			d.dropPremount(c)
		}
	}
}

package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/trace"
	"berth.dev/berth/snapshot"
	"github.com/moby/moby/api/types/events"
)

// An --rm container that exits is gone for the API as soon as its exit is
// known: `run --rm` waits for condition=removed, and the shim's shutdown
// (the runtime's delete), the root's unmount and the snapshot's removal
// took 3-4 ms after the exit before that answer. So the exit and the
// removal are recorded in memory at once (the name is free, the ID
// unknown, waiters answered, die and destroy published, volumes
// detached), and the files follow in the background: shim, mount,
// snapshot, then the directories into the trash.
//
// Nothing of it is written before: the record on disk still says
// running until its directory goes, so a daemon that dies in between
// finds it at restore, its shim stopped or gone, and removes it as any
// --rm container that exited while the daemon was down (a new container
// that took its name meanwhile keeps it: container.Open lets the newer
// record have a name two share). Image removals and the daemon's Close
// wait for removals still under way, so an `rmi` right after `run --rm`
// finds the image unused.

// createLazy: an --rm container's record is not synced at create either
// (one fsync off the create job). A daemon that dies only loses what the
// page cache loses in an OS crash; then the record may be missing while
// the metadata database (synced after it) names the container's file
// system, which removeOrphanFilesystems removes at the next start: an --rm
// container would have been removed anyway.

// removeOrphanFilesystems removes the file systems and directories of
// containers that have no record: one lost in an OS crash (its directory
// missing, or its record missing or empty), or not yet written by a
// daemon that died right after an --rm container's create (see
// createFilesLater). A record that is there but does not decode is left
// alone (logged by the store).
func (d *Daemon) removeOrphanFilesystems(s *container.Store) {
	ctx := context.Background()
	ids, err := d.images.ContainerIDs(ctx)
	if err != nil {
		d.log.Warn("list container file systems", "error", err)
		return
	}
	ents, _ := os.ReadDir(filepath.Join(d.cfg.DataRoot, "containers"))
	for _, e := range ents {
		if e.IsDir() && container.IsID(e.Name()) && !slices.Contains(ids, e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	for _, id := range ids {
		if _, err := s.Get(id); err == nil {
			continue
		}
		dir := filepath.Join(d.cfg.DataRoot, "containers", id)
		if st, err := os.Stat(filepath.Join(dir, container.ConfigName)); err == nil && st.Size() > 0 {
			continue // a record that does not decode: not ours to judge
		}
		_ = snapshot.UnmountAll(filepath.Join(dir, "rootfs"))
		if err := d.images.RemoveContainer(ctx, id); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			d.log.Warn("remove the file system of a container without a record", "id", id, "error", err)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			d.log.Warn("remove the directory of a container without a record", "id", id, "error", err)
		}
		d.log.Info("removed the file system of a container without a record", "id", id)
	}
}

// exitCleanup is the background end of an --rm container's exit.
type exitCleanup struct {
	cleaned chan struct{} // closed when the shim is gone and the root unmounted
	done    chan struct{} // closed when the files are removed too
	taken   bool          // a removal has taken it (and closes done)
}

// exitAndRemove records the exit of the --rm container c, which its
// monitor r learnt, and removes c, the files in the background.
func (d *Daemon) exitAndRemove(c *container.Container, r *running, code int, at time.Time, msg string, ooms uint64) {
	ctx := context.Background()
	ec := &exitCleanup{cleaned: make(chan struct{}), done: make(chan struct{})}
	d.ctrs.mu.Lock()
	d.ctrs.cleanups[c.ID] = ec
	d.ctrs.mu.Unlock()
	go func() {
		defer close(ec.cleaned)
		if err := r.shim.ShutdownAsync(ctx); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			d.log.Warn("shim shutdown", "id", c.ID, "error", err)
		}
		if err := snapshot.UnmountAll(c.RootfsPath()); err != nil {
			d.log.Warn("unmount container root", "id", c.ID, "error", err)
		}
		r.shim.WaitGone()
		trace.Step("remove: shim gone, root unmounted")
	}()
	d.unmountVolumes(c)
	d.leaveNetworks(c)
	c.Lock()
	c.SetExited(code, at, msg)
	c.State.OOMKilled = ooms > 0 // as dockerd: any kill in the run, the init's or not
	c.Unlock()
	d.ctrs.mu.Lock()
	if d.ctrs.running[c.ID] == r { // not a start that came meanwhile
		delete(d.ctrs.running, c.ID)
	}
	d.ctrs.mu.Unlock()
	close(r.done)
	d.publishContainer(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	// --rm takes the anonymous volumes too, as docker's does.
	if err := d.remove(ctx, c.ID, true, true, true); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		d.log.Warn("auto-remove", "id", c.ID, "error", err)
	}
	// A removal that did not come to the files (a concurrent rm took the
	// container first, or it failed) leaves the cleanup to end here.
	if d.takeCleanup(c.ID) == ec {
		<-ec.cleaned
		d.endCleanup(c.ID, ec)
	}
}

// takeCleanup returns the background cleanup of id's exit if one is under
// way and not yet taken; the taker ends it (endCleanup).
func (d *Daemon) takeCleanup(id string) *exitCleanup {
	d.ctrs.mu.Lock()
	defer d.ctrs.mu.Unlock()
	ec := d.ctrs.cleanups[id]
	if ec == nil || ec.taken {
		return nil
	}
	ec.taken = true
	return ec
}

func (d *Daemon) endCleanup(id string, ec *exitCleanup) {
	d.ctrs.mu.Lock()
	if d.ctrs.cleanups[id] == ec {
		delete(d.ctrs.cleanups, id)
	}
	d.ctrs.mu.Unlock()
	close(ec.done)
}

// removeFilesOrLater removes c's files. When its exit's cleanup is under
// way it waits for it, or with later (the --rm removal) has the store
// forget c at once and removes the files in the background after it. (A
// user's rm still answers when the files are gone: scripts and tests
// look for the shim and the mounts right after.)
func (d *Daemon) removeFilesOrLater(ctx context.Context, c *container.Container, later bool) error {
	ec := d.takeCleanup(c.ID)
	if ec == nil {
		return d.removeFiles(ctx, c)
	}
	if !later {
		defer d.endCleanup(c.ID, ec)
		<-ec.cleaned
		return d.removeFiles(ctx, c)
	}
	d.ctrs.store.Forget(c)
	go func() {
		defer d.endCleanup(c.ID, ec)
		<-ec.cleaned
		if err := d.removeFiles(context.Background(), c); err != nil {
			// The next daemon start tries again, as for any dead one.
			d.log.Warn("remove container", "id", c.ID, "error", err)
			c.Lock()
			c.SetStatus(container.StatusDead)
			if err := c.Save(); err != nil {
				d.log.Warn("save container", "id", c.ID, "error", fmt.Errorf("after a failed removal: %w", err))
			}
			c.Unlock()
		}
		trace.Step("remove: files removed")
	}()
	return nil
}

package daemon

import (
	"context"
	"fmt"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/internal/trace"
)

// An --rm container's create is answered before its files are made: its
// record (not synced, see createLazy) and its file system (the metadata
// database's commit with its fsyncs, the snapshot's directories) took
// ~1 ms of the create job, and the CLI spends ~0.6 ms on its attach, wait
// and start requests before anything needs them. So they are made on a
// goroutine from the answer on, and what needs the file system waits for
// it (fsReady): the start, cp, export, diff, commit, sizes, the removal;
// image removals and prunes, df and Close wait for every create under way
// (waitFilesystems), so that an rmi still finds the image used.
//
// A daemon killed in between leaves the directory without a record
// (removed at the next start with whatever file system it has:
// removeOrphans), or the record with or without its file system: the next
// start removes every --rm container that is not running, as dockerd's
// restore does.

// pendingFS is the file system of a container being made in the
// background.
type pendingFS struct {
	done chan struct{}
	err  error // set before done closes
}

// createFilesLater writes c's record and makes its file system on image
// in the background.
func (d *Daemon) createFilesLater(ctx context.Context, c *container.Container, image string) {
	p := &pendingFS{done: make(chan struct{})}
	d.ctrs.mu.Lock()
	d.ctrs.creating[c.ID] = p
	d.ctrs.mu.Unlock()
	go func() {
		c.Lock()
		err := c.SaveLazy()
		c.Unlock()
		trace.Step("create: record saved")
		if err == nil {
			_, _, err = d.images.CreateContainer(ctx, c.ID, image)
		}
		trace.Step("create: snapshot made")
		p.err = err
		if err == nil {
			d.ctrs.mu.Lock()
			delete(d.ctrs.creating, c.ID)
			d.ctrs.mu.Unlock()
		} else {
			// Kept for the start to tell; the removal forgets it.
			d.log.Warn("create container files", "id", c.ID, "error", err)
		}
		close(p.done)
	}()
}

// fsReady waits for the file system of container id if its create made
// it in the background, and returns what made that fail.
func (d *Daemon) fsReady(id string) error {
	d.ctrs.mu.Lock()
	p := d.ctrs.creating[id]
	d.ctrs.mu.Unlock()
	if p == nil {
		return nil
	}
	<-p.done
	if p.err != nil {
		return fmt.Errorf("container %s: %w", id, p.err)
	}
	return nil
}

// waitFilesystems waits for the containers' file systems being made or
// removed in the background: an image removal must find the records of
// the ones made and the snapshots of the ones removed gone, and Close
// their mounts.
func (d *Daemon) waitFilesystems() {
	if d.ctrs == nil {
		return
	}
	d.ctrs.mu.Lock()
	var chs []chan struct{}
	for _, p := range d.ctrs.creating {
		chs = append(chs, p.done)
	}
	for _, ec := range d.ctrs.cleanups {
		chs = append(chs, ec.done)
	}
	d.ctrs.mu.Unlock()
	for _, ch := range chs {
		<-ch
	}
}

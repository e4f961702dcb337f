package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"

	"berth.dev/berth/archive"
	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/snapshot"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerCommit is POST /commit: a new image of the container's changes
// on its image (docker commit). It returns the image ID.
func (d *Daemon) ContainerCommit(ctx context.Context, o container.CommitOptions) (string, error) {
	var id string
	err := d.job(ctx, "container.commit", true, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(o.Container)
		if err != nil {
			return err
		}
		ref := o.Repo
		if ref != "" {
			if o.Tag != "" {
				ref += ":" + o.Tag
			}
			named, err := image.ParseRef(ref)
			if err != nil {
				return err
			}
			ref = named.String()
		} else if o.Tag != "" {
			return errdefs.Invalid("tag without a repository")
		}
		c.Lock()
		ccfg := *c.Config
		c.Unlock()
		opts := image.NewImageOptions{Ref: ref, Author: o.Author, Message: o.Comment, Changes: o.Changes,
			Config: commitConfig(o.Config, &ccfg), CreatedBy: strings.Join(ccfg.Cmd, " ")}
		if o.Pause {
			c.Lock()
			running := c.State.Status == container.StatusRunning
			c.Unlock()
			// As dockerd: the container is frozen while its layer is
			// taken (pause and unpause events around the commit).
			if running && d.freeze(ctx, c.ID, true) == nil {
				defer func() {
					if err := d.freeze(context.WithoutCancel(ctx), c.ID, false); err != nil {
						d.log.Warn("unpause after commit", "id", c.ID, "error", err)
					}
				}()
			}
		}
		if err := d.fsReady(c.ID); err != nil {
			return err
		}
		dg, err := d.images.Commit(ctx, c.ID, opts)
		if err != nil {
			return err
		}
		id = dg.String()
		imageRef := ""
		if ref != "" {
			imageRef = image.Familiar(ref)
			d.events.Publish(events.ImageEventType, events.ActionTag, id, map[string]string{"name": imageRef})
		}
		d.publishContainer(c, events.ActionCommit, map[string]string{"comment": o.Comment, "imageID": id, "imageRef": imageRef})
		return nil
	})
	return id, err
}

// ContainerExport is GET /containers/{id}/export: the container's file
// system as a tar.
func (d *Daemon) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	return d.job(ctx, "container.export", false, func(ctx context.Context) error {
		c, err := d.ctrs.store.Get(name)
		if err != nil {
			return err
		}
		if err := d.fsReady(c.ID); err != nil {
			return err
		}
		if d.runningOf(c.ID) == nil {
			// Not volatile itself: an --rm container's last mount (cp
			// before its start) was, and left the kernel's mark.
			if mounts, err := d.images.ContainerMounts(ctx, c.ID); err == nil {
				for _, m := range mounts {
					clearVolatileMark(m)
				}
			}
		}
		if err := d.images.Export(ctx, c.ID, w); err != nil {
			return err
		}
		d.publishContainer(c, events.ActionExport, nil)
		return nil
	})
}

// ContainerChanges is GET /containers/{id}/changes: what the container's
// writable layer adds, changes and deletes (docker diff).
func (d *Daemon) ContainerChanges(ctx context.Context, name string) ([]containertypes.FilesystemChange, error) {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return nil, err
	}
	ch, ok := d.images.Driver().(snapshot.Changer)
	if !ok {
		return nil, errdefs.NotImplemented("the %s driver cannot list changes", d.images.Driver().Name())
	}
	if err := d.fsReady(c.ID); err != nil {
		return nil, err
	}
	changes, err := ch.Changes(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	// The mount points of the /etc files the daemon binds in are not the
	// user's changes (docker keeps them in an init layer below).
	etcFiles := map[string]bool{"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true}
	etcOther := false
	for _, x := range changes {
		if strings.HasPrefix(x.Path, "/etc/") && !etcFiles[x.Path] {
			etcOther = true
		}
	}
	out := []containertypes.FilesystemChange{}
	for _, x := range changes {
		if (x.Kind == archive.ChangeAdd && etcFiles[x.Path]) || (x.Path == "/etc" && x.Kind == archive.ChangeModify && !etcOther) {
			continue
		}
		// archive's kinds are docker's: modify 0, add 1, delete 2.
		out = append(out, containertypes.FilesystemChange{Kind: containertypes.ChangeType(x.Kind), Path: x.Path})
	}
	return out, nil
}

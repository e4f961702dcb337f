package daemon

import (
	"context"
	"io"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
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
		opts := image.NewImageOptions{Ref: ref, Author: o.Author, Message: o.Comment, Changes: o.Changes}
		if cfg := o.Config; cfg != nil && (len(cfg.Cmd) > 0 || len(cfg.Entrypoint) > 0 || len(cfg.Env) > 0 || cfg.WorkingDir != "" || cfg.User != "" || len(cfg.Labels) > 0) {
			// The container's own configuration, with the request's on top.
			c.Lock()
			base := *c.Config
			c.Unlock()
			if len(cfg.Cmd) > 0 {
				base.Cmd = cfg.Cmd
			}
			if len(cfg.Entrypoint) > 0 {
				base.Entrypoint = cfg.Entrypoint
			}
			if len(cfg.Env) > 0 {
				base.Env = cfg.Env
			}
			if cfg.WorkingDir != "" {
				base.WorkingDir = cfg.WorkingDir
			}
			if cfg.User != "" {
				base.User = cfg.User
			}
			if len(cfg.Labels) > 0 {
				base.Labels = cfg.Labels
			}
			ic := &image.ContainerConfig{}
			ic.Env, ic.Cmd, ic.Entrypoint, ic.WorkingDir, ic.User, ic.Labels, ic.StopSignal =
				base.Env, base.Cmd, base.Entrypoint, base.WorkingDir, base.User, base.Labels, base.StopSignal
			opts.Config = ic
		}
		dg, err := d.images.Commit(ctx, c.ID, opts)
		if err != nil {
			return err
		}
		id = dg.String()
		d.publishContainer(c, events.ActionCommit, map[string]string{"comment": o.Comment, "imageID": id})
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
		if err := d.images.Export(ctx, c.ID, w); err != nil {
			return err
		}
		d.publishContainer(c, events.ActionExport, nil)
		return nil
	})
}

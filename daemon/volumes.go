package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// openVolumes opens <data-root>/volumes and counts the containers' uses
// of them from their records: references for every container, mounts for
// those recorded running (they may live on: live restore).
func (d *Daemon) openVolumes() error {
	s, err := volume.Open(filepath.Join(d.cfg.DataRoot, "volumes"))
	if err != nil {
		return err
	}
	d.vols = s
	for _, c := range d.ctrs.store.List() {
		c.Lock()
		mps, running := c.MountPoints, c.Running()
		c.Unlock()
		for _, mp := range mps {
			if err := s.Acquire(mp.Name, c.ID); err != nil {
				d.log.Warn("volume of a container is gone", "container", c.ID, "volume", mp.Name)
				continue
			}
			if running {
				_, _ = s.Mount(mp.Name, c.ID)
			}
		}
	}
	if err := s.UnmountUnused(); err != nil {
		d.log.Warn("volumes left mounted", "error", err)
	}
	return nil
}

func (d *Daemon) publishVolume(name string, action events.Action, extra map[string]string) {
	attrs := map[string]string{"driver": volume.DriverName}
	for k, v := range extra {
		attrs[k] = v
	}
	d.events.Publish(events.VolumeEventType, action, name, attrs)
}

// apiVolume is the API's view of v: empty labels and options are null,
// as dockerd sends them.
func (d *Daemon) apiVolume(v volume.Volume) volumetypes.Volume {
	labels, opts := v.Labels, v.Options
	if len(labels) == 0 {
		labels = nil
	}
	if len(opts) == 0 {
		opts = nil
	}
	return volumetypes.Volume{Name: v.Name, Driver: v.Driver, Mountpoint: d.vols.Path(v.Name), Labels: labels, Options: opts,
		Scope: "local", CreatedAt: v.CreatedAt.Format(time.RFC3339)}
}

// VolumeCreate is POST /volumes/create.
func (d *Daemon) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	var out *volumetypes.Volume
	err := d.job(ctx, "volume.create", true, func(context.Context) error {
		if req.ClusterVolumeSpec != nil {
			return errdefs.NotImplemented("cluster volumes are not supported")
		}
		v, created, err := d.vols.Create(req.Name, req.Driver, req.DriverOpts, req.Labels)
		if err != nil {
			return err
		}
		if created {
			d.publishVolume(v.Name, events.ActionCreate, nil)
		}
		av := d.apiVolume(v)
		out = &av
		return nil
	})
	return out, err
}

// VolumeInspect is GET /volumes/{name}.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	var out *volumetypes.Volume
	err := d.job(ctx, "volume.inspect", false, func(context.Context) error {
		v, err := d.vols.Get(name)
		if err != nil {
			return err
		}
		av := d.apiVolume(v)
		out = &av
		return nil
	})
	return out, err
}

// Volumes is GET /volumes: filters dangling, driver, label, name.
func (d *Daemon) Volumes(ctx context.Context, f filters.Args) ([]volumetypes.Volume, error) {
	out := []volumetypes.Volume{}
	err := d.job(ctx, "volume.list", false, func(context.Context) error {
		if err := f.Validate("dangling", "driver", "label", "name"); err != nil {
			return err
		}
		dangling, hasDangling, err := f.Bool("dangling")
		if err != nil {
			return err
		}
		for _, e := range f.Get("name") {
			if _, err := regexp.Compile(e); err != nil {
				return errdefs.Invalid("invalid filter 'name=%s': %v", e, err)
			}
		}
		for _, v := range d.vols.List() {
			if (hasDangling && dangling != (len(v.Refs) == 0)) || !f.Match("driver", v.Driver) ||
				!f.MatchLabels("label", v.Labels) || (f.Has("name") && !matchRegexp(f.Get("name"), v.Name)) {
				continue
			}
			out = append(out, d.apiVolume(v.Volume))
		}
		return nil
	})
	return out, err
}

// VolumeRemove is DELETE /volumes/{name}; force makes a missing volume no
// error (a volume in use is never removed).
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	return d.job(ctx, "volume.remove", true, func(context.Context) error {
		err := d.vols.Remove(name)
		if force && errdefs.Is(err, errdefs.KindNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d.publishVolume(name, events.ActionDestroy, nil)
		return nil
	})
}

// VolumesPrune is POST /volumes/prune: unused anonymous volumes, or all
// unused ones with all=true (the router sets it below API 1.42, as
// docker's prune was then); filters label, label!.
func (d *Daemon) VolumesPrune(ctx context.Context, f filters.Args) (*volumetypes.PruneReport, error) {
	rep := &volumetypes.PruneReport{}
	err := d.job(ctx, "volume.prune", true, func(ctx context.Context) error {
		if err := f.Validate("label", "label!", "all"); err != nil {
			return err
		}
		all, _, err := f.Bool("all")
		if err != nil {
			return err
		}
		for _, v := range d.vols.List() {
			if len(v.Refs) > 0 || (!all && !v.Anonymous()) || !f.MatchLabels("label", v.Labels) ||
				(f.Has("label!") && matchAnyLabel(f.Get("label!"), v.Labels)) {
				continue
			}
			size, _ := d.vols.Size(v.Name)
			if err := d.vols.Remove(v.Name); err != nil {
				if errdefs.Is(err, errdefs.KindNotFound) || errdefs.Is(err, errdefs.KindConflict) {
					continue // removed or taken meanwhile
				}
				return err
			}
			d.publishVolume(v.Name, events.ActionDestroy, nil)
			rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
			rep.SpaceReclaimed += uint64(size)
		}
		d.events.Publish(events.VolumeEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
		return nil
	})
	return rep, err
}

// volumesDiskUsage is the volumes' part of /system/df.
func (d *Daemon) volumesDiskUsage() ([]volumetypes.Volume, *volumetypes.DiskUsage) {
	var list []volumetypes.Volume
	du := &volumetypes.DiskUsage{}
	for _, v := range d.vols.List() {
		size, err := d.vols.Size(v.Name)
		if err != nil {
			size = -1
		}
		av := d.apiVolume(v.Volume)
		av.UsageData = &volumetypes.UsageData{Size: size, RefCount: int64(len(v.Refs))}
		list = append(list, av)
		du.TotalCount++
		if size > 0 {
			du.TotalSize += size
		}
		if len(v.Refs) > 0 {
			du.ActiveCount++
		} else if size > 0 {
			du.Reclaimable += size
		}
	}
	du.Items = list
	return list, du
}

// attachVolumes creates (or finds) the volumes a new container mounts and
// records its use of them; on error nothing it made is left.
func (d *Daemon) attachVolumes(id string, plan []container.MountPoint) ([]container.MountPoint, error) {
	var done []container.MountPoint
	for _, mp := range plan {
		v, created, err := d.vols.CreateFor(id, mp.Name, volume.DriverName, mp.DriverOpts, mp.Labels)
		if err != nil {
			d.detachVolumes(id, done, true)
			return nil, err
		}
		if created {
			d.publishVolume(v.Name, events.ActionCreate, nil)
		}
		mp.Name, mp.Source = v.Name, d.vols.Path(v.Name)
		mp.DriverOpts, mp.Labels = nil, nil
		done = append(done, mp)
	}
	return done, nil
}

// detachVolumes drops the container's use of its volumes and, with
// removeAnonymous (rm -v, --rm), removes its anonymous ones.
func (d *Daemon) detachVolumes(id string, mps []container.MountPoint, removeAnonymous bool) {
	for _, mp := range mps {
		_, _ = d.vols.Unmount(mp.Name, id)
		d.vols.Release(mp.Name, id)
		if !removeAnonymous || !mp.Anonymous {
			continue
		}
		if err := d.vols.Remove(mp.Name); err == nil {
			d.publishVolume(mp.Name, events.ActionDestroy, nil)
		} else if !errdefs.Is(err, errdefs.KindConflict) && !errdefs.Is(err, errdefs.KindNotFound) {
			d.log.Warn("remove anonymous volume", "container", id, "volume", mp.Name, "error", err)
		}
	}
}

// mountVolumes readies a starting container's volumes (driver options'
// mounts, copy-up from the image mounted at rootfs) and returns their OCI
// mounts.
func (d *Daemon) mountVolumes(c *container.Container, rootfs string) ([]specs.Mount, error) {
	c.Lock()
	mps, id := c.MountPoints, c.ID
	c.Unlock()
	paths := map[string]string{}
	subpaths := map[int]string{} // mount index → the subpath's bind
	sdir := subpathDir(c)
	_ = unbindSubpaths(sdir) // left by a daemon that died
	for i, mp := range mps {
		p, err := d.vols.Mount(mp.Name, id)
		if err == nil && mp.CopyData && mp.Subpath == "" {
			_, err = volume.CopyUp(rootfs, mp.Destination, p)
		}
		if err == nil && mp.Subpath != "" {
			subpaths[i], err = bindSubpath(p, mp.Subpath, sdir, i)
			if err != nil {
				for _, m := range mps[:i+1] {
					_, _ = d.vols.Unmount(m.Name, id)
				}
				_ = unbindSubpaths(sdir)
				return nil, err // dockerd's text, as the docker CLI shows it
			}
		}
		if err != nil {
			for _, m := range mps[:i+1] {
				_, _ = d.vols.Unmount(m.Name, id)
			}
			_ = unbindSubpaths(sdir)
			return nil, fmt.Errorf("container %s: volume %s: %w", id, mp.Name, err)
		}
		paths[mp.Name] = p
		d.publishVolume(mp.Name, events.ActionMount, map[string]string{"container": id, "destination": mp.Destination,
			"read/write": strconv.FormatBool(mp.RW), "propagation": ""})
	}
	out := container.VolumeSpecMounts(mps, paths)
	for i, p := range subpaths {
		out[i].Source = p
	}
	return out, nil
}

// subpathDir holds the binds of a container's volume subpaths.
func subpathDir(c *container.Container) string {
	return filepath.Join(filepath.Dir(c.RootfsPath()), "subpaths")
}

// unmountVolumes ends a stopped container's use of its volumes' mounts.
func (d *Daemon) unmountVolumes(c *container.Container) {
	c.Lock()
	mps, id := c.MountPoints, c.ID
	c.Unlock()
	if err := unbindSubpaths(subpathDir(c)); err != nil {
		d.log.Warn("unmount volume subpaths", "container", id, "error", err)
	}
	for _, mp := range mps {
		had, err := d.vols.Unmount(mp.Name, id)
		if err != nil {
			d.log.Warn("unmount volume", "container", id, "volume", mp.Name, "error", err)
		}
		if had {
			d.publishVolume(mp.Name, events.ActionUnmount, map[string]string{"container": id})
		}
	}
}

// volumeMountPoints are the volumes in a container's inspect and ps
// Mounts. Callers hold the container's lock.
func volumeMountPoints(c *container.Container) []containertypes.MountPoint {
	var out []containertypes.MountPoint
	for _, mp := range c.MountPoints {
		out = append(out, containertypes.MountPoint{Type: mount.TypeVolume, Name: mp.Name, Source: mp.Source,
			Destination: mp.Destination, Driver: volume.DriverName, Mode: mp.Mode, RW: mp.RW})
	}
	return out
}

// volumesFrom are the volumes and host binds of the containers
// --volumes-from names ("name[:ro|rw]"), as dockerd passes them on: each
// read-write only when the source's is and the mode is not ro, shown with
// no Mode; tmpfs mounts are not passed on.
func (d *Daemon) volumesFrom(specs []string) ([]container.MountPoint, []container.InheritedBind, error) {
	var vols []container.MountPoint
	var binds []container.InheritedBind
	for _, spec := range specs {
		name, mode, _ := strings.Cut(spec, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, nil, errdefs.Invalid("invalid mode: %s", mode)
		}
		src, err := d.ctrs.store.Get(name)
		if errdefs.Is(err, errdefs.KindNotFound) {
			// 400, as dockerd: a 404 to create would send the docker
			// CLI pulling the image.
			return nil, nil, errdefs.Invalid("%v", err)
		}
		if err != nil {
			return nil, nil, err
		}
		src.Lock()
		mps := slices.Clone(src.MountPoints)
		hb := container.HostBinds(src.HostConfig, src.InheritedBinds)
		src.Unlock()
		for _, mp := range mps {
			mp.RW = mp.RW && mode != "ro"
			mp.Mode = ""
			mp.CopyData = false // filled (or not) by the container that made it
			vols = append(vols, mp)
		}
		for _, b := range hb {
			b.RW = b.RW && mode != "ro"
			binds = append(binds, b)
		}
	}
	return vols, binds, nil
}

// stoppedVolumeMounts are the volume binds of a container that is not
// running, for docker cp (a volume whose driver options mount it shows
// its data directory as it is while unused). Callers hold the container's
// lock.
func stoppedVolumeMounts(c *container.Container) []specs.Mount {
	paths := map[string]string{}
	for _, mp := range c.MountPoints {
		paths[mp.Name] = mp.Source
	}
	all := container.VolumeSpecMounts(c.MountPoints, paths)
	out := all[:0]
	for i, m := range all {
		if sub := c.MountPoints[i].Subpath; sub != "" {
			// Resolved inside the volume now; one that no longer is
			// (missing, or a symlink out) is not shown.
			base, rel, err := resolveSubpath(m.Source, sub)
			if err != nil {
				continue
			}
			m.Source = filepath.Join(base, rel)
		}
		out = append(out, m)
	}
	return out
}

// mountsVolume is ps's volume filter: a volume's name, a bind's source or
// any mount's destination. Callers hold the container's lock.
func mountsVolume(c *container.Container, values []string) bool {
	for _, m := range mountPoints(c) {
		key := m.Name
		if key == "" {
			key = m.Source
		}
		if slices.Contains(values, key) || slices.Contains(values, m.Destination) {
			return true
		}
	}
	return false
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"berth.dev/berth/archive"
	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// docker cp: the archive endpoints. Paths are resolved inside the
// container's root as if chrooted (package archive): a running
// container's through /proc/<pid>/root, so its binds, volumes and tmpfs
// are seen as the container sees them; a stopped one's by mounting its
// file system and its binds under a private directory for the request.

// ContainerStatPath is HEAD /containers/{id}/archive.
func (d *Daemon) ContainerStatPath(ctx context.Context, name, path string) (*containertypes.PathStat, error) {
	var out *containertypes.PathStat
	err := d.job(ctx, "container.stat-path", false, func(ctx context.Context) error {
		return d.withContainerFS(ctx, name, path, func(c *container.Container, root int, p archive.CopyPath) error {
			st, err := statPath(root, p, name)
			out = st
			return err
		})
	})
	return out, err
}

// ContainerArchivePath is GET /containers/{id}/archive: start is given the
// path's stat once it resolves and returns where the tar goes.
func (d *Daemon) ContainerArchivePath(ctx context.Context, name, path string, start func(*containertypes.PathStat) io.Writer) error {
	return d.job(ctx, "container.archive-path", false, func(ctx context.Context) error {
		return d.withContainerFS(ctx, name, path, func(c *container.Container, root int, p archive.CopyPath) error {
			st, err := statPath(root, p, name)
			if err != nil {
				return err
			}
			parent, err := archive.OpenParent(root, p)
			if err != nil {
				return notFoundInContainer(err, p.Abs, name)
			}
			defer unix.Close(parent)
			if err := archive.WriteCopy(start(st), parent, p.Base, copyName(p)); err != nil {
				return fmt.Errorf("archive %s of container %s: %w", p.Abs, c.ID, err)
			}
			d.publishContainer(c, events.ActionArchivePath, nil)
			return nil
		})
	})
}

// copyName is the tar's first name, as dockerd's: the path's last
// element, "." for a directory's contents ("/dir/."), "/" for the root.
func copyName(p archive.CopyPath) string {
	if strings.HasSuffix(p.Abs, "/.") {
		return "."
	}
	return p.Name()
}

// ContainerExtractToDir is PUT /containers/{id}/archive: the tar in
// content is extracted into the directory path. Entries cannot land
// outside the container's root (archive.Apply refuses "../" and resolves
// symlinks inside it).
func (d *Daemon) ContainerExtractToDir(ctx context.Context, name, dest string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	return d.job(ctx, "container.extract-to-dir", true, func(ctx context.Context) error {
		return d.withContainerFS(ctx, name, dest, func(c *container.Container, root int, p archive.CopyPath) error {
			if p.Base != "" {
				p.Abs, p.Dir, p.Base = p.Abs+"/", p.Abs+"/", "" // the extraction point itself, its symlink followed
			}
			dir, err := archive.OpenParent(root, p)
			if err != nil {
				if errors.Is(err, unix.ENOTDIR) {
					return errdefs.Invalid("extraction point is not a directory")
				}
				return notFoundInContainer(err, strings.TrimSuffix(p.Abs, "/"), name)
			}
			defer unix.Close(dir)
			c.Lock()
			readonly, user := c.HostConfig.ReadonlyRootfs, c.Config.User
			c.Unlock()
			if err := checkWritable(root, dir, readonly); err != nil {
				return err
			}
			// Entries go below the extraction point, resolved from the
			// container's root as docker's chroot does.
			o := archive.ApplyOptions{NoOverwriteDirNonDir: noOverwriteDirNonDir, NoDigests: true,
				Dir: strings.Trim(path.Clean(p.Abs), "/")}
			if copyUIDGID {
				if o.Owner, err = copyOwner(root, user); err != nil {
					return err
				}
			}
			if _, err := archive.Apply(ctx, "/proc/self/fd/"+strconv.Itoa(root), content, o); err != nil {
				if errdefs.KindOf(err) == errdefs.KindUnknown {
					return fmt.Errorf("extract into %s of container %s: %w", p.Abs, c.ID, err)
				}
				return err
			}
			d.publishContainer(c, events.ActionExtractToDir, nil)
			return nil
		})
	})
}

func statPath(root int, p archive.CopyPath, name string) (*containertypes.PathStat, error) {
	st, err := archive.StatIn(root, p)
	if err != nil {
		return nil, notFoundInContainer(err, p.Abs, name)
	}
	return &containertypes.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget}, nil
}

// notFoundInContainer words a missing path as dockerd does.
func notFoundInContainer(err error, path, name string) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return errdefs.NotFound("Could not find the file %s in container %s", path, name)
	}
	return err
}

var errReadonlyRootfs = errdefs.Mark(errdefs.KindForbidden, errors.New("container rootfs is marked read-only"))

// checkWritable refuses a read-only target as dockerd words it: the root
// file system when the container's is read-only, else a read-only mount.
func checkWritable(root, dir int, readonlyRootfs bool) error {
	var rs, ds unix.Statx_t
	if err := unix.Statx(root, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &rs); err != nil {
		return fmt.Errorf("statx container root: %w", err)
	}
	if err := unix.Statx(dir, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &ds); err != nil {
		return fmt.Errorf("statx extraction point: %w", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dir, &sfs); err != nil {
		return fmt.Errorf("statfs extraction point: %w", err)
	}
	onRoot := rs.Mnt_id == ds.Mnt_id
	if onRoot && readonlyRootfs {
		return errReadonlyRootfs
	}
	if sfs.Flags&unix.ST_RDONLY != 0 {
		if onRoot {
			return errReadonlyRootfs
		}
		return errdefs.Mark(errdefs.KindForbidden, errors.New("mounted volume is marked read-only"))
	}
	return nil
}

// copyOwner is the uid and gid of the container's user (docker cp -a);
// nil, the tar's own, when the container names none, as dockerd.
func copyOwner(root int, user string) (*archive.Owner, error) {
	if user == "" {
		return nil, nil
	}
	cr, err := container.ResolveUser("/proc/self/fd/"+strconv.Itoa(root), user, nil)
	if err != nil {
		return nil, err
	}
	return &archive.Owner{UID: int(cr.UID), GID: int(cr.GID)}, nil
}

// withContainerFS opens the root of container name's file system (O_PATH)
// for fn with path parsed.
func (d *Daemon) withContainerFS(ctx context.Context, name, path string, fn func(c *container.Container, root int, p archive.CopyPath) error) error {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return err
	}
	p, err := archive.ParseCopyPath(path)
	if err != nil {
		return err
	}
	// A running container's view: its mount namespace through its init.
	if root, ok := d.liveRoot(c); ok {
		defer unix.Close(root)
		return fn(c, root, p)
	}
	// Stopped: no start may mount the same layers meanwhile.
	unlock := d.opLock(c.ID)
	defer unlock()
	if root, ok := d.liveRoot(c); ok { // started while we waited
		defer unix.Close(root)
		return fn(c, root, p)
	}
	// Under the lock no other copy uses a cp- directory: any there is
	// left by a daemon that died during one.
	if stale, _ := filepath.Glob(filepath.Join(c.Dir(), "cp-*")); len(stale) > 0 {
		for _, s := range stale {
			if err := snapshot.UnmountAll(s); err == nil {
				os.Remove(s)
			}
		}
	}
	dir, err := os.MkdirTemp(c.Dir(), "cp-")
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	defer os.Remove(dir)
	defer func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			d.log.Warn("unmount a stopped container's file system after cp", "id", c.ID, "error", err)
		}
	}()
	if err := d.mountStopped(ctx, c, dir); err != nil {
		return err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return fn(c, root, p)
}

// liveRoot opens /proc/<pid>/root of a running container's init, checking
// after the open that the pid is still the container's.
func (d *Daemon) liveRoot(c *container.Container) (int, bool) {
	c.Lock()
	pid, running := c.State.Pid, c.Running()
	c.Unlock()
	if !running || pid <= 0 || d.runningOf(c.ID) == nil {
		return -1, false
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	c.Lock()
	same := c.State.Pid == pid && c.Running()
	c.Unlock()
	if !same {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

// mountStopped mounts a stopped container's file system at dir and its
// bind mounts (binds, volumes) at their destinations inside it, each
// destination resolved inside dir. The daemon's own files (/etc/hosts,
// the init) stay out, as with docker.
func (d *Daemon) mountStopped(ctx context.Context, c *container.Container, dir string) error {
	if err := d.fsReady(c.ID); err != nil {
		return err
	}
	mounts, err := d.images.ContainerMounts(ctx, c.ID)
	if err != nil {
		return err
	}
	c.Lock()
	if c.HostConfig.AutoRemove {
		mounts = withVolatile(mounts)
	}
	c.Unlock()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("mount container %s: %w", c.ID, err)
	}
	binds := bindMounts(c, dir)
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	for _, m := range binds {
		bind, ro := false, false
		for _, o := range m.Options {
			bind = bind || o == "bind" || o == "rbind"
			ro = ro || o == "ro"
		}
		if (m.Type != "bind" && !bind) || !filepath.IsAbs(m.Source) || strings.HasPrefix(m.Source, c.Dir()+"/") ||
			m.Destination == container.InitPath {
			continue
		}
		var sst unix.Stat_t
		if err := unix.Stat(m.Source, &sst); err != nil {
			return fmt.Errorf("bind source %s of container %s: %w", m.Source, c.ID, err)
		}
		// As the runtime would at start, and docker does for cp.
		dst := strings.TrimPrefix(filepath.Clean(m.Destination), "/")
		fd, err := archive.MountPointIn(root, dst, sst.Mode&unix.S_IFMT != unix.S_IFDIR)
		if err != nil {
			return fmt.Errorf("mount point %s of container %s: %w", m.Destination, c.ID, err)
		}
		err = unix.Mount(m.Source, "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(fd)
		if err == nil && ro {
			// The new mount is on top of what fd named: open it again.
			how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
			if fd, err = unix.Openat2(root, dst, &how); err == nil {
				err = unix.Mount("", "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
				unix.Close(fd)
			}
		}
		if err != nil {
			return fmt.Errorf("mount %s at %s of container %s: %w", m.Source, m.Destination, c.ID, err)
		}
	}
	return nil
}

// bindMounts are the mounts a start would give the container, from its
// spec; when no spec can be made now (a user its /etc/passwd no longer
// has), its binds and --mount binds alone.
func bindMounts(c *container.Container, rootfs string) []specs.Mount {
	c.Lock()
	defer c.Unlock()
	vols := stoppedVolumeMounts(c)
	if spec, err := container.Spec(c, container.SpecOptions{Rootfs: rootfs, InitBinary: "/nonexistent", Volumes: vols}); err == nil {
		return spec.Mounts
	}
	out := vols
	for _, b := range c.HostConfig.Binds {
		if m, err := container.ParseBind(b); err == nil {
			out = append(out, m)
		}
	}
	for _, mm := range c.HostConfig.Mounts {
		if m, err := container.FromMount(mm); err == nil {
			out = append(out, m)
		}
	}
	for _, b := range c.InheritedBinds {
		out = append(out, b.SpecMount())
	}
	return out
}

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mount performs one spec mount inside the root.
func (b *builder) mount(m specs.Mount) error {
	dest := cleanDest(m.Destination)
	o := parseOptions(m.Options)
	var err error
	switch {
	case m.Type == "bind" || o.flags&unix.MS_BIND != 0:
		err = b.mountBind(m, dest, &o)
	case o.flags&unix.MS_REMOUNT != 0:
		err = b.remount(m, dest, &o)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		err = b.mountCgroup(m, dest, &o)
	case m.Type == "sysfs" && b.inUserNS && !b.netNS:
		// sysfs can only be mounted by the owner of the net namespace.
		logf("mount sysfs at %s: no new network namespace in a user namespace, binding /sys instead", dest)
		err = b.bindFallback("/sys", dest, &o)
	default:
		err = b.mountNew(m, dest, &o)
		if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
			logf("mount sysfs at %s: %v; binding /sys instead", dest, err)
			err = b.bindFallback("/sys", dest, &o)
		}
	}
	if err != nil {
		return fmt.Errorf("rootfs: mount %s (type %q, source %q) on %s: %w", m.Destination, m.Type, m.Source, dest, err)
	}
	return nil
}

// bindFallback replaces a new file system by an rbind of a host path.
func (b *builder) bindFallback(src, dest string, o *mountOpts) error {
	bo := *o
	bo.flags |= unix.MS_BIND | unix.MS_REC
	bo.data = nil
	return b.mountBind(specs.Mount{Source: src, Type: "bind"}, dest, &bo)
}

// mountNew mounts a new file system instance (tmpfs, proc, overlay, ...).
func (b *builder) mountNew(m specs.Mount, dest string, o *mountOpts) error {
	d, err := b.createDest(dest, true)
	if err != nil {
		return err
	}
	defer d.Close()
	flags := o.flags
	// The runtime fills /dev and copies up tmpfs contents: mount writable,
	// make read-only afterwards (Finalize for /dev).
	delayRO := flags&unix.MS_RDONLY != 0 && (dest == "/dev" || o.tmpcopyup)
	if delayRO {
		flags &^= unix.MS_RDONLY
	}
	var below *os.File
	if o.tmpcopyup && m.Type == "tmpfs" {
		// A real directory fd on the destination still reads what the
		// tmpfs is about to cover.
		if below, err = pathrs.Reopen(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		defer below.Close()
	}
	if err := unix.Mount(m.Source, fdPath(d), m.Type, flags, o.dataString()); err != nil {
		return err
	}
	top, err := b.verifyMounted(dest, d)
	if err != nil {
		return err
	}
	defer top.Close()
	if below != nil {
		dst, err := pathrs.Reopen(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		err = copyTree(int(below.Fd()), int(dst.Fd()))
		dst.Close()
		if err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		if delayRO {
			if err := setattr(top, unix.MOUNT_ATTR_RDONLY, 0, false); err != nil {
				return err
			}
		}
	}
	return b.afterMount(top, o)
}

// remount changes an existing mount at dest (the "remount" option).
func (b *builder) remount(m specs.Mount, dest string, o *mountOpts) error {
	d, err := b.openInRoot(dest)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Mount(m.Source, fdPath(d), m.Type, o.flags, o.dataString()); err != nil {
		return err
	}
	return b.afterMount(d, o)
}

// afterMount applies propagation and recursive attributes to the mount top.
func (b *builder) afterMount(top *os.File, o *mountOpts) error {
	for _, p := range o.prop {
		if err := unix.Mount("", fdPath(top), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	if o.hasRec() {
		if err := setattr(top, o.recSet, o.recClr, true); err != nil {
			return fmt.Errorf("recursive mount attributes: %w", err)
		}
	}
	return nil
}

func setattr(f *os.File, set, clr uint64, recursive bool) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.MountSetattr(int(f.Fd()), "", flags, &unix.MountAttr{Attr_set: set, Attr_clr: clr})
}

// mountBind binds a host path (trusted, resolved on the host) onto dest.
func (b *builder) mountBind(m specs.Mount, dest string, o *mountOpts) error {
	src := m.Source
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	d, err := b.createDest(dest, fi.IsDir())
	if err != nil {
		return err
	}
	defer d.Close()
	rec := o.flags&unix.MS_REC != 0
	idmapped := o.idmap || o.ridmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|recFlag(rec))
	if errors.Is(err, unix.ENOSYS) && !idmapped {
		return b.bindLegacy(src, dest, d, o)
	}
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	t := os.NewFile(uintptr(tree), src)
	defer t.Close()
	if idmapped {
		if err := idmapTree(t, m, o.ridmap); err != nil {
			return err
		}
	}
	set, clr := o.attrSet, o.attrClr
	if set != 0 || clr != 0 {
		err := setattr(t, set, clr, false)
		if errors.Is(err, unix.EPERM) && b.inUserNS {
			// A flag the user namespace locked cannot be cleared: keep it.
			err = setattr(t, set&^unix.MOUNT_ATTR__ATIME, clr&^(unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR__ATIME|unix.MOUNT_ATTR_RDONLY), false)
		}
		if err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
	}
	if o.hasRec() {
		if err := setattr(t, o.recSet, o.recClr, true); err != nil {
			return fmt.Errorf("recursive mount attributes: %w", err)
		}
	}
	if err := unix.MoveMount(tree, "", int(d.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	top, err := b.verifyMounted(dest, d)
	if err != nil {
		return err
	}
	defer top.Close()
	for _, p := range o.prop {
		if err := unix.Mount("", fdPath(top), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

func recFlag(rec bool) uint {
	if rec {
		return unix.AT_RECURSIVE
	}
	return 0
}

// bindLegacy is mountBind for kernels without the new mount API.
func (b *builder) bindLegacy(src, dest string, d *os.File, o *mountOpts) error {
	if err := unix.Mount(src, fdPath(d), "", o.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	top, err := b.verifyMounted(dest, d)
	if err != nil {
		return err
	}
	defer top.Close()
	if o.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		// A bind remount replaces all per-mount flags: keep the source's,
		// some of which a user namespace locks.
		locked, err := mountFlags(src)
		if err != nil {
			return err
		}
		flags := (locked&^o.clear | o.flags) &^ unix.MS_REC
		if err := unix.Mount("", fdPath(top), "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
			if !b.inUserNS {
				return fmt.Errorf("remount: %w", err)
			}
			if err := unix.Mount("", fdPath(top), "", flags|locked|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remount: %w", err)
			}
		}
	}
	return b.afterMount(top, o)
}

// openInRoot opens an existing path inside the root (O_PATH), following
// symlinks as if the root were "/".
func (b *builder) openInRoot(p string) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(b.rootF, p)
	if err != nil {
		return nil, err
	}
	if err := b.checkInRoot(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// createDest returns an O_PATH handle on dest inside the root, creating it
// (a directory, or an empty file) when missing.
func (b *builder) createDest(dest string, dir bool) (*os.File, error) {
	f, err := b.openInRoot(dest)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	create := func(p string) (*os.File, error) {
		if dir {
			return pathrs.MkdirAllHandle(b.rootF, p, 0o755)
		}
		return b.createFile(p)
	}
	f, err = create(dest)
	if err != nil && (errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) {
		// A dangling symlink on the way (pathrs-lite does not create
		// symlink targets): resolve it lexically inside the root and
		// create the target there, still confined by pathrs-lite.
		if real, jerr := securejoin.SecureJoin(b.root, dest); jerr == nil {
			if rel := strings.TrimPrefix(real, b.root); rel != dest {
				f, err = create(rel)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s in root: %w", dest, err)
	}
	if err := b.checkInRoot(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (b *builder) createFile(dest string) (*os.File, error) {
	parent, err := pathrs.MkdirAllHandle(b.rootF, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	base := filepath.Base(dest)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	fd, err = unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(b.root, dest)), nil
}

// checkInRoot makes sure a handle's path is the root or under it: the last
// word on where a mount onto it lands.
func (b *builder) checkInRoot(f *os.File) error {
	p, err := os.Readlink(fdPath(f))
	if err != nil {
		return err
	}
	if p != b.root && !strings.HasPrefix(p, b.root+"/") {
		return fmt.Errorf("destination resolved to %q, outside the root %q", p, b.root)
	}
	return nil
}

// verifyMounted reopens dest after a mount onto d and checks the mount is
// now on top there, inside the root. It returns the handle on the new top.
func (b *builder) verifyMounted(dest string, d *os.File) (*os.File, error) {
	top, err := b.openInRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("reopen after mount: %w", err)
	}
	below, err1 := mountID(d)
	above, err2 := mountID(top)
	if err := errors.Join(err1, err2); err != nil {
		top.Close()
		return nil, err
	}
	if below == above {
		top.Close()
		return nil, fmt.Errorf("mount did not appear at %s", dest)
	}
	return top, nil
}

func mountID(f *os.File) (uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return 0, err
	}
	return st.Mnt_id, nil
}

// makeParentPrivate makes the mount holding root private if it is shared.
func makeParentPrivate(root string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(root))
	if err != nil {
		return fmt.Errorf("rootfs: read mountinfo: %w", err)
	}
	var parent *mountinfo.Info
	for _, m := range mounts {
		if parent == nil || len(m.Mountpoint) >= len(parent.Mountpoint) {
			parent = m
		}
	}
	if parent == nil {
		return fmt.Errorf("rootfs: no mount holds %s", root)
	}
	if strings.Contains(parent.Optional, "shared:") {
		if err := unix.Mount("", parent.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("rootfs: make %s private: %w", parent.Mountpoint, err)
		}
	}
	return nil
}

// detachOutside lazily unmounts every mount that is neither the root, under
// it, nor one of its ancestors; what cannot be unmounted (locked in a user
// namespace) is covered with an empty read-only tmpfs.
func detachOutside(root string) error {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return fmt.Errorf("rootfs: read mountinfo: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		mp := m.Mountpoint
		if mp == root || strings.HasPrefix(mp, root+"/") || mp == "/" || strings.HasPrefix(root, mp+"/") {
			continue
		}
		err := unix.Unmount(mp, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			continue // EINVAL/ENOENT: gone with a parent already
		}
		if err := unix.Mount("tmpfs", mp, "tmpfs", unix.MS_RDONLY, "size=0"); err != nil {
			return fmt.Errorf("rootfs: cannot detach or hide %s: %w", mp, err)
		}
	}
	return nil
}

// onInitramfs reports whether "/" is the initial rootfs, where pivot_root
// fails with EINVAL.
func onInitramfs() bool {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/"))
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if m.FSType == "rootfs" {
			return true
		}
	}
	var st unix.Statfs_t
	return unix.Statfs("/", &st) == nil && (st.Type == unix.RAMFS_MAGIC) && len(mounts) > 0
}

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

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
	top, err := b.mountNewTop(m, dest, o, false)
	closeFd(top)
	return err
}

// mountNewTop is mountNew; with wantTop it also returns a handle on the new
// mount's root (the caller closes it), else -1.
func (b *builder) mountNewTop(m specs.Mount, dest string, o *mountOpts, wantTop bool) (int, error) {
	d, err := b.createDest(dest, true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(d)
	flags := o.flags
	// The runtime fills /dev and copies up tmpfs contents: mount writable,
	// make read-only afterwards (Finalize for /dev).
	delayRO := flags&unix.MS_RDONLY != 0 && (dest == "/dev" || o.tmpcopyup)
	if delayRO {
		flags &^= unix.MS_RDONLY
	}
	below := -1
	if o.tmpcopyup && m.Type == "tmpfs" {
		// A real directory fd on the destination still reads what the
		// tmpfs is about to cover ("." does not cross into mounts).
		if below, err = unix.Openat(d, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return -1, fmt.Errorf("tmpcopyup: %w", err)
		}
		defer unix.Close(below)
	}
	// The mount lands exactly where d points (on top of what is mounted
	// there): d was resolved inside the root, so no check afterwards.
	if err := unix.Mount(m.Source, procFd(d), m.Type, flags, o.dataString()); err != nil {
		return -1, err
	}
	if !wantTop && below < 0 && len(o.prop) == 0 && !o.hasRec() {
		return -1, nil
	}
	top, err := b.topAfterMount(dest, d)
	if err != nil {
		return -1, err
	}
	if err := b.afterNew(top, below, delayRO, o); err != nil {
		unix.Close(top)
		return -1, err
	}
	if !wantTop {
		unix.Close(top)
		top = -1
	}
	return top, nil
}

// afterNew copies up into a new tmpfs and applies propagation and
// recursive attributes.
func (b *builder) afterNew(top, below int, delayRO bool, o *mountOpts) error {
	if below >= 0 {
		dst, err := unix.Openat(top, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		err = copyTree(below, dst)
		unix.Close(dst)
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
	defer unix.Close(d)
	if err := unix.Mount(m.Source, procFd(d), m.Type, o.flags, o.dataString()); err != nil {
		return err
	}
	return b.afterMount(d, o)
}

// afterMount applies propagation and recursive attributes to the mount top.
func (b *builder) afterMount(top int, o *mountOpts) error {
	for _, p := range o.prop {
		if err := unix.Mount("", procFd(top), "", p, ""); err != nil {
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

func setattr(fd int, set, clr uint64, recursive bool) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.MountSetattr(fd, "", flags, &unix.MountAttr{Attr_set: set, Attr_clr: clr})
}

// mountBind binds a host path (trusted, resolved on the host) onto dest.
func (b *builder) mountBind(m specs.Mount, dest string, o *mountOpts) error {
	return b.mountBindAt(m, dest, -1, o)
}

// mountBindAt is mountBind onto the handle d when d >= 0 (already created
// by the caller), else onto dest resolved and created inside the root.
func (b *builder) mountBindAt(m specs.Mount, dest string, d int, o *mountOpts) error {
	src := m.Source
	rec := o.flags&unix.MS_REC != 0
	idmapped := o.idmap || o.ridmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|recFlag(rec))
	if errors.Is(err, unix.ENOSYS) && !idmapped {
		return b.bindLegacy(src, dest, d, o)
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bind source: %w", &os.PathError{Op: "open_tree", Path: src, Err: err})
		}
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(tree)
	if d < 0 {
		var st unix.Stat_t
		if err := unix.Fstat(tree, &st); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if d, err = b.createDest(dest, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
		defer unix.Close(d)
	}
	if idmapped {
		if err := idmapTree(tree, m, o.ridmap); err != nil {
			return err
		}
	}
	set, clr := o.attrSet, o.attrClr
	if set != 0 || clr != 0 {
		err := setattr(tree, set, clr, false)
		if errors.Is(err, unix.EPERM) && b.inUserNS {
			// A flag the user namespace locked cannot be cleared: keep it.
			err = setattr(tree, set&^unix.MOUNT_ATTR__ATIME, clr&^(unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR__ATIME|unix.MOUNT_ATTR_RDONLY), false)
		}
		if err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
	}
	if o.hasRec() {
		if err := setattr(tree, o.recSet, o.recClr, true); err != nil {
			return fmt.Errorf("recursive mount attributes: %w", err)
		}
	}
	// move_mount attaches the tree exactly where d points, on top of what
	// is mounted there; afterwards tree is the attached mount itself, so
	// propagation goes to it directly, no reopening.
	if err := unix.MoveMount(tree, "", d, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	for _, p := range o.prop {
		if err := unix.Mount("", procFd(tree), "", p, ""); err != nil {
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
func (b *builder) bindLegacy(src, dest string, d int, o *mountOpts) error {
	if d < 0 {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if d, err = b.createDest(dest, fi.IsDir()); err != nil {
			return err
		}
		defer unix.Close(d)
	}
	if err := unix.Mount(src, procFd(d), "", o.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	top, err := b.topAfterMount(dest, d)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	if o.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		// A bind remount replaces all per-mount flags: keep the source's,
		// some of which a user namespace locks.
		locked, err := mountFlags(src)
		if err != nil {
			return err
		}
		flags := (locked&^o.clear | o.flags) &^ unix.MS_REC
		if err := unix.Mount("", procFd(top), "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
			if !b.inUserNS {
				return fmt.Errorf("remount: %w", err)
			}
			if err := unix.Mount("", procFd(top), "", flags|locked|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remount: %w", err)
			}
		}
	}
	return b.afterMount(top, o)
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

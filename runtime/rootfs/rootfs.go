// Package rootfs builds a container's root file system inside its new mount
// namespace: spec mounts, devices, propagation, pivot_root, masked and
// read-only paths. Mount destinations are resolved inside the root so a
// hostile rootfs (symlinks) cannot redirect a mount outside it.
//
// CONTRACT (called by the container init, package runtime, in this order):
//
//	rootfs.Prepare(spec, opts)  // in the new mount ns, before pivot: propagation, root bind, mounts, /dev
//	// ... init runs createContainer hooks here (spec: before pivot_root) ...
//	rootfs.Pivot(spec.Root.Path, opts.NoPivot)  // pivot_root, or MS_MOVE+chroot fallback
//	rootfs.Finalize(spec)       // after pivot: masked paths, readonly paths, readonly root
//
// Every destination is resolved with one openat2(RESOLVE_IN_ROOT) from the
// root's handle, created inside the root if missing (mkdirat/mknodat relative
// to directory handles resolved the same way), held as an O_PATH handle and
// mounted onto through /proc/self/fd/N (or move_mount for detached bind
// trees), so no symlink swap can redirect it: the kernel confines the
// resolution, and the mount lands where the handle points (resolve.go).
// Without openat2, pathrs-lite resolves and the handle's path is checked.
//
// Bind mounts use open_tree + mount_setattr + move_mount (Linux 5.12+, with
// a mount(2) fallback): mount_setattr changes only the attributes the spec
// names, which keeps flags locked by a user namespace (nosuid, nodev, noexec,
// atime) and allows idmapped binds.
//
// Prepare needs /proc mounted at /proc (the host's, before pivot) and the
// process already in its cgroups (the cgroup mount reads /proc/self/cgroup).
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options tunes Prepare beyond what the spec says.
type Options struct {
	// ConsolePath is a host pty slave (e.g. /dev/pts/3) bind-mounted onto
	// <root>/dev/console; empty means no console.
	ConsolePath string
	// NoPivot asks Pivot for MS_MOVE+chroot instead of pivot_root. Prepare
	// does not use it; it is here so callers keep one options value.
	NoPivot bool
	// InUserNS says the process is in a new user namespace: device nodes
	// are bind-mounted from the host instead of created, and sysfs may fall
	// back to a bind of /sys. It is also detected from /proc/self/uid_map.
	InUserNS bool
	// HostMountNS says the container shares the runtime's mount namespace
	// (no mount namespace in the spec): "/" and the root's parent are left
	// as they are, the root bind is made rprivate so the container's mounts
	// do not spread to peers, and the caller enters the root with Chroot.
	// The caller unmounts the root (MNT_DETACH) when the container goes.
	HostMountNS bool
}

// Logf reports fallbacks (initramfs pivot, sysfs bind, device binds). It
// writes to stderr by default; set it to nil to silence.
var Logf = func(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "berth rootfs: "+format+"\n", args...)
}

func logf(format string, args ...any) {
	if Logf != nil {
		Logf(format, args...)
	}
}

// Prepare sets up the container's mounts under spec.Root.Path, in the
// container's fresh mount namespace, before pivot_root.
func Prepare(spec *specs.Spec, opts Options) error {
	if spec == nil || spec.Root == nil || spec.Root.Path == "" {
		return errors.New("rootfs: spec has no root path")
	}
	root := filepath.Clean(spec.Root.Path)
	if !filepath.IsAbs(root) {
		return fmt.Errorf("rootfs: root path %q is not absolute", spec.Root.Path)
	}
	linux := spec.Linux
	if linux == nil {
		linux = &specs.Linux{}
	}
	b := &builder{
		spec:     spec,
		linux:    linux,
		root:     root,
		opts:     opts,
		inUserNS: opts.InUserNS || runningInUserNS(),
		cgroupNS: hasNamespace(linux, specs.CgroupNamespace),
		netNS:    hasNamespace(linux, specs.NetworkNamespace),
	}
	if err := b.prepareRoot(); err != nil {
		return err
	}
	defer b.close()

	devMounted := false
	for _, m := range spec.Mounts {
		if cleanDest(m.Destination) == "/dev" {
			devMounted = true
		}
	}
	if !devMounted {
		// Default /dev: mounted first so /dev/pts, /dev/shm, ... of the spec
		// land on it rather than under it.
		def := specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}
		if err := b.mount(def); err != nil {
			return err
		}
	}
	for _, m := range spec.Mounts {
		if err := b.mount(m); err != nil {
			return err
		}
	}
	if !devIsBind(spec) {
		if err := b.setupDev(); err != nil {
			return err
		}
	}
	return nil
}

// builder carries Prepare's state.
type builder struct {
	spec     *specs.Spec
	linux    *specs.Linux
	root     string
	rootFd   int            // O_PATH handle on the root's self-bind
	rootF    *os.File       // the same, for pathrs-lite (slow path only)
	dirs     map[string]int // mkdirAll's cache
	opts     Options
	inUserNS bool
	cgroupNS bool
	netNS    bool
}

// prepareRoot sets "/" propagation, makes the mount holding the root
// non-shared (pivot_root refuses a shared parent, and a shared parent would
// propagate our root bind to the host) and binds the root onto itself.
func (b *builder) prepareRoot() error {
	if b.opts.HostMountNS {
		return b.bindRootShared()
	}
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := b.linux.RootfsPropagation; p != "" {
		f, ok := propOpts[p]
		if !ok {
			return fmt.Errorf("rootfs: unknown rootfsPropagation %q", p)
		}
		flag = f
	}
	if flag&unix.MS_UNBINDABLE != 0 {
		// An unbindable "/" would refuse the root bind below; Finalize makes
		// the new root unbindable after the pivot.
		flag = unix.MS_SLAVE | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", flag, ""); err != nil {
		return fmt.Errorf("rootfs: set / propagation: %w", err)
	}
	// After a recursive slave or private change nothing in the namespace
	// is shared any more, the root's parent included: no need to look.
	if flag != unix.MS_SLAVE|unix.MS_REC && flag != unix.MS_PRIVATE|unix.MS_REC {
		if err := makeParentPrivate(b.root); err != nil {
			return err
		}
	}
	if err := unix.Mount(b.root, b.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("rootfs: bind root %s onto itself: %w", b.root, err)
	}
	return b.openRoot()
}

func (b *builder) openRoot() error {
	fd, err := unix.Open(b.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open root: %w", &os.PathError{Op: "open", Path: b.root, Err: err})
	}
	b.rootFd = fd
	probeOpenat2(fd)
	return nil
}

func (b *builder) close() {
	b.forgetDirs()
	if b.rootF != nil {
		b.rootF.Close()
	}
	unix.Close(b.rootFd)
}

// Pivot makes root the process's root directory: pivot_root(".", ".") and a
// lazy unmount of the old root, or, with noPivot or when pivot_root fails
// because the old root is the initramfs, MS_MOVE of root onto "/" and
// chroot. The working directory ends at "/".
func (b *builder) bindRootShared() error {
	if err := unix.Mount(b.root, b.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("rootfs: bind root %s onto itself: %w", b.root, err)
	}
	if err := unix.Mount("", b.root, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		unix.Unmount(b.root, unix.MNT_DETACH)
		return fmt.Errorf("rootfs: make root %s private: %w", b.root, err)
	}
	return b.openRoot()
}

// Chroot enters root without pivot_root, for a container that shares the
// runtime's mount namespace (see Options.HostMountNS): pivot_root there would
// move the root of every process in it.
func Chroot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("rootfs: chdir %s: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("rootfs: chroot %s: %w", root, err)
	}
	return unix.Chdir("/")
}

func Pivot(root string, noPivot bool) error {
	root = filepath.Clean(root)
	if noPivot {
		return moveRoot(root)
	}
	err := pivotRoot(root)
	if errors.Is(err, unix.EINVAL) && onInitramfs() {
		logf("pivot_root failed (%v): the root is the initramfs, falling back to MS_MOVE+chroot (use --no-pivot to skip this attempt)", err)
		return moveRoot(root)
	}
	return err
}

func pivotRoot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open new root: %w", err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("rootfs: chdir to new root: %w", err)
	}
	// With new_root == put_old the old root ends up mounted on top of the
	// new one, reachable as "." through the old root's fd: no temporary
	// directory needed in the (possibly read-only) rootfs.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("rootfs: pivot_root %s: %w", root, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("rootfs: chdir to old root: %w", err)
	}
	// Unmounts under a shared old root would propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("rootfs: make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("rootfs: detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("rootfs: chdir /: %w", err)
	}
	return nil
}

// moveRoot is the pivot_root-less way: host mounts outside the root are
// detached first (they would otherwise stay in the namespace, invisible but
// pinned), then the root is moved over "/" and chrooted into.
func moveRoot(root string) error {
	if err := detachOutside(root); err != nil {
		return err
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("rootfs: chdir %s: %w", root, err)
	}
	if err := unix.Mount(root, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("rootfs: move %s to /: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("rootfs: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("rootfs: chdir /: %w", err)
	}
	return nil
}

// Finalize runs after Pivot, in the container's root: it applies the root
// propagation, read-only and masked paths, a read-only /dev when the spec's
// /dev mount says "ro", and a read-only root.
func Finalize(spec *specs.Spec) error {
	if spec == nil {
		return errors.New("rootfs: nil spec")
	}
	linux := spec.Linux
	if linux == nil {
		linux = &specs.Linux{}
	}
	// The root bind was made from a non-shared parent; now that it is "/",
	// give it the requested propagation (private is already the case).
	if p := linux.RootfsPropagation; p != "" {
		if f := propOpts[p]; f&unix.MS_PRIVATE == 0 && f != 0 {
			if err := unix.Mount("", "/", "", f, ""); err != nil {
				return fmt.Errorf("rootfs: set / propagation %s: %w", p, err)
			}
		}
	}
	for _, p := range linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, m := range spec.Mounts {
		if cleanDest(m.Destination) == "/dev" && m.Type != "bind" && parseOptions(m.Options).flags&unix.MS_RDONLY != 0 {
			if err := setReadonly("/dev", false); err != nil {
				return fmt.Errorf("rootfs: read-only /dev: %w", err)
			}
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := setReadonly("/", false); err != nil {
			return fmt.Errorf("rootfs: read-only root: %w", err)
		}
	}
	return nil
}

// readonlyPath binds p onto itself and makes the bind recursively read-only.
func readonlyPath(p string) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("rootfs: readonly path %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount(procFd(fd), procFd(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("rootfs: readonly path %s: bind: %w", p, err)
	}
	if err := setReadonly(p, true); err != nil {
		return fmt.Errorf("rootfs: readonly path %s: %w", p, err)
	}
	return nil
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over a
// directory.
func maskPath(p string) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("rootfs: masked path %s: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("rootfs: masked path %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", procFd(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=755")
	} else {
		err = unix.Mount("/dev/null", procFd(fd), "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("rootfs: mask %s: %w", p, err)
	}
	return nil
}

// setReadonly makes the mount at p read-only, changing nothing else, so
// flags a user namespace locked stay as they are.
func setReadonly(p string, recursive bool) error {
	flags := uint(0)
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(unix.AT_FDCWD, p, flags|unix.AT_NO_AUTOMOUNT, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if !errors.Is(err, unix.ENOSYS) {
		return err
	}
	// Before Linux 5.12: a bind remount replaces all per-mount flags, so
	// carry the current ones over (non-recursive).
	locked, err := mountFlags(p)
	if err != nil {
		return err
	}
	return unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|locked, "")
}

// mountFlags returns the per-mount flags of the mount holding p as MS_*.
func mountFlags(p string) (uintptr, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0, err
	}
	var f uintptr
	for _, m := range [][2]uintptr{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME}, {stNoSymfollow, unix.MS_NOSYMFOLLOW},
	} {
		if uintptr(st.Flags)&m[0] != 0 {
			f |= m[1]
		}
	}
	return f, nil
}

// stNoSymfollow is ST_NOSYMFOLLOW (Linux 5.10), missing from x/sys.
const stNoSymfollow = 0x2000

func cleanDest(d string) string { return filepath.Clean("/" + d) }

func hasNamespace(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	for _, ns := range l.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// devIsBind: when /dev comes from the host the runtime leaves it alone.
func devIsBind(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if cleanDest(m.Destination) == "/dev" && (m.Type == "bind" || parseOptions(m.Options).flags&unix.MS_BIND != 0) {
			return true
		}
	}
	return false
}

// runningInUserNS: the initial user namespace maps the full 32-bit range.
func runningInUserNS() bool {
	b, err := readSmall("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Path resolution inside the root.
//
// Fast path (Linux 5.6+): every destination is resolved with a single
// openat2(rootfd, dest, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so the kernel
// itself keeps the walk inside the root ("..", absolute and relative
// symlinks are all scoped to rootfd, magic links are refused, and a rename
// racing with ".." makes the call fail with EAGAIN instead of escaping).
// Missing components are created with mkdirat/mknodat relative to a
// directory fd obtained the same way, and reopened with a single-component
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a symlink swapped in
// between is refused. A handle obtained like this is inside the root by
// construction: no /proc/self/fd readlink is needed to check it, and a mount
// onto /proc/self/fd/N (or a move_mount onto the fd) lands exactly where the
// handle points, on top of whatever is mounted there.
//
// Anything the fast path does not handle on its own (a dangling symlink on
// the way, whose target must be created inside the root; a kernel without
// openat2) goes to the slow path: pathrs-lite and filepath-securejoin,
// followed by a readlink check of the handle's path.

// Handles are raw O_PATH file descriptors: os.File would add an fcntl per
// open and a finalizer, for nothing we use.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// noOpenat2 is set once openat2 returned ENOSYS.
var noOpenat2 atomic.Bool

// probeOpenat2 turns the fast path off unless openat2 works on rootfd:
// besides kernels before 5.6, seccomp profiles may refuse it (some with
// EPERM rather than ENOSYS).
func probeOpenat2(rootfd int) {
	if noOpenat2.Load() {
		return
	}
	fd, err := openat2(rootfd, "/", unix.O_DIRECTORY, inRoot)
	if err != nil {
		noOpenat2.Store(true)
		return
	}
	unix.Close(fd)
}

// openat2 opens p relative to dirfd as O_PATH|O_CLOEXEC plus flags,
// retrying the EAGAIN the kernel returns when a rename raced with "..".
func openat2(dirfd int, p string, flags, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, &how)
		if (err == unix.EAGAIN && i < 32) || err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return fd, nil
	}
}

func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// rootFile is the root handle as an *os.File for pathrs-lite (slow path).
func (b *builder) rootFile() *os.File {
	if b.rootF == nil {
		fd, err := unix.Dup(b.rootFd)
		if err != nil {
			return nil
		}
		unix.CloseOnExec(fd)
		b.rootF = os.NewFile(uintptr(fd), b.root)
	}
	return b.rootF
}

// fromFile turns a pathrs-lite handle into a raw fd, closing f.
func fromFile(f *os.File) (int, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// openInRoot opens an existing path inside the root (O_PATH), following
// symlinks as if the root were "/".
func (b *builder) openInRoot(p string) (int, error) {
	if !noOpenat2.Load() {
		fd, err := openat2(b.rootFd, p, 0, inRoot)
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	rf := b.rootFile()
	if rf == nil {
		return -1, errors.New("no root handle")
	}
	f, err := pathrs.OpenatInRoot(rf, p)
	if err != nil {
		return -1, err
	}
	return b.checkedFd(f)
}

// createDest returns an O_PATH handle on dest inside the root, creating it
// (a directory, or an empty file) when missing.
func (b *builder) createDest(dest string, dir bool) (int, error) {
	fd, err := b.openInRoot(dest)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return fd, err
	}
	if !noOpenat2.Load() {
		fd, err = b.createFast(dest, dir)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, errSlowPath) {
			return -1, fmt.Errorf("create %s in root: %w", dest, err)
		}
	}
	return b.createSlow(dest, dir)
}

// errSlowPath: the fast path met something only the slow path handles.
var errSlowPath = errors.New("needs the slow path")

// createFast creates the missing tail of p below its deepest existing
// ancestor, one component at a time relative to the ancestor's fd.
func (b *builder) createFast(p string, dir bool) (int, error) {
	parent, base := path.Split(p)
	parent = path.Clean(parent)
	if base == "" || base == "." || base == ".." {
		return -1, errSlowPath
	}
	pfd, err := openat2(b.rootFd, parent, unix.O_DIRECTORY, inRoot)
	if errors.Is(err, unix.ENOENT) && parent != "/" {
		pfd, err = b.createFast(parent, true)
	}
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	return createAt(pfd, base, dir)
}

// createAt creates name (a directory or an empty file) in dirfd and opens
// it without following symlinks. An existing directory is reused; anything
// else in the way (a symlink, a file where a directory is wanted) is left to
// the slow path.
func createAt(dirfd int, name string, dir bool) (int, error) {
	var err error
	if dir {
		err = unix.Mkdirat(dirfd, name, 0o755)
	} else {
		err = unix.Mknodat(dirfd, name, unix.S_IFREG|0o644, 0)
	}
	if err != nil && !(dir && err == unix.EEXIST) {
		if err == unix.EEXIST {
			return -1, errSlowPath
		}
		return -1, err
	}
	flags := uint64(unix.O_NOFOLLOW)
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := openat2(dirfd, name, flags, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOENT) {
		return -1, errSlowPath
	}
	if err == nil && !dir {
		// O_PATH|O_NOFOLLOW returns a symlink itself rather than failing.
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(fd)
			return -1, errSlowPath
		}
	}
	return fd, err
}

// createSlow is createDest through pathrs-lite, for dangling symlinks on
// the way (whose targets are created inside the root) and kernels without
// openat2.
func (b *builder) createSlow(dest string, dir bool) (int, error) {
	rf := b.rootFile()
	if rf == nil {
		return -1, errors.New("no root handle")
	}
	create := func(p string) (*os.File, error) {
		if dir {
			return pathrs.MkdirAllHandle(rf, p, 0o755)
		}
		return b.createFileSlow(p)
	}
	f, err := create(dest)
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
		return -1, fmt.Errorf("create %s in root: %w", dest, err)
	}
	return b.checkedFd(f)
}

func (b *builder) createFileSlow(dest string) (*os.File, error) {
	parent, err := pathrs.MkdirAllHandle(b.rootFile(), path.Dir(dest), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	base := path.Base(dest)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	fd, err = unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(b.root, dest)), nil
}

// mkdirAll returns a directory handle on dir inside the root, creating
// what is missing; handles are cached for the builder's lifetime (device
// nodes and symlinks mostly share /dev).
func (b *builder) mkdirAll(dir string) (int, error) {
	if fd, ok := b.dirs[dir]; ok {
		return fd, nil
	}
	fd, err := b.createDest(dir, true)
	if err != nil {
		return -1, err
	}
	if b.dirs == nil {
		b.dirs = map[string]int{}
	}
	b.dirs[dir] = fd
	return fd, nil
}

// forgetDirs closes the mkdirAll cache; a mount may have covered any of
// them.
func (b *builder) forgetDirs() {
	for _, fd := range b.dirs {
		unix.Close(fd)
	}
	b.dirs = nil
}

// checkInRoot makes sure a handle's path is the root or under it, for
// handles the slow path produced.
func (b *builder) checkInRoot(fd int) error {
	p, err := os.Readlink(procFd(fd))
	if err != nil {
		return err
	}
	if p != b.root && !strings.HasPrefix(p, b.root+"/") {
		return fmt.Errorf("destination resolved to %q, outside the root %q", p, b.root)
	}
	return nil
}

// topAfterMount reopens dest after a mount onto d and checks the mount is
// now on top there. It returns the handle on the new top.
func (b *builder) topAfterMount(dest string, d int) (int, error) {
	top, err := b.openInRoot(dest)
	if err != nil {
		return -1, fmt.Errorf("reopen after mount: %w", err)
	}
	below, err1 := mountID(d)
	above, err2 := mountID(top)
	if err := errors.Join(err1, err2); err != nil {
		unix.Close(top)
		return -1, err
	}
	if below == above {
		unix.Close(top)
		return -1, fmt.Errorf("mount did not appear at %s", dest)
	}
	return top, nil
}

func mountID(fd int) (uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return 0, err
	}
	return st.Mnt_id, nil
}

// checkedFd takes f's descriptor and checks that it lies inside the root.
func (b *builder) checkedFd(f *os.File) (int, error) {
	fd, err := fromFile(f)
	if err != nil {
		return -1, err
	}
	if err := b.checkInRoot(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

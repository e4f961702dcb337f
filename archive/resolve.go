package archive

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// Limits of Linux paths: a name longer than these could never be created,
// and saying so by name beats ENAMETOOLONG from deep inside an *at call.
const (
	pathMax = 4096
	nameMax = 255
)

// shortName quotes name for an error message, cut to a readable length.
func shortName(name string) string {
	if len(name) > 200 {
		return strconv.Quote(name[:200]) + "..."
	}
	return strconv.Quote(name)
}

// cleanName turns a tar entry name (or a hardlink target) into a path
// relative to the root: a leading "/" is dropped, as docker does, and a name
// that climbs above the root with ".." is refused. "" means the root itself.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errdefs.Invalid("name holds a NUL byte")
	}
	if len(name) >= pathMax {
		return "", errdefs.Invalid("name is %d bytes, longer than PATH_MAX", len(name))
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.Invalid("name points outside the root")
	}
	if p == "." {
		return "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > nameMax {
			return "", errdefs.Invalid("name has a component of %d bytes, longer than NAME_MAX", len(c))
		}
	}
	return p, nil
}

// openIn opens p (relative, clean) below the directory fd root with every
// symlink on the way resolved as if root were "/": nothing can lead out of
// it, whatever the tree holds. Magic links (/proc/self/...) are refused.
func openIn(root int, p string, flags int) (int, error) {
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(root, p, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			// The kernel gives up when a rename raced the lookup.
			continue
		}
		return fd, err
	}
}

// removeAt removes name in the directory dirfd and, when it is a directory,
// everything below it, without following any symlink.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	err = removeChildren(fd, nil)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// removeChildren removes every entry of the directory fd for which keep
// (nil: none) says false. keep may descend itself; see Apply's opaque dirs.
func removeChildren(fd int, keep func(name string, isDir bool) (bool, error)) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep != nil {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			k, err := keep(n, st.Mode&unix.S_IFMT == unix.S_IFDIR)
			if err != nil {
				return err
			}
			if k {
				continue
			}
		}
		if err := removeAt(fd, n); err != nil {
			return fmt.Errorf("remove %s: %w", n, err)
		}
	}
	return nil
}

// readDirNames lists the directory fd (without "." and ".."), reading it
// through a duplicate so fd's own offset is left alone.
func readDirNames(fd int) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// isErrno reports whether err is one of the errnos.
func isErrno(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

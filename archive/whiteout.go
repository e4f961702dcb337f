package archive

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// whiteout applies ".wh.<name>" or ".wh..wh..opq" found in dir.
func (a *applier) whiteout(dir, base string) error {
	if base == whiteoutOpaque {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk and such): not content
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return errdefs.Invalid("whiteout of %q", victim)
	}
	name := path.Join(dir, victim)
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.parents.get(dir, true)
		if err != nil {
			return err
		}
		for attempt := 0; ; attempt++ {
			err := unix.Mknodat(pfd, victim, unix.S_IFCHR, 0)
			if err == nil {
				a.whiteoutMade(name)
				return nil
			}
			if err != unix.EEXIST || attempt > 0 {
				return fmt.Errorf("overlay whiteout: %w", err)
			}
			a.parents.dropExcept(pfd)
			a.forgetDirs(name)
			if err := removeAt(pfd, victim); err != nil {
				return fmt.Errorf("overlay whiteout: %w", err)
			}
		}
	}
	pfd, err := a.parents.get(dir, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // nothing to delete
		}
		return err
	}
	a.parents.dropExcept(pfd)
	a.forgetDirs(name)
	if err := removeAt(pfd, victim); err != nil {
		return fmt.Errorf("whiteout %s: %w", name, err)
	}
	return nil
}

// opaque hides what lower layers put in dir: overlay mode marks the
// directory; delete mode removes everything below it that this layer did
// not write (the marker may come before or after the layer's own entries).
//
// An opaque root leaves only this layer's files in delete mode. overlayfs
// ignores the xattr on its upper root, so overlay mode marks it (as docker
// does) and reports it in Result.OpaqueRoot: the driver must then mount the
// layer without the ones below.
func (a *applier) opaque(dir string) error {
	if dir == "" {
		a.opaqueRoot = true
	}
	var fd int
	if dir == "" {
		var err error
		if fd, err = unix.Openat(a.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
	} else {
		pdir, base := path.Split(dir)
		pfd, err := a.parents.get(strings.TrimSuffix(pdir, "/"), true)
		if err != nil {
			return err
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			if err = unix.Mkdirat(pfd, base, 0o755); err == nil {
				fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			if isErrno(err, unix.ELOOP, unix.ENOTDIR) {
				return errdefs.Invalid("opaque marker in %q, which is not a directory", dir)
			}
			return fmt.Errorf("open opaque directory: %w", err)
		}
	}
	defer unix.Close(fd)
	if a.opts.Whiteouts == WhiteoutOverlay {
		if err := unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s: %w", overlayOpaque, err)
		}
		return nil
	}
	a.parents.drop()
	return a.prune(fd, dir)
}

// prune removes from the directory fd (the path dir) every entry this
// layer did not write, descending into the directories it did write.
func (a *applier) prune(fd int, dir string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if _, ok := a.written[p]; !ok {
			if err := removeAt(fd, n); err != nil {
				return fmt.Errorf("opaque %s: remove %s: %w", dir, n, err)
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if isErrno(err, unix.ENOTDIR, unix.ELOOP) {
			continue
		}
		if err != nil {
			return err
		}
		err = a.prune(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

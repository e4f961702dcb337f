package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"berth.dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// A volume mounted with a subpath (--mount volume-subpath=..., API 1.45)
// binds a path inside the volume. The container (or another one using the
// volume) may have put symlinks there, so the path is resolved as dockerd
// resolves it (symlinks followed, the result must stay inside the
// volume), opened without following any symlink, and what was opened is
// bound by its descriptor onto a mount point of the container's own: the
// runtime binds that, so a swap after the check cannot redirect the mount.

// errSubpathNotAccessible is dockerd's text for a subpath that is missing
// or was replaced by a symlink on the way.
func errSubpathNotAccessible(path string, cause error) error {
	return errdefs.NotFound("cannot access path %s: %v", path, cause)
}

func errSubpathEscapes(base, sub string) error {
	return errdefs.Invalid("path concatenation escapes the base directory, base: %s, subpath: %s", base, sub)
}

// resolveSubpath returns the volume's directory with its symlinks resolved
// and sub resolved within it, as a local path.
func resolveSubpath(base, sub string) (string, string, error) {
	rbase, err := filepath.EvalSymlinks(base)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", errSubpathNotAccessible(base, err)
		}
		return "", "", fmt.Errorf("error while resolving symlinks in base directory %q: %w", base, err)
	}
	joined := filepath.Join(rbase, sub)
	rjoined, err := filepath.EvalSymlinks(joined)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", errSubpathNotAccessible(joined, err)
		}
		// Such as a path swapped between a symlink and a directory while
		// it was read: the request's path, not the daemon, is at fault.
		return "", "", errdefs.Invalid("error while resolving symlinks in combined path %q: %v", joined, err)
	}
	rel, err := filepath.Rel(rbase, rjoined)
	if err != nil || !filepath.IsLocal(rel) {
		return "", "", errSubpathEscapes(rbase, sub)
	}
	return rbase, rel, nil
}

// bindSubpath binds sub of the volume at base onto dir/<n> (a directory or
// a file, as the target is) and returns that mount point.
func bindSubpath(base, sub, dir string, n int) (string, error) {
	rbase, rel, err := resolveSubpath(base, sub)
	if err != nil {
		return "", err
	}
	bfd, err := unix.Open(rbase, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", errSubpathNotAccessible(rbase, err)
	}
	defer unix.Close(bfd)
	fd, err := unix.Openat2(bfd, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	switch {
	case errors.Is(err, unix.EXDEV):
		return "", errSubpathEscapes(rbase, rel)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ELOOP):
		return "", errSubpathNotAccessible(filepath.Join(rbase, rel), err)
	case err != nil:
		return "", &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	target := filepath.Join(dir, strconv.Itoa(n))
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(target, 0o700)
	} else {
		err = os.WriteFile(target, nil, 0o600)
	}
	if err != nil {
		return "", err
	}
	src := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return "", fmt.Errorf("failed to mount resolved path: %w", err)
	}
	return target, nil
}

// unbindSubpaths undoes bindSubpath for every mount point in dir.
func unbindSubpaths(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		_ = os.Remove(dir)
	}
	return errors.Join(errs...)
}

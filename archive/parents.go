package archive

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// parentCacheSize is how many directory descriptors Apply keeps open: tars
// list a directory's entries together, so a few cover nearly every lookup.
const parentCacheSize = 8

// parentCache opens directories below root (O_PATH, resolved in the root)
// and keeps the last few. Anything that removes a directory drops it all:
// a cached descriptor must never stand for a path that now means something
// else.
type parentCache struct {
	root    int
	entries []parentEntry // most recent last
}

type parentEntry struct {
	path string
	fd   int
}

// get returns a descriptor of dir ("" is the root), which stays owned by
// the cache. With create, missing directories on the way are made (0755,
// as docker does for parents a tar does not list).
func (c *parentCache) get(dir string, create bool) (int, error) {
	if dir == "" {
		return c.root, nil
	}
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].path == dir {
			return c.entries[i].fd, nil
		}
	}
	fd, err := openIn(c.root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT && create {
		fd, err = mkdirIn(c.root, dir)
	}
	if err != nil {
		if err == unix.ENOTDIR {
			return -1, errdefs.Invalid("parent %q is not a directory", dir)
		}
		if errdefs.KindOf(err) != errdefs.KindUnknown {
			return -1, err
		}
		return -1, fmt.Errorf("open parent %q: %w", dir, err)
	}
	if len(c.entries) == parentCacheSize {
		unix.Close(c.entries[0].fd)
		c.entries = append(c.entries[:0], c.entries[1:]...)
	}
	c.entries = append(c.entries, parentEntry{dir, fd})
	return fd, nil
}

// dropExcept closes every cached descriptor but keep, the directory in
// which something is being removed: its own path still means the same.
func (c *parentCache) dropExcept(keep int) {
	kept := c.entries[:0]
	for _, e := range c.entries {
		if e.fd == keep {
			kept = append(kept, e)
			continue
		}
		unix.Close(e.fd)
	}
	c.entries = kept
}

// drop closes every cached descriptor.
func (c *parentCache) drop() {
	for _, e := range c.entries {
		unix.Close(e.fd)
	}
	c.entries = c.entries[:0]
}

// mkdirIn makes dir and its missing parents below root, each step resolved
// in the root, and returns an O_PATH descriptor of it.
func mkdirIn(root int, dir string) (int, error) {
	parts := strings.Split(dir, "/")
	pfd := root
	defer func() {
		if pfd != root {
			unix.Close(pfd)
		}
	}()
	for i, part := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openIn(root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			if err := unix.Mkdirat(pfd, part, 0o755); err != nil {
				if err == unix.EEXIST {
					return -1, errdefs.Invalid("parent %q is a symlink to nothing in the root", prefix)
				}
				return -1, fmt.Errorf("mkdir %q: %w", prefix, err)
			}
			fd, err = openIn(root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		}
		if err != nil {
			return -1, err
		}
		if pfd != root {
			unix.Close(pfd)
		}
		pfd = fd
	}
	fd := pfd
	pfd = root
	return fd, nil
}

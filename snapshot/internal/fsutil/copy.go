// Package fsutil copies and measures file trees for the graph drivers:
// a faithful copy (types, modes, owners, xattrs, times, hard links,
// devices) that shares data blocks where the file system can, and a
// disk-usage walk.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

type inode struct{ dev, ino uint64 }

type copier struct {
	links   map[inode]string // first copy of each multiply-linked file
	noClone bool             // FICLONE failed once: do not try again
	noCFR   bool             // copy_file_range failed once
}

// CopyTree copies the tree at src to dst, which must not exist. Regular
// files are cloned (FICLONE) where the file system shares blocks, else
// copied in the kernel (copy_file_range), else read and written.
func CopyTree(src, dst string) error {
	c := &copier{links: map[inode]string{}}
	if err := c.copy(src, dst); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func (c *copier) copy(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return err
		}
		names, err := readNames(src)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := c.copy(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := inode{st.Dev, st.Ino}
			if first, ok := c.links[id]; ok {
				return unix.Link(first, dst)
			}
			c.links[id] = dst
		}
		if err := c.copyFile(src, dst, st.Size); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unknown file type %#o", src, st.Mode&unix.S_IFMT)
	}
	return copyMeta(src, dst, &st)
}

// copyMeta copies owner, xattrs, mode and times, in that order: chown
// clears set-id bits, and writing xattrs would touch ctime only.
func copyMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		v, err := getXattr(src, n)
		if err != nil {
			return fmt.Errorf("%s: read xattr %s: %w", src, n, err)
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) && n == "security.selinux" {
				continue
			}
			return fmt.Errorf("%s: write xattr %s: %w", dst, n, err)
		}
	}
	return nil
}

func (c *copier) copyFile(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := c.copyData(in, out, size); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	return out.Close()
}

func (c *copier) copyData(in, out *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	if !c.noClone {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EXDEV) {
			// Not a file system that shares blocks (EOPNOTSUPP, EINVAL...).
			c.noClone = true
		}
	}
	if !c.noCFR {
		var done int64
		for done < size {
			n, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, int(min(size-done, 1<<30)), 0)
			if err != nil {
				if done == 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
					c.noCFR = true
					break
				}
				return err
			}
			if n == 0 {
				break // the file shrank under us
			}
			done += int64(n)
		}
		if !c.noCFR {
			return nil
		}
	}
	_, err := io.Copy(out, in)
	return err
}

// readNames lists a directory without stat'ing its entries.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Llistxattr(path, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: list xattrs: %w", path, err)
		}
		var names []string
		for start := 0; start < n; {
			end := start
			for end < n && buf[end] != 0 {
				end++
			}
			if end > start {
				names = append(names, string(buf[start:end]))
			}
			start = end + 1
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyUp copies what a container's image has at path (resolved inside
// rootfs, so a symlink in the image cannot point it outside) into the
// volume data directory dst when dst is empty, as docker fills a new
// volume: contents, modes, owners and times; dst takes the mode and owner
// of the image's directory. It reports whether it copied.
//
// Both trees are walked by file descriptor with *at calls that never
// follow a symlink, so a container that shares the volume and swaps a
// directory for a symlink meanwhile cannot send a write to the host.
func CopyUp(rootfs, path, dst string) (bool, error) {
	root, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	defer unix.Close(root)
	src, err := unix.Openat2(root, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil // nothing there to copy
	}
	if err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	defer unix.Close(src)
	to, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	defer unix.Close(to)
	if names, err := readNames(to); err != nil || len(names) > 0 {
		return false, err
	}
	if err := copyDir(src, to); err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	if err := setAttrs(src, to); err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	return true, nil
}

// readNames lists a directory by fd (its own dup: the listing moves the
// offset).
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

func copyDir(src, dst int) error {
	names, err := readNames(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdirat(dst, name, 0o700); err != nil {
				return err
			}
			err = withDirs(src, dst, name, func(s, d int) error {
				if err := copyDir(s, d); err != nil {
					return err
				}
				return setAttrs(s, d)
			})
		case unix.S_IFREG:
			err = copyFile(src, dst, name)
		case unix.S_IFLNK:
			err = copySymlink(src, dst, name, &st)
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			// The mode is the node's (less the umask).
			if err = unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err == nil {
				err = unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
			}
		default:
			continue // sockets are not copied
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func withDirs(src, dst int, name string, fn func(s, d int) error) error {
	s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	d, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	return fn(s, d)
}

// setAttrs gives the open file (or directory) to the owner, mode and
// times of from.
func setAttrs(from, to int) error {
	var st unix.Stat_t
	if err := unix.Fstat(from, &st); err != nil {
		return err
	}
	if err := unix.Fchown(to, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	// After the chown, which clears setuid and setgid.
	if err := unix.Fchmod(to, st.Mode&0o7777); err != nil {
		return err
	}
	// Through the fd's own link: no path to swap.
	return unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(to), []unix.Timespec{st.Atim, st.Mtim}, 0)
}

func copyFile(src, dst int, name string) error {
	in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	inf := os.NewFile(uintptr(in), name)
	defer inf.Close()
	out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	outf := os.NewFile(uintptr(out), name)
	_, err = io.Copy(outf, inf)
	if err == nil {
		err = setAttrs(in, out)
	}
	if cerr := outf.Close(); err == nil {
		err = cerr
	}
	return err
}

func copySymlink(src, dst int, name string, st *unix.Stat_t) error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(src, name, buf)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
		return err
	}
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dst, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// Size is the bytes the volume's files hold (each inode counted once), as
// docker system df reports it.
func (s *Store) Size(name string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(s.Path(name), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		if !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

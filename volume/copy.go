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
func CopyUp(rootfs, path, dst string) (bool, error) {
	ents, err := os.ReadDir(dst)
	if err != nil || len(ents) > 0 {
		return false, err
	}
	root, err := os.Open(rootfs)
	if err != nil {
		return false, err
	}
	defer root.Close()
	fd, err := unix.Openat2(int(root.Fd()), path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil // nothing there to copy
	}
	if err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	src := os.NewFile(uintptr(fd), path)
	defer src.Close()
	// Below the opened directory, nothing is followed: WalkDir lstats and
	// does not descend into symlinks.
	base := "/proc/self/fd/" + strconv.Itoa(fd) + "/" // the slash: lstat follows the fd link
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		to := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case rel == ".":
		case fi.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFile(p, to); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
			_ = os.Lchown(to, int(st.Uid), int(st.Gid))
			return nil
		case fi.Mode()&(fs.ModeDevice|fs.ModeNamedPipe) != 0:
			if err := unix.Mknod(to, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			return nil // sockets are not copied
		}
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := os.Chmod(to, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return false, fmt.Errorf("copy-up of %s: %w", path, err)
	}
	return true, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
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

package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// Supported says whether overlay2 can keep its snapshots under root: the
// backing file system must not be overlayfs itself, must fill in d_type,
// and a small overlay (two lowers, an upper) must mount there.
func Supported(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(root, &sfs); err != nil {
		return fmt.Errorf("overlay2: statfs %s: %w", root, err)
	}
	if sfs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return errdefs.Unavailable("overlay2: %s is on overlayfs, which cannot be an overlay's upper directory", root)
	}
	// One check at a time per root, and what a check killed half way left
	// (a test overlay still mounted) is cleared first.
	lock, err := os.Open(root) // flock works on a directory
	if err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("overlay2: lock %s: %w", lock.Name(), err)
	}
	stale, _ := filepath.Glob(filepath.Join(root, "overlay-check-*"))
	for _, d := range stale {
		if err := unix.Unmount(filepath.Join(d, "merged"), 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("overlay2: unmount a stale test overlay: %w", err)
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("overlay2: %w", err)
		}
	}
	dir, err := os.MkdirTemp(root, "overlay-check-")
	if err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := checkDType(dir); err != nil {
		return err
	}
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("overlay2: %w", err)
		}
	}
	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s",
		filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return errdefs.Unavailable("overlay2: an overlay does not mount on %s: %v", root, err)
	}
	if err := unix.Unmount(merged, 0); err != nil {
		return fmt.Errorf("overlay2: unmount the test overlay %s: %w", merged, err)
	}
	return nil
}

// checkDType fails unless readdir on dir's file system reports file types:
// overlayfs needs them to see whiteouts.
func checkDType(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return fmt.Errorf("overlay2: getdents %s: %w", dir, err)
	}
	// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
	for off := 0; off+19 <= n; {
		reclen := int(buf[off+16]) | int(buf[off+17])<<8
		typ := buf[off+18]
		name := buf[off+19 : off+reclen]
		if len(name) > 0 && name[0] == 'f' && (len(name) == 1 || name[1] == 0) {
			if typ == unix.DT_UNKNOWN {
				return errdefs.Unavailable("overlay2: the file system of %s does not report d_type (xfs needs ftype=1)", dir)
			}
			return nil
		}
		if reclen == 0 {
			break
		}
		off += reclen
	}
	return errors.New("overlay2: d_type check: test file not listed")
}

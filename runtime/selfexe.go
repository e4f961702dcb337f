package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// initBinary returns the path the init is executed from: a read-only bind
// mount of this binary under the state root, made once and reused while it is
// the same file. A container that gets hold of the init's /proc/<pid>/exe
// (CVE-2019-5736) finds a read-only file; this costs one stat per start,
// where copying the binary into a sealed memfd costs a copy per start.
func (r *Runtime) initBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	var want unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		return "", err
	}
	dst := filepath.Join(r.Root, fmt.Sprintf(".berth-%x-%x", want.Dev, want.Ino))
	if ok, err := isROBind(dst, &want); err != nil {
		return "", err
	} else if ok {
		return dst, nil
	}
	lock, err := os.OpenFile(filepath.Join(r.Root, ".exe.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	if ok, err := isROBind(dst, &want); err != nil || ok {
		return dst, err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o500)
	if err != nil {
		return "", err
	}
	f.Close()
	if err := unix.Mount(self, dst, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind %s read-only: %w", self, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		unix.Unmount(dst, unix.MNT_DETACH)
		return "", fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	// Our own mount may not propagate back into peers of the root's mount.
	_ = unix.Mount("", dst, "", unix.MS_PRIVATE, "")
	// Views of binaries since replaced (upgrades, rebuilds) go: detaching is
	// lazy, so inits still running from one keep it.
	old, _ := filepath.Glob(filepath.Join(r.Root, ".berth-*"))
	for _, o := range old {
		if o != dst && unix.Unmount(o, unix.MNT_DETACH) == nil {
			os.Remove(o)
		}
	}
	return dst, nil
}

// isROBind reports whether p is already our read-only view of the binary.
func isROBind(p string, want *unix.Stat_t) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if st.Dev != want.Dev || st.Ino != want.Ino {
		return false, nil
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil {
		return false, err
	}
	return sfs.Flags&unix.ST_RDONLY != 0, nil
}

// ReleaseInitBinary unmounts the read-only views of the binary under the
// root; for tests and uninstall, since the mounts are otherwise kept.
func (r *Runtime) ReleaseInitBinary() error {
	matches, _ := filepath.Glob(filepath.Join(r.Root, ".berth-*"))
	var errs []error
	for _, m := range matches {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, err)
		}
		os.Remove(m)
	}
	return errors.Join(errs...)
}

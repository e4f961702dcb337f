package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountFlags (built on first use, as mountAttrs, not at every start of the
// binary) are the options that are mount(2) flags rather than file
// system data. "rw" and the "no..." negations clear nothing here: a fresh
// mount starts with no flags.
var mountFlags = sync.OnceValue(func() map[string]uintptr {
	return map[string]uintptr{
		"ro":         unix.MS_RDONLY,
		"rw":         0,
		"nosuid":     unix.MS_NOSUID,
		"nodev":      unix.MS_NODEV,
		"noexec":     unix.MS_NOEXEC,
		"noatime":    unix.MS_NOATIME,
		"nodiratime": unix.MS_NODIRATIME,
		"relatime":   unix.MS_RELATIME,
		"bind":       unix.MS_BIND,
		"rbind":      unix.MS_BIND | unix.MS_REC,
	}
})

// mountAttrs maps the same flags to the new mount API's MOUNT_ATTR_*.
var mountAttrs = sync.OnceValue(func() map[string]int {
	return map[string]int{
		"ro":         unix.MOUNT_ATTR_RDONLY,
		"nosuid":     unix.MOUNT_ATTR_NOSUID,
		"nodev":      unix.MOUNT_ATTR_NODEV,
		"noexec":     unix.MOUNT_ATTR_NOEXEC,
		"noatime":    unix.MOUNT_ATTR_NOATIME,
		"nodiratime": unix.MOUNT_ATTR_NODIRATIME,
	}
})

// pageSize bounds what mount(2) copies of its data argument.
var pageSize = os.Getpagesize()

// MountAll makes mounts on target, in order. An overlay whose options do
// not fit in one page is made with fsopen/fsconfig ("lowerdir+" per layer,
// Linux ≥ 6.8) or, on older kernels, with /proc/self/fd paths to its
// layers. On failure the mounts already made are undone.
func MountAll(mounts []MountSpec, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := 0; j < i; j++ {
				_ = unmountRetry(target)
			}
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
	}
	return nil
}

func mountOne(m MountSpec, target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := mountFlags()[o]; ok {
			flags |= f
			continue
		}
		data = append(data, o)
	}
	if flags&unix.MS_BIND != 0 || m.Type == "bind" {
		return mountBind(m.Source, target, flags)
	}
	joined := strings.Join(data, ",")
	if m.Type == "overlay" && len(joined) >= pageSize {
		return mountBigOverlay(m, target)
	}
	return unix.Mount(m.Source, target, m.Type, flags, joined)
}

// mountBind binds source on target. A read-only bind takes a remount:
// MS_RDONLY is ignored by the first bind mount(2).
func mountBind(source, target string, flags uintptr) error {
	flags |= unix.MS_BIND
	if err := unix.Mount(source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
			_ = unmountRetry(target)
			return fmt.Errorf("remount with flags %#x: %w", rest, err)
		}
	}
	return nil
}

var lowerdirPlus = sync.OnceValue(func() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.FsconfigSetString(fd, "lowerdir+", "/") == nil
})

// forceFdPaths makes mountBigOverlay take the old-kernel path; for tests.
var forceFdPaths bool

func mountBigOverlay(m MountSpec, target string) error {
	if lowerdirPlus() && !forceFdPaths {
		return mountOverlayFsconfig(m, target)
	}
	return mountOverlayFdPaths(m, target)
}

// mountOverlayFsconfig passes every layer as its own "lowerdir+" parameter,
// which has no length limit but the kernel's 500-layer stack.
func mountOverlayFsconfig(m MountSpec, target string) (err error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	defer func() {
		if err != nil {
			if msg := fsContextLog(fsfd); msg != "" {
				err = fmt.Errorf("%w (%s)", err, msg)
			}
		}
	}()
	attrs := 0
	for _, o := range m.Options {
		if a, ok := mountAttrs()[o]; ok {
			attrs |= a
			continue
		}
		if _, ok := mountFlags()[o]; ok {
			continue
		}
		key, value, hasValue := strings.Cut(o, "=")
		switch {
		case key == "lowerdir":
			for _, l := range splitLowerdirs(value) {
				if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
					return fmt.Errorf("fsconfig lowerdir+ %s: %w", l, err)
				}
			}
		case hasValue:
			if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
				return fmt.Errorf("fsconfig %s: %w", o, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fsfd, key); err != nil {
				return fmt.Errorf("fsconfig %s: %w", o, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// fsContextLog reads the messages the kernel left on an fs context: they
// say which parameter it refused and why.
func fsContextLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

// mountOverlayFdPaths shortens each layer to /proc/self/fd/N (17 bytes or
// so) for kernels without "lowerdir+": about 200 layers fit in a page.
func mountOverlayFdPaths(m MountSpec, target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := mountFlags()[o]; ok {
			flags |= f
			continue
		}
		key, value, _ := strings.Cut(o, "=")
		if key != "lowerdir" {
			data = append(data, o)
			continue
		}
		var short []string
		for _, l := range splitLowerdirs(value) {
			fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open layer %s: %w", l, err)
			}
			defer unix.Close(fd)
			short = append(short, fmt.Sprintf("/proc/self/fd/%d", fd))
		}
		data = append(data, "lowerdir="+strings.Join(short, ":"))
	}
	joined := strings.Join(data, ",")
	if len(joined) >= pageSize {
		return fmt.Errorf("overlay options are %d bytes even with short layer paths, over the %d-byte page this kernel takes (it has no lowerdir+): %w",
			len(joined), pageSize, unix.E2BIG)
	}
	return unix.Mount(m.Source, target, "overlay", flags, joined)
}

// splitLowerdirs splits overlay's colon-separated layer list, where a
// backslash escapes a colon inside a path.
func splitLowerdirs(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// UnmountAll unmounts everything mounted at or below target, deepest and
// latest first, until target is no mount point. It never detaches lazily:
// a busy mount is retried a few times and then reported.
func UnmountAll(target string) error {
	if real, err := filepath.EvalSymlinks(target); err == nil {
		target = real
	}
	target = filepath.Clean(target)
	for range 1000 {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(target))
		if err != nil {
			return fmt.Errorf("read mountinfo: %w", err)
		}
		if len(mounts) == 0 {
			return nil
		}
		// mountinfo lists mounts in the order they were made: the last
		// one is on top and has nothing mounted below it.
		if err := unmountRetry(mounts[len(mounts)-1].Mountpoint); err != nil {
			return err
		}
	}
	return fmt.Errorf("unmount %s: mounts keep appearing", target)
}

func unmountRetry(path string) error {
	var err error
	for attempt := range 8 {
		err = unix.Unmount(path, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
			continue
		}
		break
	}
	return fmt.Errorf("unmount %s: %w", path, err)
}

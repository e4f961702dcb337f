package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountCgroup mounts the container's view of its cgroups at dest.
//
// On a cgroup2-only host: a cgroup2 mount (in a cgroup namespace it shows
// the container's cgroup as root), falling back to a bind of the
// container's own cgroup directory when the kernel refuses (user namespace
// without cgroup namespace).
//
// On a v1 or hybrid host: a tmpfs at dest with one directory per hierarchy
// (named after the host mount point: cpu, memory, systemd, unified, ...),
// each holding only the container's own cgroup: a fresh mount in a cgroup
// namespace, else a bind of the host directory. Co-mounted controllers get
// symlinks (cpu -> cpu,cpuacct) as on the host.
func (b *builder) mountCgroup(m specs.Mount, dest string, o *mountOpts) error {
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	hier, ok := sysCgroupMounts(b.root, own)
	if !ok {
		if hier, err = cgroupMounts(b.root); err != nil {
			return err
		}
	}
	if m.Type == "cgroup2" || (len(hier) == 1 && hier[0].FSType == "cgroup2" && hier[0].Mountpoint == "/sys/fs/cgroup") {
		return b.mountCgroup2(m, dest, o, own, hier)
	}
	if len(hier) == 0 {
		return errors.New("no cgroup hierarchy is mounted on the host")
	}
	ro := o.flags&unix.MS_RDONLY != 0
	tmpfsOpts := *o
	tmpfsOpts.flags = o.flags&^unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	tmpfsOpts.data = []string{"mode=755", "size=64k"}
	tmpfsOpts.prop, tmpfsOpts.recSet, tmpfsOpts.recClr = nil, 0, 0
	// The tmpfs is new and ours: its hierarchy directories and symlinks
	// are made relative to its root handle.
	top, err := b.mountNewTop(specs.Mount{Source: "tmpfs", Type: "tmpfs"}, dest, &tmpfsOpts, true)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	sub := *o
	sub.flags = o.flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	sub.attrSet |= unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	sub.data, sub.prop = nil, nil
	for _, h := range hier {
		name := filepath.Base(h.Mountpoint)
		if name == "cgroup" || name == "." || name == "/" {
			name = h.FSType
		}
		if err := b.mountHierarchy(h, top, name, path.Join(dest, name), &sub, own); err != nil {
			return fmt.Errorf("cgroup hierarchy %s: %w", name, err)
		}
		if strings.Contains(name, ",") {
			for _, c := range strings.Split(name, ",") {
				if err := unix.Symlinkat(name, top, c); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("rootfs: symlink %s -> %s: %w", path.Join(dest, c), name, err)
				}
			}
		}
	}
	if ro {
		if err := setattr(top, unix.MOUNT_ATTR_RDONLY, 0, false); err != nil {
			return fmt.Errorf("read-only cgroup tmpfs: %w", err)
		}
	}
	return b.afterMount(top, o)
}

// mountHierarchy mounts hierarchy h at name in the directory dirfd (d is
// the same place as a path in the root, for messages and the cgroup2
// fallback); dirfd < 0 means d is resolved in the root.
func (b *builder) mountHierarchy(h *mountinfo.Info, dirfd int, name, d string, o *mountOpts, own map[string]string) error {
	key := cgroupKey(h)
	p, ok := own[key]
	if !ok {
		return fmt.Errorf("not in /proc/self/cgroup (%q)", key)
	}
	dfd := -1
	if dirfd >= 0 {
		var err error
		if dfd, err = createAt(dirfd, name, true); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		defer unix.Close(dfd)
	}
	if b.cgroupNS {
		data := ""
		if h.FSType == "cgroup" {
			data = strings.Join(cgroupControllers(h), ",")
		}
		var err error
		if dfd >= 0 {
			err = unix.Mount("cgroup", procFd(dfd), h.FSType, o.flags, data)
		} else {
			err = b.mountNew(specs.Mount{Source: "cgroup", Type: h.FSType}, d, &mountOpts{flags: o.flags, data: []string{data}})
		}
		if err == nil {
			return nil
		}
		logf("mount %s at %s in cgroup namespace: %v; binding the host directory instead", h.FSType, d, err)
	}
	// mountinfo's root is the hierarchy path the host mount shows.
	rel := strings.TrimPrefix(p, h.Root)
	if h.Root != "/" && rel == p {
		return fmt.Errorf("own cgroup %s is outside the host mount %s (root %s)", p, h.Mountpoint, h.Root)
	}
	src := filepath.Join(h.Mountpoint, rel)
	bo := *o
	bo.flags |= unix.MS_BIND
	return b.mountBindAt(specs.Mount{Source: src, Type: "bind"}, d, dfd, &bo)
}

func (b *builder) mountCgroup2(m specs.Mount, dest string, o *mountOpts, own map[string]string, hier []*mountinfo.Info) error {
	mo := *o
	mo.flags |= unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	err := b.mountNew(specs.Mount{Source: "cgroup2", Type: "cgroup2"}, dest, &mo)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EBUSY) {
		return err
	}
	var h *mountinfo.Info
	for _, x := range hier {
		if x.FSType == "cgroup2" {
			h = x
			break
		}
	}
	if h == nil {
		return err
	}
	logf("mount cgroup2 at %s: %v; binding the container's cgroup instead", dest, err)
	mo.data = nil
	return b.mountHierarchy(h, -1, path.Base(dest), dest, &mo, own)
}

// cgroupMounts lists the host's cgroup mounts, one per hierarchy (the first
// mount point wins), outside the container's root.
func cgroupMounts(root string) ([]*mountinfo.Info, error) {
	all, err := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []*mountinfo.Info
	for _, m := range all {
		if m.Mountpoint == root || strings.HasPrefix(m.Mountpoint, root+"/") {
			continue
		}
		k := cgroupKey(m)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out, nil
}

// cgroupControllers is a v1 mount's controller (and name=) options.
func cgroupControllers(m *mountinfo.Info) []string {
	var c []string
	for _, o := range strings.Split(m.VFSOptions, ",") {
		switch {
		case o == "rw" || o == "ro" || o == "" || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
		case strings.HasPrefix(o, "release_agent="):
		default:
			c = append(c, o)
		}
	}
	return c
}

// cgroupKey names a hierarchy the way /proc/self/cgroup does: its sorted
// controller list, or "" for cgroup2.
func cgroupKey(m *mountinfo.Info) string {
	if m.FSType == "cgroup2" {
		return ""
	}
	c := cgroupControllers(m)
	slices.Sort(c)
	return strings.Join(c, ",")
}

// ownCgroups maps each hierarchy key to this process's cgroup path in it.
func ownCgroups() (map[string]string, error) {
	data, err := readSmall("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		c := strings.Split(parts[1], ",")
		if parts[1] == "" {
			c = nil
		}
		slices.Sort(c)
		own[strings.Join(c, ",")] = parts[2]
	}
	return own, nil
}

// readSmall reads a small (proc) file with plain syscalls.
func readSmall(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

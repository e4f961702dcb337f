package rootfs

import (
	"errors"
	"fmt"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are runtime-spec config-linux.md "Default Devices".
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// setupDev fills the container's /dev: default and spec devices, the
// standard symlinks and the console.
func (b *builder) setupDev() error {
	devs := map[string]specs.LinuxDevice{}
	var order []string
	for _, d := range append(append([]specs.LinuxDevice(nil), defaultDevices...), b.linux.Devices...) {
		p := cleanDest(d.Path)
		if _, ok := devs[p]; !ok {
			order = append(order, p)
		}
		devs[p] = d // the spec's entry overrides the default
	}
	defer b.forgetDirs()
	for _, p := range order {
		if err := b.createDevice(p, devs[p]); err != nil {
			return fmt.Errorf("rootfs: device %s: %w", p, err)
		}
	}
	for _, l := range DevLinks() {
		if err := b.symlinkInRoot(l[0], l[1]); err != nil {
			return err
		}
	}
	if b.opts.ConsolePath != "" {
		o := mountOpts{flags: unix.MS_BIND}
		if err := b.mountBind(specs.Mount{Source: b.opts.ConsolePath, Type: "bind"}, "/dev/console", &o); err != nil {
			return fmt.Errorf("rootfs: console %s: %w", b.opts.ConsolePath, err)
		}
	}
	return nil
}

// symlinkInRoot creates link -> target inside the root; an existing entry
// is left alone (the image or a spec mount may provide it).
func (b *builder) symlinkInRoot(target, link string) error {
	parent, err := b.mkdirAll(path.Dir(link))
	if err != nil {
		return fmt.Errorf("rootfs: symlink %s: %w", link, err)
	}
	err = unix.Symlinkat(target, parent, path.Base(link))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rootfs: symlink %s -> %s: %w", link, target, err)
	}
	return nil
}

// createDevice makes a device node at p inside the root; in a user
// namespace (where mknod is refused) it binds the host's node instead.
func (b *builder) createDevice(p string, d specs.LinuxDevice) error {
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	var uid, gid uint32
	if d.UID != nil {
		uid = *d.UID
	}
	if d.GID != nil {
		gid = *d.GID
	}
	if b.inUserNS && typ != unix.S_IFIFO {
		return b.bindDevice(p)
	}
	dirfd, err := b.mkdirAll(path.Dir(p))
	if err != nil {
		return err
	}
	base := path.Base(p)
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	err = unix.Mknodat(dirfd, base, typ|perm, dev)
	if err == unix.EEXIST {
		// Replace what the image (or an earlier entry) put there.
		if err := unix.Unlinkat(dirfd, base, 0); err != nil && err != unix.ENOENT {
			return err
		}
		err = unix.Mknodat(dirfd, base, typ|perm, dev)
	}
	if err != nil {
		if errors.Is(err, unix.EPERM) && typ != unix.S_IFIFO {
			logf("mknod %s: %v; binding the host's node instead", p, err)
			return b.bindDevice(p)
		}
		return err
	}
	// mknod honours the umask; set the mode exactly. The node was just
	// created by us in a directory no one else writes to yet.
	if err := unix.Fchmodat(dirfd, base, perm, 0); err != nil {
		return err
	}
	return unix.Fchownat(dirfd, base, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
}

// bindDevice binds the host's node at the same path onto p in the root.
func (b *builder) bindDevice(p string) error {
	o := mountOpts{flags: unix.MS_BIND}
	return b.mountBind(specs.Mount{Source: p, Type: "bind"}, p, &o)
}

// DevLinks are the symlinks every container's /dev gets: target, then the
// link's path.
func DevLinks() [][2]string {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if unix.Faccessat(unix.AT_FDCWD, "/proc/kcore", unix.F_OK, 0) == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	return links
}

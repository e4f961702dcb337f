package archive

import (
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// This file is docker cp's side of the package: paths inside a container's
// root resolved as if chrooted (never leading out of it), a path's stat,
// and the tar of one file or directory. The root is a directory descriptor
// (a container's /proc/<pid>/root, or its mounted root file system), and
// every lookup below it goes through openat2(RESOLVE_IN_ROOT) or single
// components opened O_NOFOLLOW: a container changing its files meanwhile
// cannot turn a copy into a read or write of the host's.

// CopyPath is a path inside a root as docker cp names it: Abs is the
// absolute, cleaned path with a trailing "/" or "/." kept (they mean the
// directory itself, its final symlink followed); Dir and Base split it so
// that Dir is resolved with every symlink followed and Base (when not "")
// is the last component, not followed.
type CopyPath struct {
	Abs, Dir, Base string
}

// ParseCopyPath makes p (relative paths are taken from "/") a CopyPath.
func ParseCopyPath(p string) (CopyPath, error) {
	if p == "" {
		return CopyPath{}, errdefs.Invalid("Path cannot be empty")
	}
	if strings.IndexByte(p, 0) >= 0 || len(p) >= pathMax {
		return CopyPath{}, errdefs.Invalid("invalid path %s", shortName(p))
	}
	abs := path.Join("/", p)
	switch {
	case strings.HasSuffix(p, "/.") || p == ".":
		abs = strings.TrimSuffix(abs, "/") + "/."
	case strings.HasSuffix(p, "/") && abs != "/":
		abs += "/"
	}
	dir, base := path.Split(abs)
	if base == "." {
		base = ""
	}
	return CopyPath{Abs: abs, Dir: dir, Base: base}, nil
}

// Name is the name dockerd's stat gives the path: its last element ("."
// for "dir/.").
func (p CopyPath) Name() string { return path.Base(p.Abs) }

// OpenParent opens (O_PATH) the directory that holds p's Base, or p itself
// when Base is "", resolved inside root.
func OpenParent(root int, p CopyPath) (int, error) {
	rel := strings.TrimPrefix(path.Clean(p.Dir), "/")
	fd, err := openIn(root, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p.Dir, Err: err}
	}
	return fd, nil
}

// CopyStat is what docker cp's stat header says of a path.
type CopyStat struct {
	Name       string
	Size       int64
	Mode       os.FileMode
	Mtime      time.Time
	LinkTarget string // a symlink's target, resolved inside the root
}

// StatIn stats p inside root without following its last component unless
// it ends in "/" or "/.".
func StatIn(root int, p CopyPath) (CopyStat, error) {
	fd, err := OpenParent(root, p)
	if err != nil {
		return CopyStat{}, err
	}
	defer unix.Close(fd)
	base := p.Base
	if base == "" {
		base = "."
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH); err != nil {
		return CopyStat{}, &os.PathError{Op: "lstat", Path: p.Abs, Err: err}
	}
	cs := CopyStat{Name: p.Name(), Size: st.Size, Mode: fileMode(st.Mode), Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	if cs.Mode&os.ModeSymlink != 0 {
		if cs.LinkTarget, err = EvalIn(root, p.Abs); err != nil {
			return CopyStat{}, err
		}
	}
	return cs, nil
}

// fileMode converts a stat mode as os.FileMode does.
func fileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFIFO:
		fm |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		fm |= os.ModeSocket
	case unix.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		fm |= os.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// EvalIn names the path p (absolute in root) reaches with every symlink
// followed as if root were "/": the link target docker cp reports. Only
// names are read; a missing component ends the walk, as docker's.
func EvalIn(root int, p string) (string, error) {
	todo := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		fd, err := openIn(root, strings.TrimPrefix(cur, "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return path.Join(append([]string{cur, c}, todo...)...), nil
		}
		var st unix.Stat_t
		err = unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			unix.Close(fd)
			cur = path.Join(cur, c)
			continue
		}
		if hops++; hops > 255 {
			unix.Close(fd)
			return "", &os.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := readlink(procPath(fd, c))
		unix.Close(fd)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, nil
}

// pseudoFS are the kernel's file systems a copy does not descend into (a
// running container's /proc, /sys, ...): they are not the container's
// files, and some never end.
var pseudoFS = []int64{unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.DEVPTS_SUPER_MAGIC, 0x19800202, // mqueue
	unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC, unix.SECURITYFS_MAGIC, unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC,
	unix.BPF_FS_MAGIC}

// WriteCopy writes to w the tar docker cp sends for base in the directory
// parent ("" for parent itself): the file, or the directory and everything
// below it, named name, name/... ("/" names the root "/" and its entries
// "/x"), with docker's layer format (see
// WriteLayer). Each directory is entered by descriptor with O_NOFOLLOW.
func WriteCopy(w io.Writer, parent int, base, name string) error {
	lw := newLayerWriter(w, "")
	if base == "" {
		base = "."
	}
	var walk func(dirfd int, base, name string) error
	walk = func(dirfd int, base, name string) error {
		isDir, err := lw.addPath(procPath(dirfd, base), name)
		if err != nil || !isDir {
			return err
		}
		fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		defer unix.Close(fd)
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err == nil && slices.Contains(pseudoFS, int64(sfs.Type)) {
			return nil
		}
		names, err := readDirNames(fd)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		slices.Sort(names)
		for _, n := range names {
			if err := walk(fd, n, name+"/"+n); err != nil {
				return err
			}
		}
		return nil
	}
	if name == "/" {
		name = "" // the root is "/", its entries "/bin", ...
	}
	if err := walk(parent, base, name); err != nil {
		return err
	}
	return lw.close()
}

// MountPointIn makes p (relative to root, clean) for a bind mount of a
// directory or, when file, of a file, with every step resolved inside
// root, and returns an O_PATH descriptor of it.
func MountPointIn(root int, p string, file bool) (int, error) {
	if !file {
		return mkdirIn(root, p)
	}
	dir, base := path.Split(p)
	pfd := root
	if dir = strings.TrimSuffix(dir, "/"); dir != "" {
		var err error
		if pfd, err = mkdirIn(root, dir); err != nil {
			return -1, err
		}
		defer unix.Close(pfd)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return -1, fmt.Errorf("create mount point %s: %w", p, err)
	}
	unix.Close(fd)
	return openIn(root, p, unix.O_PATH|unix.O_NOFOLLOW)
}

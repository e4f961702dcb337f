package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteOptions tune WriteLayer.
type WriteOptions struct {
	// WhiteoutTime is the mtime of ".wh." entries; the zero value writes
	// the Unix epoch so that the same changes give the same tar (docker
	// writes the current time).
	WhiteoutTime time.Time
}

// WriteLayer writes an uncompressed layer tar of changes to w, in their
// order (Delete as ".wh.<name>", an opaque directory followed by
// ".wh..wh..opq"), reading what was added or modified from root: an overlay
// upper directory, or the whole tree for vfs and btrfs. The format is
// docker's: PAX, mtimes in whole seconds, no atime/ctime, no user or group
// names, hardlinks within the layer as links, xattrs as SCHILY.xattr
// records (not system.*, security.selinux or trusted.overlay.*). Sockets
// are skipped, as docker does.
func WriteLayer(w io.Writer, root string, changes []Change, opts WriteOptions) error {
	lw := newLayerWriter(w, root)
	wt := opts.WhiteoutTime
	if wt.IsZero() {
		wt = time.Unix(0, 0)
	}
	for _, c := range changes {
		name, err := cleanName(c.Path)
		if err != nil || name == "" {
			return fmt.Errorf("change %s: bad path: %v", c, err)
		}
		if c.Kind == ChangeDelete {
			dir, base := path.Split(name)
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + whiteoutPrefix + base, ModTime: wt, Format: tar.FormatPAX}
			if err := lw.tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write whiteout of %s: %w", c.Path, err)
			}
			continue
		}
		if err := lw.add(name); err != nil {
			return err
		}
		if c.Opaque {
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name + "/" + whiteoutOpaque, ModTime: wt, Format: tar.FormatPAX}
			if err := lw.tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write opaque marker of %s: %w", c.Path, err)
			}
		}
	}
	return lw.close()
}

// WriteTree writes the whole tree below root (not root itself) as a layer
// tar: what `export` gives and `import` takes.
func WriteTree(w io.Writer, root string) error {
	lw := newLayerWriter(w, root)
	var walk func(rel string) error
	walk = func(rel string) error {
		names, err := dirNames(filepath.Join(root, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			p := path.Join(rel, n)
			isDir, err := lw.addStat(p)
			if err != nil {
				return err
			}
			if isDir {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return err
	}
	return lw.close()
}

type inode struct{ dev, ino uint64 }

type layerWriter struct {
	tw   *tar.Writer
	root string
	seen map[inode]string // first name of each multiply linked inode
	buf  []byte
}

func newLayerWriter(w io.Writer, root string) *layerWriter {
	return &layerWriter{tw: tar.NewWriter(w), root: root, seen: map[inode]string{}, buf: make([]byte, copyBufSize)}
}

func (lw *layerWriter) close() error {
	if err := lw.tw.Close(); err != nil {
		return fmt.Errorf("finish layer tar: %w", err)
	}
	return nil
}

func (lw *layerWriter) add(name string) error {
	_, err := lw.addStat(name)
	return err
}

// addStat writes the entry for name (relative, clean) as it is in root and
// reports whether it is a directory.
func (lw *layerWriter) addStat(name string) (bool, error) {
	return lw.addPath(filepath.Join(lw.root, name), name)
}

// addPath writes the entry for the file at full (not following a final
// symlink) under the tar name name, and reports whether it is a directory.
func (lw *layerWriter) addPath(full, name string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return false, fmt.Errorf("layer entry %s: %w", name, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	isDir := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		isDir = true
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		target, err := readlink(full)
		if err != nil {
			return false, fmt.Errorf("layer entry %s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return false, nil // sockets have no place in a layer
	}
	if !isDir && st.Nlink > 1 {
		id := inode{st.Dev, st.Ino}
		if first, ok := lw.seen[id]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			lw.seen[id] = name
		}
	}
	xs, err := listXattrs(full)
	if err != nil {
		return false, fmt.Errorf("layer entry %s: %w", name, err)
	}
	for _, x := range xs {
		if skipXattr(x.name) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+x.name] = string(x.value)
	}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return false, fmt.Errorf("layer entry %s: %w", name, err)
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if err := lw.copyFile(full, hdr.Size); err != nil {
			return false, fmt.Errorf("layer entry %s: %w", name, err)
		}
	}
	return isDir, nil
}

// copyFile copies exactly size bytes of the file: one that shrank since its
// header was written is an error, not a corrupt tar.
func (lw *layerWriter) copyFile(full string, size int64) error {
	f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(onlyWriter{lw.tw}, io.LimitReader(onlyReader{f}, size), lw.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank from %d to %d bytes while being written", size, n)
	}
	return nil
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer uses our
// large buffer.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// skipXattr says which xattrs stay out of a layer: ACLs and SELinux labels
// belong to the host, trusted.overlay.* to the overlay that wrote them.
func skipXattr(name string) bool {
	return strings.HasPrefix(name, "system.") || name == "security.selinux" ||
		strings.HasPrefix(name, "trusted.overlay.")
}

type xattr struct {
	name  string
	value []byte
}

// listXattrs returns a file's xattrs (not following a symlink), sorted.
func listXattrs(p string) ([]xattr, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil
		}
		return nil, fmt.Errorf("llistxattr: %w", err)
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("llistxattr: %w", err)
	}
	var out []xattr
	for _, name := range strings.Split(string(bytes.TrimRight(buf[:sz], "\x00")), "\x00") {
		if name == "" {
			// overlayfs counts its hidden trusted.overlay.* names in the
			// size but leaves them out of the list.
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			if err == unix.ENODATA {
				continue
			}
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(p, name, v); err != nil {
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		out = append(out, xattr{name, v[:vsz]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func readlink(p string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return "", fmt.Errorf("readlink: %w", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

package archive

import (
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// ChangeKind is what happened to a path, as `docker diff` prints it.
type ChangeKind int

// Kinds of change; the values are docker's.
const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// Change is one changed path of a layer. Path is absolute in the layer's
// file system ("/etc/passwd"), as docker reports it.
type Change struct {
	Kind ChangeKind
	Path string
	// Opaque marks a directory that hides everything lower layers had in
	// it: WriteLayer follows it with ".wh..wh..opq".
	Opaque bool
}

func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// OverlayChanges lists the changes in an overlay upper directory, sorted
// (parents first). A 0/0 character device is a deletion; a directory with
// trusted.overlay.opaque="y" is opaque. lowers (topmost first, as in
// lowerdir=) tell an added path from a modified one.
func OverlayChanges(upper string, lowers []string) ([]Change, error) {
	var out []Change
	lc := &lowerCache{lowers: lowers, opaque: map[string]bool{}}
	// underOpaque: an opaque directory above hides every lower layer, so
	// all of it is new.
	var walk func(rel string, underOpaque bool) error
	walk = func(rel string, underOpaque bool) error {
		names, err := dirNames(filepath.Join(upper, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			p := path.Join(rel, n)
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(upper, p), &st); err != nil {
				return fmt.Errorf("overlay changes: %w", err)
			}
			if isWhiteoutDev(&st) {
				out = append(out, Change{Kind: ChangeDelete, Path: "/" + p})
				continue
			}
			c := Change{Kind: ChangeAdd, Path: "/" + p}
			if !underOpaque && lc.exists(p) {
				c.Kind = ChangeModify
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if isDir && isOpaque(filepath.Join(upper, p)) {
				c.Opaque = true
			}
			if err := plainUpper(filepath.Join(upper, p), &st); err != nil {
				return err
			}
			out = append(out, c)
			if isDir {
				if err := walk(p, underOpaque || c.Opaque); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("", false); err != nil {
		return nil, err
	}
	return out, nil
}

// plainUpper refuses what the upper directory of an overlay mounted with
// redirect_dir or metacopy holds: a renamed directory or a file whose data
// is still below. Their contents are not in the upper directory, so a layer
// written from it would silently lose them.
func plainUpper(p string, st *unix.Stat_t) error {
	var name string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		name = "trusted.overlay.redirect"
	case unix.S_IFREG:
		name = "trusted.overlay.metacopy"
	default:
		return nil
	}
	if _, err := unix.Lgetxattr(p, name, nil); err == nil {
		return errdefs.NotImplemented("overlay changes: %s has %s; mount with redirect_dir=off,metacopy=off", p, name)
	}
	return nil
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(dir string) bool {
	var v [1]byte
	n, err := unix.Lgetxattr(dir, overlayOpaque, v[:])
	return err == nil && n == 1 && v[0] == 'y'
}

// lowerCache answers "is p visible in the merged lower layers": the first
// lower (from the top) that has p decides, unless a whiteout, an opaque
// directory or a non-directory on the way hides the layers below.
type lowerCache struct {
	lowers []string
	opaque map[string]bool // lower index + "\x00" + dir
}

func (lc *lowerCache) exists(p string) bool {
	for i, l := range lc.lowers {
		var st unix.Stat_t
		err := unix.Lstat(filepath.Join(l, p), &st)
		if err == nil {
			return !isWhiteoutDev(&st)
		}
		if err == unix.ENOTDIR {
			return false // a parent is a file (or a whiteout) here
		}
		if lc.hidden(i, l, path.Dir(p)) {
			return false
		}
	}
	return false
}

// hidden reports whether dir or one of its parents is opaque in lower l.
func (lc *lowerCache) hidden(i int, l, dir string) bool {
	if dir == "." || dir == "/" {
		return false
	}
	key := fmt.Sprint(i) + "\x00" + dir
	if h, ok := lc.opaque[key]; ok {
		return h
	}
	h := isOpaque(filepath.Join(l, dir)) || lc.hidden(i, l, path.Dir(dir))
	lc.opaque[key] = h
	return h
}

// TreeChanges lists what changed from the tree lower ("" for none) to the
// tree upper, sorted (parents first), comparing type, mode, owner, size,
// mtime (ns), symlink target, device numbers and xattrs. A directory whose
// own metadata did not change is listed (as modified) only when something
// below it did, so that its entry goes into the layer before its children.
func TreeChanges(lower, upper string) ([]Change, error) {
	return treeChanges(lower, upper, "", lower != "")
}

// treeChanges compares the directory rel of both trees; hasLower says
// whether lower/rel is a real directory (not missing, not a symlink).
func treeChanges(lower, upper, rel string, hasLower bool) ([]Change, error) {
	unames, err := dirNames(filepath.Join(upper, rel))
	if err != nil {
		return nil, err
	}
	var lnames []string
	if hasLower {
		if lnames, err = dirNames(filepath.Join(lower, rel)); err != nil {
			return nil, err
		}
	}
	var out []Change
	for _, m := range mergeNames(unames, lnames) {
		n, inUpper, inLower := m.name, m.inA, false
		p := path.Join(rel, n)
		var ust, lst unix.Stat_t
		if m.inB {
			if err := unix.Lstat(filepath.Join(lower, p), &lst); err == nil {
				inLower = true
			} else if err != unix.ENOENT {
				return nil, fmt.Errorf("tree changes: %w", err)
			}
		}
		if !inUpper {
			if inLower {
				out = append(out, Change{Kind: ChangeDelete, Path: "/" + p})
			}
			continue
		}
		if err := unix.Lstat(filepath.Join(upper, p), &ust); err != nil {
			return nil, fmt.Errorf("tree changes: %w", err)
		}
		isDir := ust.Mode&unix.S_IFMT == unix.S_IFDIR
		var self *Change
		switch {
		case !inLower:
			self = &Change{Kind: ChangeAdd, Path: "/" + p}
		case !sameMeta(filepath.Join(lower, p), filepath.Join(upper, p), &lst, &ust):
			self = &Change{Kind: ChangeModify, Path: "/" + p}
		}
		var below []Change
		if isDir {
			lowerDir := inLower && lst.Mode&unix.S_IFMT == unix.S_IFDIR
			if below, err = treeChanges(lower, upper, p, lowerDir); err != nil {
				return nil, err
			}
		}
		if self == nil && len(below) > 0 {
			self = &Change{Kind: ChangeModify, Path: "/" + p}
		}
		if self != nil {
			out = append(out, *self)
		}
		out = append(out, below...)
	}
	return out, nil
}

// sameMeta compares what a layer records of two files.
func sameMeta(lp, up string, l, u *unix.Stat_t) bool {
	if l.Mode != u.Mode || l.Uid != u.Uid || l.Gid != u.Gid || l.Rdev != u.Rdev ||
		l.Mtim != u.Mtim {
		return false
	}
	switch u.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if l.Size != u.Size {
			return false
		}
	case unix.S_IFLNK:
		lt, err1 := readlink(lp)
		ut, err2 := readlink(up)
		if err1 != nil || err2 != nil || lt != ut {
			return false
		}
	}
	lx, err1 := listXattrs(lp)
	ux, err2 := listXattrs(up)
	if err1 != nil || err2 != nil || len(lx) != len(ux) {
		return false
	}
	for i := range lx {
		if lx[i].name != ux[i].name || !bytes.Equal(lx[i].value, ux[i].value) {
			return false
		}
	}
	return true
}

type merged struct {
	name     string
	inA, inB bool
}

// mergeNames merges two sorted name lists, saying where each name is.
func mergeNames(a, b []string) []merged {
	out := make([]merged, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, merged{a[i], true, false})
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, merged{b[j], false, true})
			j++
		default:
			out = append(out, merged{a[i], true, true})
			i, j = i+1, j+1
		}
	}
	return out
}

// dirNames lists a directory, sorted, without following a final symlink.
func dirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	names, err := readDirNames(fd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	slices.Sort(names)
	return names, nil
}

package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// node is what the tests compare of one file: everything a layer carries.
type node struct {
	Type   string
	Mode   uint32 // permission and set-id/sticky bits
	UID    uint32
	GID    uint32
	Size   int64
	MTime  int64 // ns
	Target string
	Rdev   uint64
	Sum    string
	Xattrs map[string]string
	Ino    uint64 `json:"-"`
}

func (n node) String() string {
	return fmt.Sprintf("%s %o %d:%d size=%d mtime=%d target=%q rdev=%d sum=%.8s xattrs=%v",
		n.Type, n.Mode, n.UID, n.GID, n.Size, n.MTime, n.Target, n.Rdev, n.Sum, n.Xattrs)
}

func fileType(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "?"
}

// scan describes every path below root (relative names, root excluded).
func scan(t testing.TB, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		out[rel] = stat(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stat(t testing.TB, p string) node {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	n := node{
		Type: fileType(st.Mode), Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
		MTime: st.Mtim.Nano(), Ino: st.Ino, Xattrs: xattrsOf(t, p),
	}
	switch n.Type {
	case "file":
		n.Size = st.Size
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		n.Sum = hex.EncodeToString(s[:])
	case "symlink":
		n.Target, _ = os.Readlink(p)
	case "char", "block":
		n.Rdev = st.Rdev
	}
	return n
}

func xattrsOf(t testing.TB, p string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil
		}
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	var m map[string]string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" || strings.HasPrefix(k, "system.") {
			continue // ACLs and such are not layer content here
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", p, k, err)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = string(v[:vn])
	}
	return m
}

// diffTrees reports how two scans differ, ignoring the mtimes of
// directories when skipDirTimes (a tree being diffed touches them).
func diffTrees(a, b map[string]node, skipDirTimes bool) []string {
	var out []string
	for k, x := range a {
		y, ok := b[k]
		if !ok {
			out = append(out, "only in first: "+k)
			continue
		}
		x.Ino, y.Ino = 0, 0
		if skipDirTimes && x.Type == "dir" {
			x.MTime, y.MTime = 0, 0
		}
		if x.String() != y.String() {
			out = append(out, fmt.Sprintf("%s:\n  %v\n  %v", k, x, y))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only in second: "+k)
		}
	}
	sort.Strings(out)
	return out
}

// hardlinkGroups lists, per inode with several names, the names sorted.
func hardlinkGroups(s map[string]node) []string {
	by := map[uint64][]string{}
	for k, n := range s {
		if n.Type != "dir" {
			by[n.Ino] = append(by[n.Ino], k)
		}
	}
	var out []string
	for _, names := range by {
		if len(names) > 1 {
			sort.Strings(names)
			out = append(out, strings.Join(names, "="))
		}
	}
	sort.Strings(out)
	return out
}

// ent is one entry of a tar the test writes by hand.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

var fixedTime = time.Unix(1700000000, 0)

// mktar writes a tar of the entries, in order, as a hostile or unusual
// layer would be: nothing is checked.
func mktar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: fixedTime, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

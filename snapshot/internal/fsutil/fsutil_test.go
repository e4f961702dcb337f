package fsutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st
}

// TestCopyTreeKeepsEverything copies a tree with every file type and the
// metadata vfs must keep, and compares each inode.
func TestCopyTreeKeepsEverything(t *testing.T) {
	testutil.RequireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(filepath.Join(src, "dir/sub"), 0o750))
	big := strings.Repeat("data", 300000)
	must(t, os.WriteFile(filepath.Join(src, "dir/file"), []byte(big), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o755))
	must(t, os.Chown(filepath.Join(src, "suid"), 0, 0))
	must(t, os.Chmod(filepath.Join(src, "suid"), 0o4755))
	must(t, os.WriteFile(filepath.Join(src, "owned"), nil, 0o600))
	must(t, os.Chown(filepath.Join(src, "owned"), 1234, 5678))
	must(t, os.Link(filepath.Join(src, "dir/file"), filepath.Join(src, "dir/sub/hardlink")))
	must(t, os.Symlink("dir/file", filepath.Join(src, "link")))
	must(t, unix.Lchown(filepath.Join(src, "link"), 42, 43))
	must(t, unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(src, "whiteout"), unix.S_IFCHR, 0))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(t, unix.Lsetxattr(filepath.Join(src, "dir"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(src, "dir/file"), "user.note", []byte("hello"), 0))
	must(t, unix.Lsetxattr(filepath.Join(src, "dir/file"), "security.capability", capV2(), 0))
	old := []unix.Timespec{{Sec: 1000000000, Nsec: 5}, {Sec: 1000000000, Nsec: 123456789}}
	for _, p := range []string{"dir/file", "link", "dir/sub", "dir", "."} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), old, unix.AT_SYMLINK_NOFOLLOW))
	}

	dst := filepath.Join(t.TempDir(), "dst")
	must(t, CopyTree(src, dst))

	for _, p := range []string{".", "dir", "dir/sub", "dir/file", "suid", "owned", "link", "null", "whiteout", "fifo"} {
		a, b := lstat(t, filepath.Join(src, p)), lstat(t, filepath.Join(dst, p))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || a.Size != b.Size || a.Mtim != b.Mtim {
			t.Errorf("%s: copy has mode %o uid %d gid %d rdev %d size %d mtime %v; source %o %d %d %d %d %v",
				p, b.Mode, b.Uid, b.Gid, b.Rdev, b.Size, b.Mtim, a.Mode, a.Uid, a.Gid, a.Rdev, a.Size, a.Mtim)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "dir/file")); string(b) != big {
		t.Error("file content differs")
	}
	f, h := lstat(t, filepath.Join(dst, "dir/file")), lstat(t, filepath.Join(dst, "dir/sub/hardlink"))
	if f.Ino != h.Ino || f.Nlink != 2 {
		t.Errorf("hard link not kept: inodes %d %d, nlink %d", f.Ino, h.Ino, f.Nlink)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "dir/file" {
		t.Errorf("symlink target %q", l)
	}
	for p, want := range map[string]string{"dir": "trusted.overlay.opaque=y", "dir/file": "user.note=hello"} {
		name, val, _ := strings.Cut(want, "=")
		got, err := getXattr(filepath.Join(dst, p), name)
		if err != nil || string(got) != val {
			t.Errorf("%s: xattr %s = %q, %v", p, name, got, err)
		}
	}
	if got, err := getXattr(filepath.Join(dst, "dir/file"), "security.capability"); err != nil || string(got) != string(capV2()) {
		t.Errorf("file capabilities not kept: %v", err)
	}
}

// capV2 is a VFS_CAP_REVISION_2 value granting cap_net_raw (bit 13).
func capV2() []byte {
	b := make([]byte, 20)
	b[3] = 0x02          // magic_etc 0x02000000, little endian
	b[5] = 1 << (13 - 8) // permitted[0], bit 13
	return b
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	lower, upper := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(lower, "same"), []byte("s"), 0o644))
	must(t, os.WriteFile(filepath.Join(lower, "changed"), []byte("old"), 0o644))
	must(t, CopyTree(lower, filepath.Join(upper, "u")))
	upper = filepath.Join(upper, "u")
	u, err := ChangedUsage(ctx, lower, upper)
	must(t, err)
	if u.Inodes != 0 {
		t.Errorf("a faithful copy changes %d inodes", u.Inodes)
	}
	must(t, os.WriteFile(filepath.Join(upper, "changed"), []byte("new!"), 0o644))
	must(t, os.WriteFile(filepath.Join(upper, "added"), make([]byte, 10000), 0o644))
	must(t, os.Link(filepath.Join(upper, "added"), filepath.Join(upper, "added2")))
	u, err = ChangedUsage(ctx, lower, upper)
	must(t, err)
	if u.Inodes != 2 || u.Size < 10000 {
		t.Errorf("changed usage %+v, want 2 inodes (one hard-linked twice) and >= 10000 bytes", u)
	}
	tu, err := TreeUsage(ctx, upper)
	must(t, err)
	if tu.Inodes != 3 {
		t.Errorf("tree usage %+v, want 3 inodes (same, changed, added twice linked)", tu)
	}
}

// TestMarkTopDir: on ext4 (this host's /var/tmp) the directory gets the
// T attribute; elsewhere nothing fails.
func TestMarkTopDir(t *testing.T) {
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("/var/tmp", "berth-topdir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	MarkTopDir(dir)
	MarkTopDir(dir) // again: already set
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("/var/tmp is not ext4 (%x, %v)", st.Type, err)
	}
	out, err := exec.Command("lsattr", "-d", dir).CombinedOutput()
	if err != nil || !strings.Contains(strings.Fields(string(out))[0], "T") {
		t.Fatalf("lsattr: %s %v", out, err)
	}
	MarkTopDir(filepath.Join(dir, "nosuch"))
}

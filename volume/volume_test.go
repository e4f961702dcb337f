package volume

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestCreateListRemoveReopen(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("data1", "", nil, map[string]string{"a": "b"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if v.Driver != "local" || v.Labels["a"] != "b" || v.Anonymous() {
		t.Fatalf("%+v", v)
	}
	if fi, err := os.Stat(filepath.Join(root, "data1", "_data")); err != nil || !fi.IsDir() {
		t.Fatal(err)
	}
	// The same name again is the same volume.
	again, created, err := s.Create("data1", "local", nil, nil)
	if err != nil || created || again.Labels["a"] != "b" {
		t.Fatal(again, created, err)
	}
	anon, _, err := s.Create("", "", nil, nil)
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatal(anon, err)
	}
	if err := os.WriteFile(filepath.Join(s.Path("data1"), "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size("data1"); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	// A create a crash cut short is cleared at the next Open.
	if err := os.MkdirAll(filepath.Join(root, ".new-123", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	l := s2.List()
	if len(l) != 2 || l[0].Name != "data1" && l[1].Name != "data1" {
		t.Fatalf("%+v", l)
	}
	if got, err := s2.Get("data1"); err != nil || got.Labels["a"] != "b" || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Fatal(got, err)
	}
	if _, err := os.Stat(filepath.Join(root, ".new-123")); !os.IsNotExist(err) {
		t.Fatal("half-made volume left:", err)
	}

	if err := s2.Acquire("data1", "ctr1"); err != nil {
		t.Fatal(err)
	}
	err = s2.Remove("data1")
	if !errdefs.Is(err, errdefs.KindConflict) || err.Error() != "remove data1: volume is in use - [ctr1]" {
		t.Fatal(err)
	}
	s2.Release("data1", "ctr1")
	if err := s2.Remove("data1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("data1"); !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "get data1: no such volume" {
		t.Fatal(err)
	}
	if err := s2.Remove("data1"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data1")); !os.IsNotExist(err) {
		t.Fatal("data left:", err)
	}
}

func TestBadInput(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "-x", "a/b", "../x", ".hidden", "x y", "a:b"} {
		if _, _, err := s.Create(n, "", nil, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%q: %v", n, err)
		}
	}
	_, _, err = s.Create("x/y", "", nil, nil)
	if want := `create x/y: "x/y" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`; err == nil || err.Error() != want {
		t.Errorf("got %v", err)
	}
	for _, o := range []map[string]string{{"foo": "bar"}, {"type": "tmpfs"}, {"device": "tmpfs"}} {
		if _, _, err := s.Create("ok1", "", o, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%v: %v", o, err)
		}
	}
	if _, _, err := s.Create("ok1", "nfs-plugin", nil, nil); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Error(err)
	}
	if len(s.List()) != 0 {
		t.Fatal(s.List())
	}
}

// Driver options mount at the first user and unmount after the last.
func TestOptionsMount(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create("tmp1", "", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount("tmp1", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountIfMounted(s.Path("tmp1")); _ = unmountIfMounted(s.Path("bind1")) })
	if _, err := s.Mount("tmp1", "b"); err != nil {
		t.Fatal(err)
	}
	if !isMountpoint(p) {
		t.Fatal("not mounted")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), p+" ") || !strings.Contains(string(mi), "size=1024k") {
		t.Fatalf("tmpfs options not applied:\n%s", mi)
	}
	if had, err := s.Unmount("tmp1", "a"); err != nil || !had || !isMountpoint(p) || s.Mounted("tmp1") != 1 {
		t.Fatal("unmounted with a user left", err)
	}
	if had, _ := s.Unmount("tmp1", "a"); had {
		t.Fatal("a second unmount of the same user")
	}
	if _, err := s.Unmount("tmp1", "b"); err != nil || isMountpoint(p) {
		t.Fatal("still mounted", err)
	}
	// A daemon that died with the volume mounted: the next Open sees the
	// mount, and with no user it goes.
	if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(filepath.Dir(filepath.Dir(p)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.UnmountUnused(); err != nil || isMountpoint(p) {
		t.Fatal("left mounted", err)
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create("bind1", "", map[string]string{"type": "none", "device": src, "o": "bind,ro"}, nil); err != nil {
		t.Fatal(err)
	}
	p, err = s.Mount("bind1", "a")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "hello")); err != nil || string(b) != "hi" {
		t.Fatal(string(b), err)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o644); err == nil {
		t.Fatal("wrote through a read-only bind")
	}
	// Removing is refused while referenced, and takes the mount with it.
	if err := s.Acquire("bind1", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("bind1"); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatal(err)
	}
	s.Release("bind1", "a")
	if err := s.Remove("bind1"); err != nil {
		t.Fatal(err)
	}
	if isMountpoint(p) {
		t.Fatal("mount left after remove")
	}
	if _, err := os.Stat(filepath.Join(src, "hello")); err != nil {
		t.Fatal("remove went through the bind into its source:", err)
	}
	if err := s.Remove("tmp1"); err != nil {
		t.Fatal(err)
	}

	// Something mounted on a plain volume's data (left by a dead daemon
	// or an admin) comes off before the removal: the mounted tree stays.
	if _, _, err := s.Create("plain1", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, s.Path("plain1"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("plain1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "hello")); err != nil {
		t.Fatal("remove went into a mount on the volume:", err)
	}
	if _, _, err := s.Create("bad1", "", map[string]string{"type": "none", "device": "/nonexistent", "o": "bind"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("bad1", "a"); err == nil || !strings.Contains(err.Error(), "error while mounting volume") {
		t.Fatal(err)
	}
}

func TestCopyUp(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := t.TempDir()
	data := filepath.Join(rootfs, "data")
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "sub", "f"), []byte("image content"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(data, "sub", "f"), 123, 456); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "suid"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "suid"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(data, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := os.Chtimes(filepath.Join(data, "sub", "f"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(data, "sub"), old, old); err != nil {
		t.Fatal(err)
	}
	// A symlink in the image pointing out of its root is resolved inside.
	if err := os.Symlink("/etc", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}

	dst := t.TempDir()
	if ok, err := CopyUp(rootfs, "/data", dst); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "f")); err != nil || string(b) != "image content" {
		t.Fatal(string(b), err)
	}
	fi, _ := os.Stat(filepath.Join(dst, "sub", "f"))
	if fi.Mode().Perm() != 0o640 {
		t.Fatal(fi.Mode())
	}
	if st := statT(t, filepath.Join(dst, "sub", "f")); st[0] != 123 || st[1] != 456 {
		t.Fatal("owner", st)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "/etc/passwd" {
		t.Fatal(l, err)
	}
	if fi, _ := os.Stat(dst); fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatal("dst mode", fi.Mode())
	}
	for p, want := range map[string]os.FileMode{"sub": os.ModeDir | 0o750, "suid": 0o755 | os.ModeSetuid, "fifo": os.ModeNamedPipe | 0o640} {
		if fi, err := os.Lstat(filepath.Join(dst, p)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, want %v (%v)", p, fi.Mode(), want, err)
		}
	}
	for _, p := range []string{"sub", "sub/f"} {
		if fi, err := os.Lstat(filepath.Join(dst, p)); err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v (%v)", p, fi.ModTime(), err)
		}
	}
	// Not empty any more: nothing is copied again.
	if ok, err := CopyUp(rootfs, "/data", dst); ok || err != nil {
		t.Fatal(ok, err)
	}

	dst2 := t.TempDir()
	if ok, err := CopyUp(rootfs, "/escape", dst2); err != nil || ok {
		t.Fatal("followed a symlink out of the root:", ok, err)
	}
	if ents, _ := os.ReadDir(dst2); len(ents) != 0 {
		t.Fatal("copied from outside the root:", ents)
	}
	if ok, err := CopyUp(rootfs, "/missing", dst2); ok || err != nil {
		t.Fatal(ok, err)
	}
	// A volume directory that is a symlink is not followed.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dst2, link); err != nil {
		t.Fatal(err)
	}
	if ok, err := CopyUp(rootfs, "/data", link); ok || err == nil {
		t.Fatal("copied through a symlink", ok, err)
	}
}

func statT(t *testing.T, p string) [2]uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint32{st.Uid, st.Gid}
}

package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCopyPath(t *testing.T) {
	for _, c := range []struct{ in, abs, dir, base, name string }{
		{"/etc/passwd", "/etc/passwd", "/etc/", "passwd", "passwd"},
		{"etc/passwd", "/etc/passwd", "/etc/", "passwd", "passwd"},
		{"/etc/", "/etc/", "/etc/", "", "etc"},
		{"/etc/.", "/etc/.", "/etc/", "", "."},
		{"/", "/", "/", "", "/"},
		{".", "/.", "/", "", "."},
		{"/../../etc//x/../hostname", "/etc/hostname", "/etc/", "hostname", "hostname"},
	} {
		p, err := ParseCopyPath(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if p.Abs != c.abs || p.Dir != c.dir || p.Base != c.base || p.Name() != c.name {
			t.Errorf("%q: got %+v name %q, want %s %s %s %s", c.in, p, p.Name(), c.abs, c.dir, c.base, c.name)
		}
	}
	for _, bad := range []string{"", "a\x00b"} {
		if _, err := ParseCopyPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestCopyStaysInRoot: stat, link targets and tars of paths whose
// symlinks point above the root resolve inside it; the canary beside the
// root is never reached.
func TestCopyStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	canary := filepath.Join(base, "canary")
	for _, d := range []string{root + "/etc", root + "/d/sub", canary} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(canary, "secret"), []byte("host"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/secret"), []byte("ctr"), 0o644))
	must(os.WriteFile(filepath.Join(root, "d/sub/f"), []byte("f"), 0o600))
	must(os.Symlink("../../../canary", filepath.Join(root, "d/up")))
	must(os.Symlink("/etc", filepath.Join(root, "abs")))
	must(os.Symlink("loop2", filepath.Join(root, "loop1")))
	must(os.Symlink("loop1", filepath.Join(root, "loop2")))
	rfd := openRoot(t, root)

	// "up" leads to /canary inside the root, which does not exist.
	p, _ := ParseCopyPath("/d/up/secret")
	if _, err := StatIn(rfd, p); !os.IsNotExist(err) {
		t.Fatalf("stat through a symlink above the root: %v", err)
	}
	p, _ = ParseCopyPath("/abs/secret")
	st, err := StatIn(rfd, p)
	if err != nil || st.Size != 3 {
		t.Fatalf("stat through an absolute symlink: %+v %v", st, err)
	}
	p, _ = ParseCopyPath("/d/up")
	if st, err = StatIn(rfd, p); err != nil || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/canary" {
		t.Fatalf("stat of the symlink: %+v %v", st, err)
	}
	if got, err := EvalIn(rfd, "/abs/secret"); err != nil || got != "/etc/secret" {
		t.Fatalf("EvalIn: %q %v", got, err)
	}
	if _, err := EvalIn(rfd, "/loop1"); err == nil {
		t.Fatal("EvalIn of a symlink loop did not fail")
	}

	// The tar of a directory: names from the given name down, the
	// symlinks as symlinks, sorted.
	p, _ = ParseCopyPath("/d")
	pfd, err := OpenParent(rfd, p)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	var b bytes.Buffer
	if err := WriteCopy(&b, pfd, p.Base, "renamed"); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("%s:%c:%s", h.Name, h.Typeflag, h.Linkname))
	}
	want := "renamed/:5:,renamed/sub/:5:,renamed/sub/f:0:,renamed/up:2:../../../canary"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("tar names:\n%s\nwant\n%s", got, want)
	}
}

// TestCopyOfRoot: the root's tar is named as dockerd names it, "/" and
// "/x".
func TestCopyOfRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCopy(&b, openRoot(t, root), "", "/"); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, ","); got != "/,/f" {
		t.Fatalf("names: %s", got)
	}
}

// TestApplyIntoDir: Dir puts entries below a directory of the root; names
// that climb out of it are refused, symlinks resolve in the root, and
// NoOverwriteDirNonDir and Owner do what they say.
func TestApplyIntoDir(t *testing.T) {
	testRequireRoot(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tmp/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	apply := func(o ApplyOptions, hs ...*tar.Header) error {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write([]byte("x"))
			}
		}
		_ = tw.Close()
		_, err := Apply(t.Context(), root, &b, o)
		return err
	}
	o := ApplyOptions{Dir: "tmp", NoOverwriteDirNonDir: true, Owner: &Owner{UID: 1234, GID: 4321}}
	if err := apply(o, &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}); err == nil {
		t.Fatal("../ out of the directory accepted")
	}
	if err := apply(o, &tar.Header{Name: "dir", Typeflag: tar.TypeReg, Mode: 0o644}); err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Fatalf("a file over a directory: %v", err)
	}
	if err := apply(o, &tar.Header{Name: "e", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		&tar.Header{Name: "e/new", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "etc/new"), &st); err != nil || st.Uid != 1234 || st.Gid != 4321 {
		t.Fatalf("through the symlink, owned by Owner: %+v %v", st, err)
	}
}

func testRequireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
}

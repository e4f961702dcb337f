package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
)

// makeTree fills dir with one of everything a layer can carry.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	w := func(p, body string, mode os.FileMode) {
		must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), []byte(body), mode))
		must(t, os.Chmod(filepath.Join(dir, p), mode))
	}
	w("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	w("etc/shadow", "root:*:1::::::\n", 0o640)
	must(t, os.Chown(filepath.Join(dir, "etc/shadow"), 0, 42))
	w("bin/tool", strings.Repeat("\x7fELF", 300000), 0o755)
	must(t, os.Chmod(filepath.Join(dir, "bin/tool"), 0o4755|os.ModeSetuid))
	must(t, unix.Chmod(filepath.Join(dir, "bin/tool"), 0o4755))
	must(t, unix.Setxattr(filepath.Join(dir, "bin/tool"), "security.capability", fileCapNetBind, 0))
	must(t, os.Link(filepath.Join(dir, "bin/tool"), filepath.Join(dir, "bin/tool-hard")))
	must(t, os.Symlink("tool", filepath.Join(dir, "bin/alias")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "bin/abs")))
	must(t, unix.Lsetxattr(filepath.Join(dir, "bin/abs"), "trusted.berth", []byte("on a symlink"), 0))
	w("home/user/notes", "n", 0o600)
	must(t, os.Chown(filepath.Join(dir, "home/user/notes"), 1000, 1000))
	must(t, os.Chown(filepath.Join(dir, "home/user"), 1000, 1000))
	must(t, unix.Setxattr(filepath.Join(dir, "home/user/notes"), "user.tag", []byte("blue"), 0))
	must(t, os.Mkdir(filepath.Join(dir, "tmp"), 0o755))
	must(t, unix.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	must(t, os.MkdirAll(filepath.Join(dir, "dev"), 0o755))
	must(t, unix.Setxattr(filepath.Join(dir, "dev"), "trusted.berth", []byte("on a dir"), 0))
	must(t, unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(dir, "dev/loopx"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	must(t, unix.Mkfifo(filepath.Join(dir, "dev/fifo"), 0o600))
	must(t, unix.Chmod(filepath.Join(dir, "dev/null"), 0o666))
	w("var/lib/deep/"+strings.Repeat("long", 60), "long name", 0o644)
	w("opt/app/data/a", "a", 0o644)
	w("opt/app/data/b", "b", 0o644)
	must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o700))
	must(t, os.Mkdir(filepath.Join(dir, "setgid"), 0o755))
	must(t, unix.Chmod(filepath.Join(dir, "setgid"), 0o2775))
	// Times in whole seconds, some in the past, as image files are.
	old := time.Unix(1500000000, 0)
	must(t, os.Chtimes(filepath.Join(dir, "etc/passwd"), old, old))
	must(t, unix.Lutimes(filepath.Join(dir, "bin/abs"), []unix.Timeval{{Sec: 1400000000}, {Sec: 1400000000}}))
}

// seconds drops the sub-second part of every mtime: layers carry seconds.
func seconds(s map[string]node) map[string]node {
	for k, n := range s {
		n.MTime = n.MTime / 1e9 * 1e9
		s[k] = n
	}
	return s
}

func cpa(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

// TestRoundTrip writes a tree with WriteTree and applies it elsewhere.
func TestRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	makeTree(t, src)
	must(t, unix.Mknod(filepath.Join(src, "sock"), unix.S_IFSOCK|0o755, 0))
	var buf bytes.Buffer
	must(t, WriteTree(&buf, src))
	must(t, os.Remove(filepath.Join(src, "sock"))) // sockets are skipped
	want := seconds(scan(t, src))

	// Docker's format: PAX, seconds, no atime/ctime or names, one link.
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	links := 0
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: header %+v", h.Name, h)
		}
		if h.Typeflag == tar.TypeLink {
			links++
			if h.Name != "bin/tool-hard" || h.Linkname != "bin/tool" {
				t.Errorf("link %s -> %s", h.Name, h.Linkname)
			}
		}
	}
	if links != 1 {
		t.Errorf("%d hardlink entries, want 1", links)
	}
	var again bytes.Buffer
	must(t, WriteTree(&again, src))
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("two WriteTree runs of the same tree differ")
	}

	dst := t.TempDir()
	if _, err := applyBytes(t, dst, buf.Bytes(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	got := scan(t, dst)
	if d := diffTrees(want, got, false); len(d) > 0 {
		t.Errorf("round trip differs:\n%s", strings.Join(d, "\n"))
	}
	if g := hardlinkGroups(got); len(g) != 1 || g[0] != "bin/tool=bin/tool-hard" {
		t.Errorf("hardlinks %v", g)
	}

	// GNU tar reads our format to the same tree.
	gnu := t.TempDir()
	cmd := exec.Command("tar", "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*", "-C", gnu, "-xf", "-")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, out)
	}
	if d := diffTrees(want, scan(t, gnu), true); len(d) > 0 {
		t.Errorf("GNU tar extracts another tree:\n%s", strings.Join(d, "\n"))
	}
}

// mutate makes the same set of changes in any tree (a copy or an overlay
// mount) and returns what TreeChanges/OverlayChanges must report.
func mutate(t *testing.T, dir string) []string {
	t.Helper()
	p := func(s string) string { return filepath.Join(dir, s) }
	must(t, os.WriteFile(p("etc/passwd"), []byte("root:x:0:0::/root:/bin/bash\n"), 0o644)) // C
	must(t, os.Chmod(p("etc/shadow"), 0o600))                                              // C (mode)
	must(t, os.WriteFile(p("etc/new"), []byte("new"), 0o644))                              // A
	must(t, os.Remove(p("bin/alias")))                                                     // D
	must(t, os.Symlink("other", p("bin/alias2")))                                          // A
	must(t, os.RemoveAll(p("opt/app/data")))                                               // D (dir tree)
	must(t, os.RemoveAll(p("var/lib/deep")))                                               // opaque dir on overlay
	must(t, os.Mkdir(p("var/lib/deep"), 0o750))
	must(t, os.WriteFile(p("var/lib/deep/fresh"), []byte("fresh"), 0o644))
	must(t, os.Remove(p("home/user/notes")))
	must(t, os.Mkdir(p("home/user/notes"), 0o700)) // file replaced by a dir
	must(t, unix.Setxattr(p("etc/passwd"), "user.changed", []byte("1"), 0))
	return nil
}

func changeList(cs []Change) string {
	var s []string
	for _, c := range cs {
		x := c.String()
		if c.Opaque {
			x += " (opaque)"
		}
		s = append(s, x)
	}
	return strings.Join(s, "\n")
}

func TestTreeChanges(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	must(t, os.Mkdir(lower, 0o755))
	makeTree(t, lower)
	upper := filepath.Join(base, "upper")
	cpa(t, lower, upper)

	none, err := TreeChanges(lower, upper)
	if err != nil || len(none) != 0 {
		t.Fatalf("a copy has changes: %v\n%s", err, changeList(none))
	}
	all, err := TreeChanges("", lower)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(scan(t, lower)); len(all) != n {
		t.Errorf("base layer lists %d changes, the tree has %d paths", len(all), n)
	}
	for _, c := range all {
		if c.Kind != ChangeAdd {
			t.Errorf("base layer change %s", c)
		}
	}

	mutate(t, upper)
	changes, err := TreeChanges(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"C /bin", "D /bin/alias", "A /bin/alias2",
		"C /etc", "A /etc/new", "C /etc/passwd", "C /etc/shadow",
		"C /home", "C /home/user", "C /home/user/notes",
		"C /opt", "C /opt/app", "D /opt/app/data",
		"C /var", "C /var/lib", "C /var/lib/deep", "A /var/lib/deep/fresh", "D /var/lib/deep/" + strings.Repeat("long", 60),
	}, "\n")
	if got := changeList(changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}

	// The layer of those changes, applied on a copy of lower, gives upper.
	var layer bytes.Buffer
	must(t, WriteLayer(&layer, upper, changes, WriteOptions{}))
	target := filepath.Join(base, "target")
	cpa(t, lower, target)
	if _, err := applyBytes(t, target, layer.Bytes(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(seconds(scan(t, upper)), seconds(scan(t, target)), false); len(d) > 0 {
		t.Errorf("lower + layer differs from upper:\n%s", strings.Join(d, "\n"))
	}
}

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// sameTree fails t unless the trees a and b are alike in every way a layer
// says: types, modes, owners, sizes, contents, times, symlink targets,
// devices, xattrs and hardlinks. Directories the layer does not list (dirs
// nil: none) were made when needed, overlay whiteouts (0/0 devices) when
// applied: their times are the clock's.
func sameTree(t testing.TB, a, b string, dirs map[string]bool) {
	t.Helper()
	sa, sb := scan(t, a), scan(t, b)
	for _, s := range []map[string]node{sa, sb} {
		for k, n := range s {
			if n.Type == "dir" && !dirs[k] || n.Type == "char" && n.Rdev == 0 && n.Mode == 0 {
				n.MTime = 0
				s[k] = n
			}
		}
	}
	if d := diffTrees(sa, sb, false); len(d) > 0 {
		if len(d) > 20 {
			d = d[:20]
		}
		t.Fatalf("trees differ:\n%s", strings.Join(d, "\n"))
	}
	if ha, hb := hardlinkGroups(sa), hardlinkGroups(sb); strings.Join(ha, " ") != strings.Join(hb, " ") {
		t.Fatalf("hardlinks differ: %v and %v", ha, hb)
	}
}

// listedDirs are the directories an uncompressed layer lists.
func listedDirs(t testing.TB, layer []byte) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dirs
		}
		must(t, err)
		if name, err := cleanName(hdr.Name); err == nil && hdr.Typeflag == tar.TypeDir {
			dirs[name] = true
		}
	}
}

// applyBoth applies layer onto fresh roots sequentially and with parallel
// file creation: both must fail or give the same tree and Result.
func applyBoth(t *testing.T, layer []byte, opts ApplyOptions) error {
	t.Helper()
	seq, par := t.TempDir(), t.TempDir()
	rs, err := applyBytes(t, seq, layer, opts)
	opts.Parallel = 4
	rp, perr := applyBytes(t, par, layer, opts)
	if (err == nil) != (perr == nil) {
		t.Fatalf("sequential: %v, parallel: %v", err, perr)
	}
	if err != nil {
		if err.Error() != perr.Error() {
			t.Errorf("errors differ: %v and %v", err, perr)
		}
		return err
	}
	if rs != rp {
		t.Errorf("results differ: %+v and %+v", rs, rp)
	}
	sameTree(t, seq, par, listedDirs(t, layer))
	return nil
}

// files makes n small files in each of dirs directories, so that workers
// have files in flight when the entries of interest come.
func files(prefix string, dirs, n int) []ent {
	var out []ent
	for d := range dirs {
		dir := prefix + string(rune('a'+d)) + "/"
		out = append(out, ent{name: dir, typ: tar.TypeDir, mode: 0o750})
		for i := range n {
			out = append(out, ent{name: dir + string(rune('a'+i)), body: strings.Repeat("x", i*100), mode: 0o640, uid: d, gid: i})
		}
	}
	return out
}

func TestApplyParallelSameTree(t *testing.T) {
	testutil.RequireRoot(t)
	big := strings.Repeat("b", parallelMaxSize+1)
	cat := func(parts ...[]ent) []ent {
		var out []ent
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := map[string][]ent{
		"plain": cat(files("d", 6, 20), []ent{
			{name: "top", body: "t", mode: 0o4755, xattrs: map[string]string{"user.a": "1", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "trusted.overlay.opaque": "y"}},
			{name: "big", body: big}, {name: "empty"}, {name: "implicit/parent/f", body: "x"},
			{name: "sl", typ: tar.TypeSymlink, link: "da/a"}, {name: "fifo", typ: tar.TypeFifo},
			{name: "dev", typ: tar.TypeChar}, {name: "da/", typ: tar.TypeDir, mode: 0o700},
		}),
		"duplicates": cat(files("d", 3, 10), []ent{
			{name: "da/a", body: "again"}, {name: "db/b", typ: tar.TypeDir},
			{name: "db/b/x", body: "x"}, {name: "dc/c", typ: tar.TypeSymlink, link: "nowhere"},
			{name: "dup", body: "1"}, {name: "dup", body: "22"}, {name: "dup", body: "333", mode: 0o600},
		}),
		"directory replaced": cat(files("d", 3, 10), []ent{
			{name: "da", body: "now a file"}, {name: "db", typ: tar.TypeSymlink, link: "dc"},
			{name: "db/new", body: "through the symlink"}, {name: "dc/after", body: "y"},
		}),
		"whiteouts": cat(files("d", 3, 10), []ent{
			{name: "da/.wh.a"}, {name: "db/.wh..wh..opq"}, {name: "db/new", body: "n"},
			{name: ".wh.dc"}, {name: "dc", body: "back"}, {name: "da/a", body: "back"},
		}),
		"hardlinks": cat(files("d", 3, 10), []ent{
			{name: "h1", typ: tar.TypeLink, link: "da/a"}, {name: "db/h2", typ: tar.TypeLink, link: "dc/j"},
			{name: "dc/j", body: "replaced"}, {name: "h3", typ: tar.TypeLink, link: "dc/j"},
		}),
		"symlinked parents": cat([]ent{
			{name: "usr/", typ: tar.TypeDir}, {name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
			{name: "usr/lib/", typ: tar.TypeDir}, {name: "usr/lib/a", body: "a"},
			{name: "lib/a", body: "through"}, {name: "lib/b", body: "b"}, {name: "usr/lib/b", body: "direct"},
		}, files("d", 2, 5)),
		"parent is a file":      cat(files("d", 2, 5), []ent{{name: "da/a/x", body: "x"}}),
		"parent is a file deep": cat(files("d", 2, 5), []ent{{name: "f", body: "f"}, {name: "f/x/y", body: "x"}}),
		"uid out of range":      cat(files("d", 2, 5), []ent{{name: "da/z", body: "x", uid: 1 << 32}}),
		"xattr too big":         cat(files("d", 2, 5), []ent{{name: "db/z", body: "x", xattrs: map[string]string{"user.big": strings.Repeat("v", 70000)}}}),
	}
	for name, ents := range cases {
		for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
			t.Run(name+map[WhiteoutMode]string{WhiteoutDelete: "", WhiteoutOverlay: " overlay"}[mode], func(t *testing.T) {
				err := applyBoth(t, mktar(t, ents...), ApplyOptions{Whiteouts: mode})
				t.Logf("Apply: %v", err)
				if strings.HasPrefix(name, "parent is a file") || name == "uid out of range" || name == "xattr too big" {
					if err == nil || !strings.Contains(err.Error(), "layer entry") {
						t.Errorf("error %v, want one naming the entry", err)
					}
				} else if err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestApplyParallelDebian applies the Debian rootfs layer both ways.
func TestApplyParallelDebian(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("short")
	}
	tmpl, err := testutil.DebianTemplate()
	if err != nil {
		t.Skipf("no Debian rootfs: %v", err)
	}
	var buf bytes.Buffer
	must(t, WriteTree(&buf, tmpl))
	if err := applyBoth(t, buf.Bytes(), ApplyOptions{MaxFiles: 100000, MaxBytes: 1 << 30}); err != nil {
		t.Fatal(err)
	}
}

// cancelingReader cancels its context once n bytes were read.
type cancelingReader struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestApplyParallelCanceled: a cancel stops the workers, and Apply leaves
// no goroutine or descriptor behind.
func TestApplyParallelCanceled(t *testing.T) {
	testutil.RequireRoot(t)
	layer := mktar(t, files("d", 20, 26)...)
	fds := func() int {
		e, err := os.ReadDir("/proc/self/fd")
		must(t, err)
		return len(e)
	}
	before, routines := fds(), runtime.NumGoroutine()
	for _, at := range []int{1, 20000, len(layer) / 2} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Apply(ctx, t.TempDir(), &cancelingReader{r: bytes.NewReader(layer), n: at, cancel: cancel}, ApplyOptions{Parallel: 4})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled after %d bytes: %v", at, err)
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d descriptors open, %d before", after, before)
	}
	// The read-ahead goroutine may end just after Apply: give it a moment.
	for i := 0; runtime.NumGoroutine() > routines && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > routines {
		t.Errorf("%d goroutines, %d before", n, routines)
	}
}

// TestApplyParallelLimits: MaxFiles and MaxBytes count as before.
func TestApplyParallelLimits(t *testing.T) {
	testutil.RequireRoot(t)
	layer := mktar(t, files("d", 4, 10)...)
	for _, o := range []ApplyOptions{{MaxFiles: 30}, {MaxFiles: 44}, {MaxBytes: 20000}, {MaxBytes: int64(len(layer))}} {
		applyBoth(t, layer, o)
	}
}

// TestApplyParallelNotEmpty: a root with something in it is applied
// sequentially, as a replacement of what is there needs.
func TestApplyParallelNotEmpty(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	must(t, os.Mkdir(root+"/d", 0o755))
	must(t, os.WriteFile(root+"/d/f", []byte("old"), 0o644))
	if _, err := applyBytes(t, root, mktar(t, ent{name: "d/f", body: "new"}), ApplyOptions{Parallel: 4}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(root + "/d/f"); string(b) != "new" {
		t.Errorf("d/f = %q", b)
	}
	if emptyDir(openRoot(t, root)) {
		t.Error("emptyDir of a root with d in it")
	}
	if !emptyDir(openRoot(t, t.TempDir())) {
		t.Error("emptyDir of an empty directory is false")
	}
}

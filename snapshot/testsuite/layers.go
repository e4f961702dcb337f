package testsuite

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/archive"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/store"
)

var applyOpts = archive.ApplyOptions{}

func isErofs(err error) bool { return errors.Is(err, unix.EROFS) }

// entry is one tar entry: a name ending in "/" is a directory, a Link a
// symlink, otherwise a file with Body.
type entry struct {
	Name, Body, Link string
}

func tarball(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Mode: 0o644, Uid: 0, Gid: 0}
		switch {
		case strings.HasSuffix(e.Name, "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case e.Link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// applied makes committed snapshot name on parent from a layer tar.
func applied(t *testing.T, d snapshot.Driver, name, parent string, entries ...entry) {
	t.Helper()
	key := name + "-active"
	prepare(t, d, key, parent)
	if _, err := d.Apply(ctx, key, tarball(t, entries...), applyOpts); err != nil {
		t.Fatalf("apply %s: %v", name, err)
	}
	commit(t, d, name, key)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (s *suite) testWhiteouts(t *testing.T) {
	d := s.driver(t)
	applied(t, d, "l1", "",
		entry{Name: "a/"}, entry{Name: "a/keep", Body: "k"}, entry{Name: "a/gone", Body: "g"},
		entry{Name: "d/"}, entry{Name: "d/old", Body: "o"}, entry{Name: "d/sub/"}, entry{Name: "d/sub/deep", Body: "x"},
		entry{Name: "f", Body: "f"}, entry{Name: "l", Link: "a/keep"})
	applied(t, d, "l2", "l1",
		entry{Name: "a/.wh.gone"},
		entry{Name: "d/"}, entry{Name: "d/.wh..wh..opq"}, entry{Name: "d/new", Body: "n"},
		entry{Name: ".wh.f"}, entry{Name: "f2", Body: "f2"})
	prepare(t, d, "c", "l2")
	root, unmount := mount(t, d, "c")
	for _, p := range []string{"a/keep", "d/new", "f2", "l"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s is missing", p)
		}
	}
	for _, p := range []string{"a/gone", "d/old", "d/sub", "f", "a/.wh.gone", "d/.wh..wh..opq", ".wh.f"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s is there, want it deleted by a whiteout", p)
		}
	}
	if got := read(t, filepath.Join(root, "l")); got != "k" {
		t.Errorf("symlink l reads %q", got)
	}
	// The lower layer still has it all.
	lower, _ := mount(t, d, "l1")
	for _, p := range []string{"a/gone", "d/old", "d/sub/deep", "f"} {
		if !exists(filepath.Join(lower, p)) {
			t.Errorf("l1 lost %s", p)
		}
	}
	// Whiteouts applied onto the container itself (not mounted: an
	// overlay's upper directory must not change under it).
	unmount()
	if _, err := d.Apply(ctx, "c", tarball(t, entry{Name: "a/.wh.keep"}, entry{Name: ".wh.d"}), applyOpts); err != nil {
		t.Fatal(err)
	}
	root, _ = mount(t, d, "c")
	if exists(filepath.Join(root, "a/keep")) || exists(filepath.Join(root, "d")) {
		t.Error("whiteouts applied onto a container do not show")
	}
	if !exists(filepath.Join(root, "a")) {
		t.Error("a/ went with its whited-out child")
	}
}

// tree describes every path under root: type, mode, owner, and content or
// link target; directory times are left out (they change with entries).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha=%x mtime=%d", sha256.Sum256(b), st.Mtim.Sec)
		case unix.S_IFLNK:
			l, _ := os.Readlink(path)
			desc += " -> " + l
		}
		if rel != "." {
			m[rel] = desc
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffTrees(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "only in first: "+k)
		} else if v != w {
			out = append(out, fmt.Sprintf("%s: %s vs %s", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only in second: "+k)
		}
	}
	slices.Sort(out)
	return out
}

func (s *suite) testDiffApply(t *testing.T) {
	d := s.driver(t)
	applied(t, d, "base", "",
		entry{Name: "etc/"}, entry{Name: "etc/conf", Body: "one"}, entry{Name: "etc/drop", Body: "x"},
		entry{Name: "var/"}, entry{Name: "var/cache/"}, entry{Name: "var/cache/a", Body: "a"}, entry{Name: "var/cache/b", Body: "b"},
		entry{Name: "keep", Body: "keep"})
	prepare(t, d, "c", "base")
	root, unmount := mount(t, d, "c")
	write(t, filepath.Join(root, "etc/conf"), "two")                    // modify
	write(t, filepath.Join(root, "new/dir/file"), "added")              // add
	must(t, os.Remove(filepath.Join(root, "etc/drop")))                 // delete
	must(t, os.RemoveAll(filepath.Join(root, "var/cache")))             // delete a dir...
	write(t, filepath.Join(root, "var/cache/c"), "c")                   // ...and make it again (opaque)
	must(t, os.Symlink("../keep", filepath.Join(root, "etc/keeplink"))) // add a symlink
	must(t, os.Chmod(filepath.Join(root, "keep"), 0o600))               // metadata only
	want := tree(t, root)
	unmount()

	ch, ok := d.(snapshot.Changer)
	if !ok {
		t.Fatalf("%T is no snapshot.Changer", d)
	}
	changes, err := ch.Changes(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range changes {
		listed = append(listed, c.String())
	}
	for _, c := range []string{"C /etc/conf", "A /new/dir/file", "D /etc/drop", "A /etc/keeplink", "C /keep"} {
		if !slices.Contains(listed, c) {
			t.Errorf("changes lack %q: %v", c, listed)
		}
	}

	var layerTar bytes.Buffer
	if err := d.Diff(ctx, "c", &layerTar); err != nil {
		t.Fatalf("diff: %v", err)
	}
	names := tarNames(t, layerTar.Bytes())
	for _, n := range []string{"etc/conf", "new/dir/file", "etc/keeplink", "keep", "var/cache/c"} {
		if !slices.Contains(names, n) {
			t.Errorf("the diff lacks %s: %v", n, names)
		}
	}
	if !slices.Contains(names, "etc/.wh.drop") {
		t.Errorf("the diff has no whiteout for etc/drop: %v", names)
	}
	opaque := slices.Contains(names, "var/cache/.wh..wh..opq")
	if !opaque && !(slices.Contains(names, "var/cache/.wh.a") && slices.Contains(names, "var/cache/.wh.b")) {
		t.Errorf("the diff neither marks var/cache opaque nor whites out its old files: %v", names)
	}
	if slices.Contains(names, "var/cache/a") {
		t.Errorf("the diff has files that did not change: %v", names)
	}

	prepare(t, d, "c2", "base")
	if _, err := d.Apply(ctx, "c2", bytes.NewReader(layerTar.Bytes()), applyOpts); err != nil {
		t.Fatalf("apply the diff: %v", err)
	}
	root2, _ := mount(t, d, "c2")
	if diffs := diffTrees(want, tree(t, root2)); len(diffs) > 0 {
		t.Errorf("the diff applied on the same parent gives another tree:\n%s", strings.Join(diffs, "\n"))
	}
	// The diff of an untouched snapshot is an empty layer.
	prepare(t, d, "empty", "base")
	var empty bytes.Buffer
	if err := d.Diff(ctx, "empty", &empty); err != nil {
		t.Fatal(err)
	}
	if n := tarNames(t, empty.Bytes()); len(n) != 0 {
		t.Errorf("diff of an untouched snapshot: %v", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read the diff: %v", err)
			}
			return names
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/"))
	}
}

func (s *suite) testUsage(t *testing.T) {
	d := s.driver(t)
	big := strings.Repeat("x", 1<<20)
	applied(t, d, "base", "", entry{Name: "big", Body: big}, entry{Name: "dir/"}, entry{Name: "dir/a", Body: "a"}, entry{Name: "dir/b", Body: "b"})
	u, err := d.Usage(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	if u.Inodes != 4 || u.Size < 1<<20 {
		t.Errorf("base usage %+v, want 4 inodes and at least 1 MiB", u)
	}
	prepare(t, d, "c", "base")
	u, err = d.Usage(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if u.Inodes != 0 || u.Size != 0 {
		t.Errorf("an untouched snapshot uses %+v", u)
	}
	if _, err := d.Apply(ctx, "c", tarball(t, entry{Name: "small", Body: strings.Repeat("y", 64<<10)}), applyOpts); err != nil {
		t.Fatal(err)
	}
	u, err = d.Usage(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if u.Inodes != 1 || u.Size < 64<<10 || u.Size >= 1<<20 {
		t.Errorf("usage %+v after adding one 64 KiB file, want 1 inode, 64 KiB..1 MiB", u)
	}
}

// testCrash stops Prepare, Commit and Remove half way as a dying process
// would, reopens the root and checks that the debris is gone and the rest
// intact.
func (s *suite) testCrash(t *testing.T) {
	if s.opts.Reopen == nil {
		t.Skip("the driver gives the suite no Reopen")
	}
	d := s.newDriver(t)
	rooter, ok := d.(Rooter)
	if !ok {
		t.Fatalf("%T has no Root()", d)
	}
	root := rooter.Root()
	layer(t, d, "base", "", func(r string) { write(t, filepath.Join(r, "f"), "base") })
	prepare(t, d, "intact", "base")
	prepare(t, d, "commit-me", "base")
	prepare(t, d, "remove-me", "base")

	crashAt := func(stage string, op func() error) {
		t.Helper()
		store.CrashPoint = func(s string) bool { return s == stage }
		defer func() { store.CrashPoint = nil }()
		if err := op(); !errors.Is(err, store.ErrCrashed) {
			t.Fatalf("crash at %s: %v", stage, err)
		}
	}
	crashAt("prepare", func() error { _, err := d.Prepare(ctx, "half", "base"); return err })
	crashAt("prepare-meta", func() error { _, err := d.Prepare(ctx, "half2", ""); return err })
	crashAt("commit", func() error { return d.Commit(ctx, "committed", "commit-me") })
	crashAt("remove", func() error { return d.Remove(ctx, "remove-me") })
	// And debris no driver made: a snapshot directory without metadata,
	// and one whose parent is gone.
	must(t, os.MkdirAll(filepath.Join(root, "snapshots", "junk", "fs"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "snapshots", "orphan", "fs"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "snapshots", "orphan", "meta.json"),
		[]byte(`{"key":"orphan","parent":"gone","kind":"active","created":"2026-01-01T00:00:00Z"}`), 0o600))
	if n := countDir(t, filepath.Join(root, "tmp")); n != 3 {
		t.Errorf("%d entries in tmp/ after three crashes, want 3: the test does not crash as it thinks", n)
	}
	must(t, d.Close())

	d2, err := s.opts.Reopen(root)
	if err != nil {
		t.Fatalf("reopen after the crashes: %v", err)
	}
	t.Cleanup(func() { d2.Close() })
	m := keys(t, d2)
	want := map[string]snapshot.Kind{"base": snapshot.KindCommitted, "intact": snapshot.KindActive, "commit-me": snapshot.KindActive}
	if len(m) != len(want) {
		t.Errorf("after reopen: %v, want %v", m, want)
	}
	for k, kind := range want {
		if m[k].Kind != kind {
			t.Errorf("after reopen %s is %v, want %s", k, m[k].Kind, kind)
		}
	}
	if n := countDir(t, filepath.Join(root, "tmp")); n != 0 {
		t.Errorf("%d entries left in tmp/ after reopen", n)
	}
	if n := countDir(t, filepath.Join(root, "snapshots")); n != 3 {
		t.Errorf("%d snapshot directories after reopen, want 3", n)
	}
	r, _ := mount(t, d2, "intact")
	if got := read(t, filepath.Join(r, "f")); got != "base" {
		t.Errorf("intact reads %q after reopen", got)
	}
	// The interrupted operations work now.
	commit(t, d2, "committed", "commit-me")
	prepare(t, d2, "half", "base")
	must(t, d2.Remove(ctx, "half"))
}

func countDir(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

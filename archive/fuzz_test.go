package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// FuzzApply feeds arbitrary bytes to Apply as a layer onto root, a
// directory beside a canary tree: whatever Apply makes of them, success or
// error, nothing outside root may appear or change.
//
//	go test -run '^$' -fuzz FuzzApply -fuzztime 2m ./archive/
//
// Each input makes and removes a few directories: with TMPDIR on a tmpfs
// it runs at thousands of inputs a second, on a busy ext4 /tmp at a few.
func FuzzApply(f *testing.F) {
	for _, ents := range [][]ent{
		{{name: "etc/", typ: tar.TypeDir}, {name: "etc/passwd", body: "root"}, {name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"}},
		{{name: "../outside/file", body: "pwned"}},
		{{name: "up", typ: tar.TypeSymlink, link: ".."}, {name: "up/outside/file", body: "pwned"}},
		{{name: "abs", typ: tar.TypeSymlink, link: "/"}, {name: "abs/outside/x", body: "pwned"}},
		{{name: "l", typ: tar.TypeSymlink, link: "../outside"}, {name: "l/.wh.file"}, {name: "l/sub/.wh..wh..opq"}},
		{{name: "h", typ: tar.TypeLink, link: "../outside/file"}},
		{{name: "s", typ: tar.TypeSymlink, link: "../outside/file"}, {name: "h", typ: tar.TypeLink, link: "s"}, {name: "h", body: "x"}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/f", body: "x"}, {name: "d", typ: tar.TypeSymlink, link: "../outside"}, {name: "d/f2", body: "x"}},
		{{name: "c", typ: tar.TypeChar}, {name: "f", typ: tar.TypeFifo}, {name: "d/.wh..wh..opq"}, {name: ".wh.d"}},
	} {
		b := mktar(f, ents...)
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add(compressWith(f, "gzip", mktar(f, ent{name: "a/b/c", body: "x"})), false)
	f.Add(compressWith(f, "zstd", mktar(f, ent{name: "a/../../b", body: "x"})), true)
	f.Fuzz(func(t *testing.T, layer []byte, overlay bool) {
		testutil.RequireRoot(t)
		dir := t.TempDir()
		root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
		must(t, os.Mkdir(root, 0o755))
		must(t, os.MkdirAll(filepath.Join(outside, "sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(outside, "file"), []byte("precious"), 0o644))
		before := scan(t, outside)
		parent := filepath.Dir(dir)
		siblings := names(t, parent)

		mode := WhiteoutDelete
		if overlay {
			mode = WhiteoutOverlay
		}
		Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{
			Whiteouts: mode, MaxFiles: 2000, MaxBytes: 16 << 20,
		})

		if d := diffTrees(before, scan(t, outside), false); len(d) > 0 {
			t.Fatalf("outside the root changed:\n%s", strings.Join(d, "\n"))
		}
		if got := names(t, dir); got != "outside root" {
			t.Fatalf("beside the root: %s", got)
		}
		if got := names(t, parent); got != siblings {
			t.Fatalf("the test's temporary directory changed: %s, was %s", got, siblings)
		}
	})
}

func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var s []string
	for _, e := range entries {
		s = append(s, e.Name())
	}
	return strings.Join(s, " ")
}

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path"
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
	f.Fuzz(func(t *testing.T, layer []byte, overlay bool) { applyJailed(t, layer, overlay) })
}

// FuzzApplyEntries fuzzes the entries rather than the bytes, so that the
// fuzzer spends its time on names, links and types instead of on tar
// checksums. Each line of spec is an entry: a type letter (f file, d dir,
// l symlink, h hardlink, c char device, p fifo, w whiteout) then the name,
// then for links a tab and the target.
func FuzzApplyEntries(f *testing.F) {
	for _, spec := range []string{
		"d etc\nf etc/passwd\nl bin/sh\tbusybox",
		"l up\t..\nf up/outside/file",
		"l a\tb/..\nl b\tc/../..\nd c\nf a/outside/file",
		"l abs\t/\nf abs/outside/x\nh h\tabs/outside/file",
		"l s\t../outside/file\nh h\ts\nf h\nf s",
		"d d\nf d/f\nl d\t../outside\nf d/f2\nw d/f2\nw d/.wh..opq",
		"l l\t../outside\nw l/file\nw l/sub/.wh..opq\nc l/c\np l/p",
	} {
		f.Add(spec, false)
		f.Add(spec, true)
	}
	f.Fuzz(func(t *testing.T, spec string, overlay bool) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, line := range strings.Split(spec, "\n") {
			if len(line) < 3 {
				continue
			}
			name, link, _ := strings.Cut(line[2:], "\t")
			h := &tar.Header{Name: name, Linkname: link, Mode: 0o755, ModTime: fixedTime, Format: tar.FormatPAX}
			switch line[0] {
			case 'd':
				h.Typeflag = tar.TypeDir
			case 'l':
				h.Typeflag = tar.TypeSymlink
			case 'h':
				h.Typeflag = tar.TypeLink
			case 'c':
				h.Typeflag = tar.TypeChar
			case 'p':
				h.Typeflag = tar.TypeFifo
			case 'w':
				dir, base := path.Split(name)
				h.Name, h.Typeflag = dir+whiteoutPrefix+base, tar.TypeReg
			default:
				h.Typeflag, h.Size = tar.TypeReg, 5
			}
			if tw.WriteHeader(h) != nil {
				return
			}
			if h.Size > 0 {
				tw.Write([]byte("pwned"))
			}
		}
		if tw.Close() != nil {
			return
		}
		applyJailed(t, buf.Bytes(), overlay)
	})
}

// applyJailed applies layer onto a root beside a canary tree and fails t
// if anything outside the root appeared or changed.
func applyJailed(t *testing.T, layer []byte, overlay bool) {
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
	opts := ApplyOptions{Whiteouts: mode, MaxFiles: 2000, MaxBytes: 16 << 20}
	_, err := Apply(context.Background(), root, bytes.NewReader(layer), opts)
	// The same with parallel file creation, beside: it must end the same.
	par := filepath.Join(dir, "par")
	must(t, os.Mkdir(par, 0o755))
	opts.Parallel = 3
	_, perr := Apply(context.Background(), par, bytes.NewReader(layer), opts)

	if d := diffTrees(before, scan(t, outside), false); len(d) > 0 {
		t.Fatalf("outside the root changed:\n%s", strings.Join(d, "\n"))
	}
	if (err == nil) != (perr == nil) {
		t.Fatalf("sequential: %v, parallel: %v", err, perr)
	}
	if err == nil {
		sameTree(t, root, par, nil)
	}
	if got := names(t, dir); got != "outside par root" {
		t.Fatalf("beside the root: %s", got)
	}
	if got := names(t, parent); got != siblings {
		t.Fatalf("the test's temporary directory changed: %s, was %s", got, siblings)
	}
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

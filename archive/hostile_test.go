package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
)

// jail is a temporary directory holding the root Apply writes to and,
// beside it, "outside": a canary tree that must never change.
type jail struct {
	dir, root, outside string
	before             map[string]node
}

func newJail(t *testing.T) *jail {
	t.Helper()
	dir := t.TempDir()
	j := &jail{dir: dir, root: filepath.Join(dir, "root"), outside: filepath.Join(dir, "outside")}
	must(t, os.Mkdir(j.root, 0o755))
	must(t, os.Mkdir(j.outside, 0o755))
	must(t, os.WriteFile(filepath.Join(j.outside, "file"), []byte("precious"), 0o644))
	must(t, os.Mkdir(filepath.Join(j.outside, "sub"), 0o755))
	j.before = scan(t, j.outside)
	return j
}

// check fails t when anything outside the root changed.
func (j *jail) check(t *testing.T) {
	t.Helper()
	if d := diffTrees(j.before, scan(t, j.outside), false); len(d) > 0 {
		t.Errorf("outside the root changed:\n%s", strings.Join(d, "\n"))
	}
	entries, err := os.ReadDir(j.dir)
	must(t, err)
	if len(entries) != 2 {
		t.Errorf("the temporary directory holds %d entries, want root and outside", len(entries))
	}
}

func TestApplyHostile(t *testing.T) {
	testutil.RequireRoot(t)
	long := strings.Repeat("n", 256)
	deep := strings.Repeat("d/", 2100) + "f"
	cases := []struct {
		name string
		// pre prepares the root; ents builds the tar (o is the outside dir).
		pre  func(t *testing.T, j *jail)
		ents func(o string) []ent
		// errPart, when set, must appear in the error (with the entry's
		// name); "" means Apply may succeed as long as nothing escapes.
		errPart string
		after   func(t *testing.T, j *jail)
	}{
		{name: "dotdot", ents: func(o string) []ent {
			return []ent{{name: "../outside/file", body: "pwned"}}
		}, errPart: `"../outside/file": name points outside the root`},
		{name: "dotdot inside", ents: func(o string) []ent {
			return []ent{{name: "a/../../outside/new", body: "pwned"}}
		}, errPart: "points outside the root"},
		{name: "absolute contained", ents: func(o string) []ent {
			return []ent{{name: o + "/file", body: "pwned"}}
		}, after: func(t *testing.T, j *jail) {
			b, err := os.ReadFile(filepath.Join(j.root, j.outside, "file"))
			if err != nil || string(b) != "pwned" {
				t.Errorf("absolute name not placed under the root: %v %q", err, b)
			}
		}},
		{name: "symlink absolute then through", ents: func(o string) []ent {
			return []ent{{name: "link", typ: tar.TypeSymlink, link: o}, {name: "link/file", body: "pwned"}, {name: "link/sub/new", body: "pwned"}}
		}},
		{name: "symlink relative then through", ents: func(o string) []ent {
			return []ent{{name: "link", typ: tar.TypeSymlink, link: "../../../../../../../../.." + o}, {name: "link/file", body: "pwned"}}
		}},
		{name: "symlink dotdot then through", ents: func(o string) []ent {
			return []ent{{name: "up", typ: tar.TypeSymlink, link: ".."}, {name: "up/outside/file", body: "pwned"}, {name: "up/outside/sub/x", typ: tar.TypeDir}}
		}},
		{name: "symlink chain", ents: func(o string) []ent {
			return []ent{
				{name: "a", typ: tar.TypeSymlink, link: "b/.."}, {name: "b", typ: tar.TypeSymlink, link: "c/../.."},
				{name: "c", typ: tar.TypeDir}, {name: "a/outside/file", body: "pwned"},
			}
		}},
		{name: "symlink already in root", pre: preSymlinks, ents: func(o string) []ent {
			return []ent{{name: "pre/file", body: "pwned"}}
		}},
		{name: "relative symlink already in root", pre: preSymlinks, ents: func(o string) []ent {
			return []ent{{name: "rel/file", body: "pwned"}}
		}},
		{name: "whiteout through symlink in root", pre: preSymlinks, ents: func(o string) []ent {
			return []ent{{name: "rel/.wh.file"}, {name: "pre/.wh.sub"}}
		}},
		{name: "opaque through symlink in root", pre: preSymlinks, ents: func(o string) []ent {
			return []ent{{name: "rel/sub/.wh..wh..opq"}}
		}},
		{name: "hardlink to outside through symlink in root", pre: preSymlinks, ents: func(o string) []ent {
			return []ent{{name: "h", typ: tar.TypeLink, link: "rel/file"}}
		}, errPart: "no such file"},
		{name: "symlink replaced by dir", ents: func(o string) []ent {
			return []ent{{name: "e", typ: tar.TypeDir}, {name: "l", typ: tar.TypeSymlink, link: "e"}, {name: "l/x", body: "x"},
				{name: "l", typ: tar.TypeDir}, {name: "l/y", body: "y"}}
		}, after: func(t *testing.T, j *jail) {
			if _, err := os.Stat(filepath.Join(j.root, "l/y")); err != nil {
				t.Errorf("l/y did not go into the new directory l: %v", err)
			}
			if _, err := os.Stat(filepath.Join(j.root, "e/y")); err == nil {
				t.Errorf("l/y went through the old symlink into e")
			}
		}},
		{name: "dir replaced by symlink inside", ents: func(o string) []ent {
			return []ent{{name: "e", typ: tar.TypeDir}, {name: "d", typ: tar.TypeDir}, {name: "d/f", body: "x"},
				{name: "d", typ: tar.TypeSymlink, link: "/e"}, {name: "d/g", body: "y"}}
		}, after: func(t *testing.T, j *jail) {
			if b, err := os.ReadFile(filepath.Join(j.root, "e/g")); err != nil || string(b) != "y" {
				t.Errorf("d/g did not go through the new symlink d -> /e: %v", err)
			}
		}},
		{name: "file over escaping symlink", ents: func(o string) []ent {
			return []ent{{name: "s", typ: tar.TypeSymlink, link: o + "/file"}, {name: "s", body: "pwned"}}
		}, after: func(t *testing.T, j *jail) {
			if n := stat(t, filepath.Join(j.root, "s")); n.Type != "file" {
				t.Errorf("s is a %s, want the file that replaced the symlink", n.Type)
			}
		}},
		{name: "dir replaced by symlink", ents: func(o string) []ent {
			return []ent{{name: "d", typ: tar.TypeDir}, {name: "d/f", body: "x"}, {name: "d", typ: tar.TypeSymlink, link: o}, {name: "d/file", body: "pwned"}}
		}},
		{name: "hardlink dotdot", ents: func(o string) []ent {
			return []ent{{name: "h", typ: tar.TypeLink, link: "../outside/file"}}
		}, errPart: "points outside the root"},
		{name: "hardlink absolute", ents: func(o string) []ent {
			return []ent{{name: "h", typ: tar.TypeLink, link: o + "/file"}}
		}, errPart: `"h"`},
		{name: "hardlink through symlink", ents: func(o string) []ent {
			return []ent{{name: "l", typ: tar.TypeSymlink, link: o}, {name: "h", typ: tar.TypeLink, link: "l/file"}}
		}, errPart: `"h"`},
		{name: "hardlink to escaping symlink", ents: func(o string) []ent {
			return []ent{{name: "s", typ: tar.TypeSymlink, link: o + "/file"}, {name: "h", typ: tar.TypeLink, link: "s"}, {name: "h", body: "pwned"}}
		}, after: func(t *testing.T, j *jail) {
			if n := stat(t, filepath.Join(j.root, "s")); n.Type != "symlink" {
				t.Errorf("s is a %s", n.Type)
			}
		}},
		{name: "whiteout through symlink", ents: func(o string) []ent {
			return []ent{{name: "l", typ: tar.TypeSymlink, link: o}, {name: "l/.wh.file"}, {name: "l/.wh.sub"}}
		}},
		{name: "opaque through symlink", ents: func(o string) []ent {
			return []ent{{name: "l", typ: tar.TypeSymlink, link: o}, {name: "l/.wh..wh..opq"}}
		}, errPart: "not a directory"},
		{name: "whiteout dotdot", ents: func(o string) []ent {
			return []ent{{name: "a/.wh.."}}
		}, errPart: "whiteout"},
		{name: "long component", ents: func(o string) []ent {
			return []ent{{name: "a/" + long, body: "x"}}
		}, errPart: "longer than NAME_MAX"},
		{name: "long path", ents: func(o string) []ent {
			return []ent{{name: deep, body: "x"}}
		}, errPart: "longer than PATH_MAX"},
		{name: "long symlink target", ents: func(o string) []ent {
			return []ent{{name: "l", typ: tar.TypeSymlink, link: deep}}
		}, errPart: "longer than PATH_MAX"},
		{name: "uid out of range", ents: func(o string) []ent {
			return []ent{{name: "f", body: "x", uid: 1 << 32}}
		}, errPart: "out of range"},
		{name: "parent is a file", ents: func(o string) []ent {
			return []ent{{name: "f", body: "x"}, {name: "f/g", body: "y"}}
		}, errPart: "not a directory"},
	}
	for _, c := range cases {
		for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
			for _, par := range []int{0, 3} {
				if par > 0 && c.pre != nil {
					continue // Parallel is for a fresh, empty root
				}
				name := c.name + map[WhiteoutMode]string{WhiteoutDelete: "", WhiteoutOverlay: " overlay"}[mode]
				if par > 0 {
					name += " parallel"
				}
				t.Run(name, func(t *testing.T) {
					j := newJail(t)
					if c.pre != nil {
						c.pre(t, j)
					}
					b := mktar(t, c.ents(j.outside)...)
					_, err := applyBytes(t, j.root, b, ApplyOptions{Whiteouts: mode, Parallel: par})
					t.Logf("Apply: %v", err)
					if c.errPart != "" {
						if err == nil || !strings.Contains(err.Error(), c.errPart) {
							t.Errorf("error %v, want one with %q", err, c.errPart)
						}
						if !strings.Contains(err.Error(), "layer entry") {
							t.Errorf("error %v does not name the entry", err)
						}
					}
					j.check(t)
					if c.after != nil && err == nil {
						c.after(t, j)
					}
				})
			}
		}
	}
}

func preSymlinks(t *testing.T, j *jail) {
	must(t, os.Symlink(j.outside, filepath.Join(j.root, "pre")))
	must(t, os.Symlink("../outside", filepath.Join(j.root, "rel")))
}

func TestApplyLimits(t *testing.T) {
	var ents []ent
	for i := range 20 {
		ents = append(ents, ent{name: "f" + string(rune('a'+i)), body: "x"})
	}
	b := mktar(t, ents...)
	if _, err := applyBytes(t, t.TempDir(), b, ApplyOptions{MaxFiles: 10}); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "more than the limit of 10 entries") {
		t.Errorf("MaxFiles: %v", err)
	}
	if _, err := applyBytes(t, t.TempDir(), b, ApplyOptions{MaxFiles: 20}); err != nil {
		t.Errorf("MaxFiles at the count: %v", err)
	}
	// A decompression bomb: 64 MiB of zeros in a file, a few KiB gzipped.
	bomb := mktar(t, ent{name: "zeros", body: string(make([]byte, 64<<20))})
	gz := compressWith(t, "gzip", bomb)
	if len(gz) > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(gz))
	}
	root := t.TempDir()
	_, err := applyBytes(t, root, gz, ApplyOptions{MaxBytes: 1 << 20})
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("MaxBytes: %v", err)
	}
	if st, err := os.Stat(filepath.Join(root, "zeros")); err == nil && st.Size() > 1<<20 {
		t.Errorf("wrote %d bytes past the limit", st.Size())
	}
	if _, err := applyBytes(t, t.TempDir(), gz, ApplyOptions{MaxBytes: int64(len(bomb))}); err != nil {
		t.Errorf("MaxBytes at the size: %v", err)
	}
}

func TestApplyTruncated(t *testing.T) {
	b := mktar(t, ent{name: "f", body: strings.Repeat("x", 10000)})
	for _, n := range []int{100, 512 + 5000, len(b) - 1024 - 512} {
		_, err := applyBytes(t, t.TempDir(), b[:n], ApplyOptions{})
		if err == nil {
			t.Errorf("a tar cut at %d bytes applied", n)
		}
	}
	if _, err := applyBytes(t, t.TempDir(), bytes.Repeat([]byte("junk"), 300), ApplyOptions{}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("junk: %v", err)
	}
}

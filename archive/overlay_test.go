package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
)

// mountOverlay mounts lowers (topmost first) and upper at a new directory
// and returns it with the unmount.
func mountOverlay(t *testing.T, upper string, lowers ...string) (string, func()) {
	t.Helper()
	base := t.TempDir()
	mnt, work := filepath.Join(base, "merged"), filepath.Join(base, "work")
	must(t, os.Mkdir(mnt, 0o755))
	must(t, os.Mkdir(work, 0o755))
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlay: %v", err)
	}
	done := false
	unmount := func() {
		if !done {
			done = true
			must(t, unix.Unmount(mnt, 0))
		}
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

// TestOverlayLayer makes changes through a real overlay mount, reads them
// back from the upper directory, and applies the layer both ways: onto a
// copy of the lower tree (delete mode) and into an empty upper directory
// (overlay mode) that, mounted over the same lower, shows the same tree.
func TestOverlayLayer(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	must(t, os.Mkdir(lower, 0o755))
	must(t, os.Mkdir(upper, 0o755))
	makeTree(t, lower)
	mnt, unmount := mountOverlay(t, upper, lower)
	mutate(t, mnt)
	merged := seconds(scan(t, mnt))
	unmount()

	changes, err := OverlayChanges(upper, []string{lower})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"C /bin", "D /bin/alias", "A /bin/alias2",
		"C /etc", "A /etc/new", "C /etc/passwd", "C /etc/shadow",
		// A directory made where a file was deleted is opaque in overlay.
		"C /home", "C /home/user", "C /home/user/notes (opaque)",
		"C /opt", "C /opt/app", "D /opt/app/data",
		"C /var", "C /var/lib", "C /var/lib/deep (opaque)", "A /var/lib/deep/fresh",
	}, "\n")
	if got := changeList(changes); got != want {
		t.Errorf("overlay changes:\n%s\nwant:\n%s", got, want)
	}
	var layer bytes.Buffer
	must(t, WriteLayer(&layer, upper, changes, WriteOptions{}))
	if strings.Contains(layer.String(), "trusted.overlay") {
		t.Errorf("the layer carries overlay's own xattrs")
	}

	t.Run("delete", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "t")
		cpa(t, lower, target)
		if _, err := applyBytes(t, target, layer.Bytes(), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := diffTrees(merged, seconds(scan(t, target)), false); len(d) > 0 {
			t.Errorf("lower + layer differs from the overlay:\n%s", strings.Join(d, "\n"))
		}
	})
	t.Run("overlay", func(t *testing.T) {
		up2 := filepath.Join(t.TempDir(), "upper")
		must(t, os.Mkdir(up2, 0o755))
		if _, err := applyBytes(t, up2, layer.Bytes(), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
			t.Fatal(err)
		}
		if n := stat(t, filepath.Join(up2, "bin/alias")); n.Type != "char" || n.Rdev != 0 {
			t.Errorf("bin/alias in the upper dir is %v, want a 0/0 whiteout", n)
		}
		if !isOpaque(filepath.Join(up2, "var/lib/deep")) {
			t.Errorf("var/lib/deep is not opaque")
		}
		mnt2, _ := mountOverlay(t, up2, lower)
		if d := diffTrees(merged, seconds(scan(t, mnt2)), false); len(d) > 0 {
			t.Errorf("overlay of the applied layer differs:\n%s", strings.Join(d, "\n"))
		}
		// Exporting the mounted overlay (its xattr lists count the hidden
		// trusted.overlay.* names) gives the same tree again.
		var export bytes.Buffer
		must(t, WriteTree(&export, mnt2))
		out := t.TempDir()
		if _, err := applyBytes(t, out, export.Bytes(), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := diffTrees(merged, seconds(scan(t, out)), false); len(d) > 0 {
			t.Errorf("export of the overlay differs:\n%s", strings.Join(d, "\n"))
		}
		// And the layer written back from that upper dir is the same.
		again, err := OverlayChanges(up2, []string{lower})
		if err != nil {
			t.Fatal(err)
		}
		if changeList(again) != want {
			t.Errorf("changes of the applied upper dir:\n%s", changeList(again))
		}
	})
}

// TestApplyWhiteouts checks whiteouts and opaque markers in delete mode,
// with the marker before and after the layer's own entries.
func TestApplyWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	lowerTar := mktar(t,
		ent{name: "d/", typ: '5'}, ent{name: "d/old", body: "old"}, ent{name: "d/sub/", typ: '5'},
		ent{name: "d/sub/old", body: "old"}, ent{name: "d/keep", body: "lower"},
		ent{name: "gone", body: "x"}, ent{name: "tree/a/b/c", body: "x"}, ent{name: "other", body: "o"})
	layers := map[string][]byte{
		"marker first": mktar(t, ent{name: "d/", typ: '5'}, ent{name: "d/.wh..wh..opq"},
			ent{name: "d/keep", body: "upper"}, ent{name: "d/sub/", typ: '5'}, ent{name: "d/sub/new", body: "n"},
			ent{name: ".wh.gone"}, ent{name: ".wh.tree"}),
		"marker last": mktar(t, ent{name: "d/", typ: '5'},
			ent{name: "d/keep", body: "upper"}, ent{name: "d/sub/", typ: '5'}, ent{name: "d/sub/new", body: "n"},
			ent{name: "d/.wh..wh..opq"}, ent{name: ".wh.gone"}, ent{name: ".wh.tree"}),
	}
	for name, layer := range layers {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if _, err := applyBytes(t, root, lowerTar, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := applyBytes(t, root, layer, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for p := range scan(t, root) {
				got = append(got, p)
			}
			want := []string{"d", "d/keep", "d/sub", "d/sub/new", "other"}
			if strings.Join(sorted(got), " ") != strings.Join(want, " ") {
				t.Errorf("tree %v, want %v", sorted(got), want)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "d/keep")); string(b) != "upper" {
				t.Errorf("d/keep = %q", b)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestApplyOpaqueRoot: a layer whose root is opaque hides every lower file.
func TestApplyOpaqueRoot(t *testing.T) {
	testutil.RequireRoot(t)
	lower := t.TempDir()
	must(t, os.WriteFile(filepath.Join(lower, "old"), []byte("old"), 0o644))
	layer := mktar(t, ent{name: ".wh..wh..opq"}, ent{name: "new", body: "new"})

	root := t.TempDir()
	cpa(t, lower+"/old", root+"/old")
	if _, err := applyBytes(t, root, layer, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, root); got != "new" {
		t.Errorf("delete mode: root holds %q", got)
	}

	upper := t.TempDir()
	res, err := applyBytes(t, upper, layer, ApplyOptions{Whiteouts: WhiteoutOverlay})
	if err != nil {
		t.Fatal(err)
	}
	// overlayfs would not hide lower/old for the xattr on its upper root:
	// the driver has to know.
	if !isOpaque(upper) || !res.OpaqueRoot {
		t.Errorf("overlay mode: upper root opaque %v, result %+v", isOpaque(upper), res)
	}
	if res, err := applyBytes(t, t.TempDir(), mktar(t, ent{name: "d/.wh..wh..opq"}), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil || res.OpaqueRoot {
		t.Errorf("an opaque subdirectory: %+v, %v", res, err)
	}
}

// TestOverlayChangesRefusesRedirects: an upper directory whose contents live
// partly below (redirect_dir, metacopy) cannot be written as a layer.
func TestOverlayChangesRefusesRedirects(t *testing.T) {
	testutil.RequireRoot(t)
	for _, c := range []struct{ name, xattr string }{{"dir", "trusted.overlay.redirect"}, {"file", "trusted.overlay.metacopy"}} {
		upper := t.TempDir()
		p := filepath.Join(upper, "x")
		if c.name == "dir" {
			must(t, os.Mkdir(p, 0o755))
		} else {
			must(t, os.WriteFile(p, nil, 0o644))
		}
		if _, err := OverlayChanges(upper, nil); err != nil {
			t.Fatalf("plain %s: %v", c.name, err)
		}
		must(t, unix.Setxattr(p, c.xattr, []byte("/y"), 0))
		if _, err := OverlayChanges(upper, nil); !errdefs.Is(err, errdefs.KindNotImplemented) {
			t.Errorf("%s with %s: %v", c.name, c.xattr, err)
		}
	}
}

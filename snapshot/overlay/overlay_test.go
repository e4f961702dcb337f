package overlay

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/testsuite"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newDriver(t *testing.T) snapshot.Driver {
	d, err := New(filepath.Join(t.TempDir(), "overlay2"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func reopen(root string) (snapshot.Driver, error) {
	d, err := New(root)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, newDriver, testsuite.ChainDepth(130), testsuite.Reopen(reopen))
}

// TestLongOptions checks that a 130-layer chain really needs more than a
// page of mount options (so the suite's deep chain tests that path).
func TestLongOptions(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	parent := ""
	for i := range 130 {
		key := "l" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := d.Prepare(ctx, key+"-a", parent); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx, key, key+"-a"); err != nil {
			t.Fatal(err)
		}
		parent = key
	}
	mounts, err := d.Prepare(ctx, "c", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(mounts[0].Options, ",")); n <= os.Getpagesize() {
		t.Fatalf("130 layers take only %d bytes of options", n)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
}

func TestSupported(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := Supported(dir); err != nil {
		t.Fatalf("overlay on %s: %v", dir, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Supported left %d entries in root", len(ents))
	}
	// A check killed half way left its test overlay mounted: the next one
	// clears it.
	stale := filepath.Join(dir, "overlay-check-123")
	for _, d := range []string{"l", "u", "w", "merged"} {
		if err := os.MkdirAll(filepath.Join(stale, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := snapshot.MountAll([]snapshot.MountSpec{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(stale, "l"), "upperdir=" + filepath.Join(stale, "u"), "workdir=" + filepath.Join(stale, "w"),
	}}}, filepath.Join(stale, "merged")); err != nil {
		t.Fatal(err)
	}
	if err := Supported(dir); err != nil {
		t.Fatalf("overlay on %s with a stale check: %v", dir, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Supported left %d entries in root after a stale check", len(ents))
	}
	// An overlay cannot sit on an overlay.
	var dirs [4]string
	for i := range dirs {
		dirs[i] = filepath.Join(dir, string(rune('a'+i)))
		if err := os.Mkdir(dirs[i], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ov := []snapshot.MountSpec{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + dirs[0], "upperdir=" + dirs[1], "workdir=" + dirs[2]}}}
	if err := snapshot.MountAll(ov, dirs[3]); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(dirs[3]); err != nil {
			t.Error(err)
		}
	}()
	err := Supported(filepath.Join(dirs[3], "root"))
	if !errdefs.Is(err, errdefs.KindUnavailable) || !strings.Contains(err.Error(), "overlayfs") {
		t.Errorf("Supported on an overlay: %v", err)
	}
}

func TestMaxDepth(t *testing.T) {
	testutil.RequireRoot(t)
	defer func(n int) { maxLowers = n }(maxLowers)
	maxLowers = 3
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	parent := ""
	for i := range 3 {
		key := string(rune('a' + i))
		if _, err := d.Prepare(ctx, key+"-a", parent); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx, key, key+"-a"); err != nil {
			t.Fatal(err)
		}
		parent = key
	}
	if _, err := d.Prepare(ctx, "ok", "b"); err != nil {
		t.Errorf("a container on 2 layers: %v", err)
	}
	if _, err := d.Prepare(ctx, "ok2", "c"); err != nil {
		t.Errorf("a container on 3 layers: %v", err)
	}
	if err := d.Commit(ctx, "d", "ok2"); err != nil {
		t.Fatal(err)
	}
	_, err = d.Prepare(ctx, "too-deep", "d")
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("a container on 4 layers with a limit of 3: %v", err)
	}
	if _, err := d.Stat(ctx, "too-deep"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("the refused snapshot exists: %v", err)
	}
}

// TestMountOptions: an overlay upper must hold whole changed files only,
// so the features that write redirects and metadata-only copies are off.
func TestMountOptions(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Supported(t.TempDir()); err != nil { // loads the module
		t.Skip(err)
	}
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, "base", "a"); err != nil {
		t.Fatal(err)
	}
	mounts, err := d.Prepare(ctx, "c", "base")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"index=off", "redirect_dir=off", "metacopy=off"} {
		if !slices.Contains(mounts[0].Options, o) {
			t.Errorf("overlay options %v lack %s", mounts[0].Options, o)
		}
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	defer snapshot.UnmountAll(target)
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(target))
	if err != nil || len(ms) != 1 {
		t.Fatalf("mountinfo: %v %v", ms, err)
	}
	// The kernel shows only what differs from its defaults.
	for _, on := range []string{"index=on", "redirect_dir=on", "redirect_dir=follow", "metacopy=on"} {
		if strings.Contains(ms[0].VFSOptions, on) {
			t.Errorf("the overlay is mounted with %s: %s", on, ms[0].VFSOptions)
		}
	}
}

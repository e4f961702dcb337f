package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func mountedAt(t *testing.T, dir string) []*mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestBindReadOnly(t *testing.T) {
	testutil.RequireRoot(t)
	src, target := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MountAll([]MountSpec{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target)
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "x" {
		t.Errorf("read through the bind: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a ro bind: %v", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if ms := mountedAt(t, target); len(ms) != 0 {
		t.Errorf("still mounted: %v", ms[0].Mountpoint)
	}
	if err := UnmountAll(target); err != nil {
		t.Errorf("UnmountAll of nothing: %v", err)
	}
}

// layers makes n lower directories with long paths, each with its own file
// and a shared one the first layer wins.
func layers(t *testing.T, n int) []string {
	t.Helper()
	base := filepath.Join(t.TempDir(), strings.Repeat("long-path-component-", 3))
	var dirs []string
	for i := range n {
		d := filepath.Join(base, fmt.Sprintf("layer-%04d", i), "fs")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "shared"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func testOverlay(t *testing.T, n int) {
	lowers := layers(t, n)
	upper, work, target := t.TempDir(), t.TempDir(), t.TempDir()
	opts := []string{"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + upper, "workdir=" + work}
	if err := MountAll([]MountSpec{{Type: "overlay", Source: "overlay", Options: opts}}, target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target)
	ents, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n+1 {
		t.Errorf("the overlay shows %d entries, want %d", len(ents), n+1)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "shared")); string(b) != "0" {
		t.Errorf("shared reads %q, want the first lowerdir's", b)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("a write did not go to the upper dir: %v", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
}

func TestOverlaySmall(t *testing.T) {
	testutil.RequireRoot(t)
	testOverlay(t, 3)
}

func TestOverlayPastAPage(t *testing.T) {
	testutil.RequireRoot(t)
	if !lowerdirPlus() {
		t.Skip("kernel has no lowerdir+ (Linux < 6.8)")
	}
	testOverlay(t, 130)
}

func TestOverlayPastAPageOldKernel(t *testing.T) {
	testutil.RequireRoot(t)
	forceFdPaths = true
	defer func() { forceFdPaths = false }()
	testOverlay(t, 130)
}

func TestOverlayTooManyForOldKernels(t *testing.T) {
	testutil.RequireRoot(t)
	forceFdPaths = true
	defer func() { forceFdPaths = false }()
	lowers := layers(t, 300)
	target := t.TempDir()
	err := MountAll([]MountSpec{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":")}}}, target)
	if err == nil {
		UnmountAll(target)
		t.Fatal("300 layers mounted with short paths: the test does not test the limit")
	}
	if !errors.Is(err, unix.E2BIG) {
		t.Errorf("error %v, want E2BIG", err)
	}
}

func TestOverlayBadOptionSaysWhy(t *testing.T) {
	testutil.RequireRoot(t)
	if !lowerdirPlus() {
		t.Skip("kernel has no lowerdir+")
	}
	lowers := layers(t, 130)
	err := MountAll([]MountSpec{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":"), "bogus=1"}}}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("error %v, want one naming the bad option", err)
	}
}

func TestUnmountAllStackedAndNested(t *testing.T) {
	testutil.RequireRoot(t)
	src, target := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	bind := []MountSpec{{Type: "bind", Source: src, Options: []string{"rbind"}}}
	if err := MountAll(append(bind, bind...), target); err != nil {
		t.Fatal(err)
	}
	if err := MountAll([]MountSpec{{Type: "tmpfs", Source: "tmpfs"}}, filepath.Join(target, "sub")); err != nil {
		t.Fatal(err)
	}
	if n := len(mountedAt(t, target)); n != 3 {
		t.Fatalf("%d mounts at the target, want 3", n)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if ms := mountedAt(t, target); len(ms) != 0 {
		t.Errorf("left mounted: %s", ms[0].Mountpoint)
	}
}

func TestUnmountAllBusy(t *testing.T) {
	testutil.RequireRoot(t)
	target := t.TempDir()
	if err := MountAll([]MountSpec{{Type: "tmpfs", Source: "tmpfs"}}, target); err != nil {
		t.Fatal(err)
	}
	// A process with its cwd inside keeps the mount busy: UnmountAll must
	// fail rather than detach it.
	f, err := os.Create(filepath.Join(target, "held"))
	if err != nil {
		t.Fatal(err)
	}
	err = UnmountAll(target)
	f.Close()
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("UnmountAll of a busy mount: %v, want EBUSY", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
}

func TestMountAllUndoesOnFailure(t *testing.T) {
	testutil.RequireRoot(t)
	src, target := t.TempDir(), t.TempDir()
	err := MountAll([]MountSpec{
		{Type: "bind", Source: src, Options: []string{"rbind"}},
		{Type: "bind", Source: filepath.Join(src, "missing"), Options: []string{"rbind"}},
	}, target)
	if err == nil {
		UnmountAll(target)
		t.Fatal("a bind of a missing dir worked")
	}
	if ms := mountedAt(t, target); len(ms) != 0 {
		t.Errorf("MountAll left %d mounts after failing", len(ms))
	}
}

func TestSplitLowerdirs(t *testing.T) {
	got := splitLowerdirs(`/a:/b\:c:/d\\e`)
	want := []string{"/a", "/b:c", `/d\e`}
	if !slices.Equal(got, want) {
		t.Errorf("split = %q, want %q", got, want)
	}
}

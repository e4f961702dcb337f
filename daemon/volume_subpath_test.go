package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// TestSubpathSwapRace binds a subpath while another goroutine keeps
// swapping it between a directory of the volume and a symlink out of it
// (what a container sharing the volume could do between the check and
// the mount). Every bind that succeeds must show the volume's directory,
// never what the symlink points at; the others fail as not accessible.
func TestSubpathSwapRace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	root := t.TempDir()
	vol := filepath.Join(root, "vol")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(vol, "real"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(vol, "real", "inside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// "a" is the directory "real" renamed there, or a symlink to outside.
	a := filepath.Join(vol, "a")
	if err := os.Rename(filepath.Join(vol, "real"), a); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		link, parked := filepath.Join(vol, "link"), filepath.Join(vol, "parked")
		for !stop.Load() {
			// Swap the directory out for a symlink and back, atomically each way.
			_ = os.Symlink(outside, link)
			_ = os.Rename(a, parked)
			_ = os.Rename(link, a)
			_ = os.Rename(a, link)
			_ = os.Rename(parked, a)
			_ = os.Remove(link)
		}
	}()
	mnts := filepath.Join(root, "mnts")
	var bound, refused int
	for i := 0; i < 1000; i++ {
		target, err := bindSubpath(vol, "a", mnts, i)
		if err != nil {
			if !errdefs.Is(err, errdefs.KindNotFound) && !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("bind %d: unexpected error %v", i, err)
			}
			refused++
			continue
		}
		bound++
		_, errIn := os.Stat(filepath.Join(target, "inside"))
		_, errOut := os.Stat(filepath.Join(target, "secret"))
		if errIn != nil || !errors.Is(errOut, os.ErrNotExist) {
			t.Errorf("bind %d shows something other than the volume's directory (inside: %v, secret: %v)", i, errIn, errOut)
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := unbindSubpaths(mnts); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bound, %d refused", bound, refused)
	if bound == 0 {
		t.Error("no bind succeeded: the test checked nothing")
	}
}

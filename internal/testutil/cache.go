package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// CacheDir is where fixtures that are costly to build are kept between test
// runs: $BERTH_TEST_CACHE if set, else /var/cache/berth-test for root, else
// berth-test under the user's cache directory. Delete it to rebuild them all.
func CacheDir() (string, error) {
	dir := os.Getenv("BERTH_TEST_CACHE")
	if dir == "" {
		if os.Geteuid() == 0 {
			dir = "/var/cache/berth-test"
		} else {
			uc, err := os.UserCacheDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(uc, "berth-test")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// lock takes an exclusive flock on file, creating it, and returns the unlock.
// It serialises builds of one fixture across concurrent test binaries.
func lock(file string) (func(), error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", file, err)
	}
	return func() { f.Close() }, nil
}

// cached returns CacheDir()/name, building it first if it does not exist. The
// build writes into a temporary directory beside it that is renamed into
// place only when build succeeds, so a directory under its final name is
// always complete. With stalePrefix, other entries with that prefix (older
// versions of the fixture) are removed after a rebuild.
func cached(name string, build func(dir string) error, stalePrefix string) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(cache, name)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	unlock, err := lock(filepath.Join(cache, name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil // another test binary built it while we waited
	}
	tmp, err := os.MkdirTemp(cache, "."+name+".tmp-")
	if err != nil {
		return "", err
	}
	if err := build(tmp); err != nil {
		removeBuild(tmp)
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		removeBuild(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		removeBuild(tmp)
		return "", err
	}
	if stalePrefix != "" {
		ents, _ := os.ReadDir(cache)
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() && strings.HasPrefix(n, stalePrefix) && n != name {
				removeBuild(filepath.Join(cache, n))
				os.Remove(filepath.Join(cache, n+".lock"))
			}
		}
	}
	return final, nil
}

// removeBuild removes a fixture directory, first detaching anything mounted
// below it (a failed debootstrap can leave /proc or /sys mounted in its
// target). If a mount cannot be detached, nothing is removed: RemoveAll must
// never walk into a mounted host file system.
func removeBuild(dir string) {
	if err := unmountUnder(dir); err != nil {
		fmt.Fprintf(os.Stderr, "testutil: not removing %s: %v\n", dir, err)
		return
	}
	os.RemoveAll(dir)
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Mountpoint)
	}
	// Deepest first, so submounts go before what they sit on.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

func unmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if left, _ := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return nil
}

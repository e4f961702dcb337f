package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DebianSuite is the release DebianRootfs bootstraps.
const DebianSuite = "bookworm"

// DebianMirror is the default mirror; $BERTH_DEBIAN_MIRROR overrides it.
const DebianMirror = "http://deb.debian.org/debian"

// debianTimeout bounds one debootstrap run.
const debianTimeout = 20 * time.Minute

var debianOnce struct {
	sync.Once
	dir string
	err error
}

// DebianTemplate returns the cached, pristine Debian bookworm minbase rootfs
// (CacheDir()/debian-bookworm), running debootstrap first if it is not
// there. Never write into it; use DebianRootfs for a writable copy. The
// first build takes minutes and needs the mirror; later runs reuse it.
// Delete the directory to rebuild.
func DebianTemplate() (string, error) {
	debianOnce.Do(func() {
		debianOnce.dir, debianOnce.err = buildDebian()
	})
	return debianOnce.dir, debianOnce.err
}

func buildDebian() (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("debootstrap needs root")
	}
	db, err := exec.LookPath("debootstrap")
	if err != nil {
		return "", fmt.Errorf("debootstrap is not installed (apt-get install debootstrap)")
	}
	mirror := os.Getenv("BERTH_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = DebianMirror
	}
	return cached("debian-"+DebianSuite, func(dir string) error {
		ctx, cancel := context.WithTimeout(context.Background(), debianTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, db, "--variant=minbase", DebianSuite, dir, mirror)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "debootstrap", "debootstrap.log"))
			return fmt.Errorf("debootstrap --variant=minbase %s %s: %v\n%s\n%s",
				DebianSuite, mirror, err, tail(out.String(), 20), tail(string(log), 20))
		}
		if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "dpkg")); err != nil {
			return fmt.Errorf("debootstrap finished but left no /usr/bin/dpkg: %w", err)
		}
		stamp := fmt.Sprintf("debootstrap --variant=minbase %s %s\nbuilt %s in %s\n",
			DebianSuite, mirror, time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
		return os.WriteFile(filepath.Join(dir, ".berth-test-stamp"), []byte(stamp), 0o644)
	}, "")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DebianRootfs returns a writable Debian bookworm minbase root file system
// (debootstrap --variant=minbase bookworm DIR http://deb.debian.org/debian)
// for t. The pristine tree is built once and cached (DebianTemplate); each
// call gets its own copy: an overlay mount whose upper layer lives in t's
// temporary directory and which is unmounted when t ends, or a cp -a copy
// when overlayfs is not available (or BERTH_TEST_ROOTFS_COPY=cp). It skips t
// with the reason when not root or when debootstrap cannot run.
func DebianRootfs(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	tmpl, err := DebianTemplate()
	if err != nil {
		t.Skipf("no Debian rootfs: %v", err)
	}
	return writableCopy(t, tmpl)
}

// writableCopy gives t its own writable view of the read-only tree tmpl.
func writableCopy(t testing.TB, tmpl string) string {
	t.Helper()
	base := t.TempDir()
	dst := filepath.Join(base, "rootfs")
	if os.Getenv("BERTH_TEST_ROOTFS_COPY") != "cp" {
		upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
		for _, d := range []string{dst, upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		opts := "lowerdir=" + tmpl + ",upperdir=" + upper + ",workdir=" + work
		err := syscall.Mount("overlay", dst, "overlay", 0, opts)
		if err == nil {
			t.Cleanup(func() {
				if err := syscall.Unmount(dst, 0); err != nil {
					if err := syscall.Unmount(dst, syscall.MNT_DETACH); err != nil {
						t.Errorf("unmount rootfs overlay %s: %v", dst, err)
					}
				}
			})
			return dst
		}
		t.Logf("overlay mount failed (%v); copying the rootfs instead", err)
		for _, d := range []string{dst, upper, work} {
			os.RemoveAll(d)
		}
	}
	if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	return dst
}

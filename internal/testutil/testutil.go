// Package testutil holds the fixtures berth's tests share: root file systems
// built on this machine without the internet, bundles, root checks, and the
// real peers berth is tested against (a private dockerd, a docker-registry
// with TLS, basic or token auth).
package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips t, saying why, unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts and cgroups")
	}
}

// BusyboxBinary is the static busybox that Debian's busybox-static installs.
const BusyboxBinary = "/bin/busybox"

var busyboxOnce struct {
	sync.Once
	dir string
	err error
}

// busyboxLayout versions what writeBusyboxRootfs writes; bump it when that
// changes so cached templates are rebuilt.
const busyboxLayout = "1"

// busyboxTemplate returns a pristine busybox rootfs that BusyboxRootfs copies
// from. It is cached under CacheDir() as busybox-<hash>, where the hash
// covers the busybox binary and busyboxLayout, so it is rebuilt when either
// changes and no per-test-binary temporary directory is left behind.
func busyboxTemplate() (string, error) {
	busyboxOnce.Do(func() {
		busyboxOnce.dir, busyboxOnce.err = cachedBusyboxTemplate()
	})
	return busyboxOnce.dir, busyboxOnce.err
}

// BusyboxTemplate returns the cached pristine busybox rootfs that
// BusyboxRootfs copies: read it, never change it (benches layer images on it).
func BusyboxTemplate() (string, error) { return busyboxTemplate() }

func cachedBusyboxTemplate() (string, error) {
	bin, err := os.ReadFile(BusyboxBinary)
	if err != nil {
		return "", fmt.Errorf("busybox-static is not installed (apt-get install busybox-static): %w", err)
	}
	sum := sha256.Sum256(append(bin, "layout="+busyboxLayout...))
	name := "busybox-" + hex.EncodeToString(sum[:8])
	return cached(name, func(tmp string) error { return writeBusyboxRootfs(tmp) }, "busybox-")
}

func writeBusyboxRootfs(dir string) error {
	if _, err := os.Stat(BusyboxBinary); err != nil {
		return fmt.Errorf("busybox-static is not installed (apt-get install busybox-static): %w", err)
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root", "home/user", "var", "run", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if out, err := exec.Command("cp", BusyboxBinary, filepath.Join(dir, "bin", "busybox")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy busybox: %v: %s", err, out)
	}
	list, err := exec.Command(BusyboxBinary, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
			"user:x:1000:1000:user:/home/user:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\ndaemon:x:1:\nusers:x:100:user\nuser:x:1000:\nnogroup:x:65534:\n",
		"etc/hostname": "busybox\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// BusyboxRootfs returns a fresh, writable busybox root file system in a
// temporary directory that is removed when t ends. It holds /bin/busybox with
// a relative symlink per applet, /etc/passwd (root, daemon, user 1000,
// nobody), /etc/group and the usual empty mount points.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	tmpl, err := busyboxTemplate()
	if err != nil {
		t.Fatalf("busybox rootfs: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox rootfs: %v: %s", err, out)
	}
	return dst
}

// hybridRoot is the cgroup2 half of a hybrid host.
const hybridRoot = "/sys/fs/cgroup/unified"

// KeepHostCgroups records what a test binary may change host-wide in the
// cgroup trees and returns a function that puts it back: the controllers
// enabled in the hybrid cgroup2 root (hugetlb limits enable them, and a
// cgroup2 half with controllers makes crun refuse the host) and berth's
// default parent (/berth) in each hierarchy, removed when empty.
func KeepHostCgroups() func() {
	before, _ := os.ReadFile(filepath.Join(hybridRoot, "cgroup.subtree_control"))
	return func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
		for _, d := range dirs {
			os.Remove(d) // only when empty
		}
		after, err := os.ReadFile(filepath.Join(hybridRoot, "cgroup.subtree_control"))
		if err != nil {
			return
		}
		was := strings.Fields(string(before))
		for _, c := range strings.Fields(string(after)) {
			if !slices.Contains(was, c) {
				if err := os.WriteFile(filepath.Join(hybridRoot, "cgroup.subtree_control"), []byte("-"+c), 0); err != nil {
					fmt.Fprintf(os.Stderr, "testutil: could not disable %s in %s again: %v\n", c, hybridRoot, err)
				}
			}
		}
	}
}

// terminate sends p SIGTERM and waits until exited is closed, killing p
// when that takes longer than grace.
func terminate(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

// Output runs a command and returns its standard output; its error says
// the command and ends with its standard error.
func Output(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.String(), nil
}

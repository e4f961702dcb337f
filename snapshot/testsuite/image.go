package testsuite

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"berth.dev/berth/archive"
	"berth.dev/berth/internal/testutil"
)

// testImage is a container's life on a real image: a busybox root file
// system as a layer, a container that runs a shell in it (chroot) and
// changes things, its diff, and the image left as it was.
func (s *suite) testImage(t *testing.T) {
	d := s.driver(t)
	var layerTar bytes.Buffer
	if err := archive.WriteTree(&layerTar, testutil.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	prepare(t, d, "image-a", "")
	res, err := d.Apply(ctx, "image-a", &layerTar, applyOpts)
	if err != nil {
		t.Fatalf("apply the busybox layer: %v", err)
	}
	if res.DiffID == "" || res.Size == 0 {
		t.Errorf("apply result %+v", res)
	}
	commit(t, d, "image", "image-a")

	prepare(t, d, "ctr", "image")
	root, unmount := mount(t, d, "ctr")
	out := run(t, root, "echo hi > /hello && rm /bin/ls && rm -r /home/user && mkdir -p /var/log/app && echo $((6*7)) | tee /var/log/app/out")
	if strings.TrimSpace(out) != "42" {
		t.Errorf("the container's shell said %q", out)
	}
	unmount()

	var diff bytes.Buffer
	if err := d.Diff(ctx, "ctr", &diff); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, diff.Bytes())
	for _, n := range []string{"hello", "bin/.wh.ls", "home/.wh.user", "var/log/app/out"} {
		if !slices.Contains(names, n) {
			t.Errorf("the container's diff lacks %s: %v", n, names)
		}
	}
	if slices.Contains(names, "bin/busybox") {
		t.Errorf("the diff carries the unchanged busybox binary: %v", names)
	}

	img, _ := mount(t, d, "image")
	for _, p := range []string{"bin/ls", "home/user"} {
		if !exists(filepath.Join(img, p)) {
			t.Errorf("the image lost %s to its container", p)
		}
	}
	if exists(filepath.Join(img, "hello")) {
		t.Error("the container's file is in the image")
	}
	if u, err := d.Usage(ctx, "ctr"); err != nil || u.Inodes == 0 {
		t.Errorf("container usage %+v, %v", u, err)
	}

}

// run runs a busybox shell script chrooted into root.
func run(t *testing.T, root, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q in %s: %v: %s", script, root, err, stderr.String())
	}
	return string(out)
}

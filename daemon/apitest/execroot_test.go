package apitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// execRootMount is the top mount at dir ("" when dir is no mount point).
func execRootMount(t *testing.T, dir string) (fstype, source string) {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		return "", ""
	}
	return ms[len(ms)-1].FSType, ms[len(ms)-1].Source
}

// TestExecRootTmpfs: an exec root on a disk file system gets the daemon's
// own tmpfs, which outlives a daemon killed while containers run (their
// shims' state is there) and goes with a shutdown that leaves none
// running; an exec root with something in it is left on its disk.
func TestExecRootTmpfs(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(d.execRoot), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skip("the test directory is a tmpfs already: the daemon has nothing to mount")
	}
	if fs, src := execRootMount(t, d.execRoot); fs != "tmpfs" || src != "berth-exec" {
		t.Fatalf("exec root mount: %q %q, want the daemon's tmpfs", fs, src)
	}
	d.mustDocker("run", "-d", "--name", "runs", "busybox", "sleep", "1000")
	d.kill9()
	if fs, _ := execRootMount(t, d.execRoot); fs != "tmpfs" {
		t.Fatal("the exec root's tmpfs went with the killed daemon while a container runs")
	}
	d.start()
	if out := d.mustDocker("exec", "runs", "echo", "restored"); out != "restored\n" {
		t.Fatalf("exec after the restart: %q", out)
	}
	d.mustDocker("rm", "-f", "runs")
	d.stop()
	if fs, _ := execRootMount(t, d.execRoot); fs != "" {
		t.Fatalf("exec root still mounted (%s) after a shutdown with nothing running", fs)
	}

	// Something there already (state of another daemon's containers, a
	// user's files): not hidden under a tmpfs.
	mark := filepath.Join(d.execRoot, "left-here")
	if err := os.WriteFile(mark, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	if fs, _ := execRootMount(t, d.execRoot); fs != "" {
		t.Fatalf("tmpfs (%s) mounted over a non-empty exec root", fs)
	}
	if out := d.mustDocker("run", "--rm", "busybox", "echo", "on-disk"); !strings.Contains(out, "on-disk") {
		t.Fatalf("run with the exec root on disk: %q", out)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatal(err)
	}
}

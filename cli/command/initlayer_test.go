package command_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// scratchArchive writes berthtest/scratch:latest, an image of one layer
// holding /bin/busybox and nothing else (no /etc, /dev, /proc or /sys).
func scratchArchive(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layer")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", filepath.Join(testutil.BusyboxRootfs(t), "bin", "busybox"), filepath.Join(dir, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	out := filepath.Join(t.TempDir(), "scratch.tar")
	if _, err := testutil.DockerArchive(out, []string{"berthtest/scratch:latest"}, []string{"/bin/busybox", "true"}, dir); err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedTar lists a tar's entries (tarNames' lines), sorted.
func sortedTar(t *testing.T, tarball string) string {
	t.Helper()
	lines := strings.Split(tarNames(t, []byte(tarball)), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestInitLayerSameAsDocker: a container of an image without /etc, /dev,
// /proc, /sys shows the same `docker diff` (before and after it ran) and
// the same `docker export` entries on berth as on dockerd, which keeps
// those mount points in an init layer; a commit's layer has only the
// container's own change.
func TestInitLayerSameAsDocker(t *testing.T) {
	requireTools(t)
	archive := scratchArchive(t)
	got := map[string][]string{}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := docker("load", "-i", archive); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() { docker("rm", "-f", "sc"); docker("rmi", "-f", "berthtest/committed") })
			var out []string
			step := func(args ...string) string {
				r := docker(args...)
				if r.code != 0 {
					t.Fatalf("docker %v: %s", args, r)
				}
				return r.out
			}
			step("create", "--name", "sc", "berthtest/scratch", "/bin/busybox", "sh", "-c", "echo x > /new")
			out = append(out, "diff created:\n"+step("diff", "sc"), "export created:\n"+sortedTar(t, step("export", "sc")))
			step("start", "-a", "sc")
			out = append(out, "diff exited:\n"+step("diff", "sc"), "export exited:\n"+sortedTar(t, step("export", "sc")))
			step("commit", "sc", "berthtest/committed")
			// The committed image's top layer, through a container of it
			// that changes nothing: its diff is empty, its export has
			// the new file and the init layer's entries.
			step("rm", "sc")
			step("create", "--name", "sc", "berthtest/committed")
			out = append(out, "diff of committed:\n"+step("diff", "sc"), "export of committed:\n"+sortedTar(t, step("export", "sc")))
			got[dd.name] = out
		})
	}
	if !sameOnBoth(t, got) {
		return
	}
	if !strings.Contains(strings.Join(got["berth"], "\n"), ".dockerenv") {
		t.Errorf("no init layer in berth's export:\n%s", strings.Join(got["berth"], "\n"))
	}
}

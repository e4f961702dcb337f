package apitest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestVolumesFromBinds: --volumes-from passes on the source's host binds
// (-v and --mount type=bind, and those it inherited) with its volumes, not
// its tmpfs; :ro makes them read-only, :rw cannot make a read-only one
// writable; the new container's own bind on a destination wins; inspect
// shows them as dockerd 20.10 does (binds without Mode).
func TestVolumesFromBinds(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	host, other := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(host, "f"), "host\n")
	writeFile(t, filepath.Join(other, "f"), "other\n")
	d.mustDocker("create", "--name", "src", "-v", host+":/b:ro", "-v", host+":/b2", "--tmpfs", "/t",
		"--mount", "type=bind,src="+host+",dst=/b3", "-v", "fromv:/n", "busybox", "true")
	defer d.docker("volume", "rm", "-f", "fromv")

	mounts := `grep -E " /(b|b2|b3|t|n) " /proc/self/mounts | cut -d" " -f2,4 | cut -d, -f1`
	if out := d.mustDocker("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c", mounts+"| sort; cat /b/f"); out != "/b ro\n/b2 rw\n/b3 rw\n/n rw\nhost\n" {
		t.Errorf("mounts from src:\n%s", out)
	}
	if out := d.mustDocker("run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c", mounts+"| sort"); out != "/b ro\n/b2 ro\n/b3 ro\n/n ro\n" {
		t.Errorf("mounts from src:ro:\n%s", out)
	}
	if out, code := d.exitCode("run", "--rm", "--volumes-from", "src:rw", "busybox", "touch", "/b/x"); code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Errorf("src:rw made a read-only bind writable: exit %d %s", code, out)
	}
	if out := d.mustDocker("run", "--rm", "--volumes-from", "src", "-v", other+":/b", "busybox", "cat", "/b/f"); out != "other\n" {
		t.Errorf("own bind over an inherited one: %q", out)
	}

	d.mustDocker("create", "--name", "mid", "--volumes-from", "src", "busybox", "true")
	if out := d.mustDocker("run", "--rm", "--volumes-from", "mid", "busybox", "cat", "/b3/f"); out != "host\n" {
		t.Errorf("binds inherited twice: %q", out)
	}
	var got []container.MountPoint
	if err := json.Unmarshal([]byte(d.mustDocker("inspect", "-f", "{{json .Mounts}}", "mid")), &got); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b container.MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	vol := filepath.Join(d.dataRoot, "volumes", "fromv", "_data")
	want := []container.MountPoint{
		{Type: "bind", Source: host, Destination: "/b", RW: false, Propagation: "rprivate"},
		{Type: "bind", Source: host, Destination: "/b2", RW: true, Propagation: "rprivate"},
		{Type: "bind", Source: host, Destination: "/b3", RW: true, Propagation: "rprivate"},
		{Type: "volume", Name: "fromv", Source: vol, Destination: "/n", Driver: "local", RW: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("inspect Mounts of mid:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Errorf("a write went through a read-only bind")
	}
}

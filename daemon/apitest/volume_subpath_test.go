package apitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVolumeSubpath: --mount volume-subpath mounts a directory or a file
// inside the volume, following symlinks that stay inside it; symlinks out
// of it, missing paths, paths that climb out and subpaths of anonymous
// volumes are refused in dockerd's words; API 1.44 refuses the field; docker
// cp of a stopped container sees the subpath; nothing stays mounted.
func TestVolumeSubpath(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("volume", "create", "sv")
	defer d.docker("volume", "rm", "-f", "sv")
	d.mustDocker("run", "--rm", "-v", "sv:/v", "busybox", "sh", "-c",
		"mkdir -p /v/sub/deep && echo hi > /v/sub/f && ln -s /etc /v/abs && ln -s ../../../.. /v/up && ln -s sub /v/inner")
	mnt := func(sub string) string { return "type=volume,src=sv,dst=/m,volume-subpath=" + sub }

	for sub, want := range map[string]string{"sub": "deep\nf\nhi\n", "inner": "deep\nf\nhi\n", "sub/f": "hi\n"} {
		cmd := "ls /m; cat /m/f"
		if sub == "sub/f" {
			cmd = "cat /m"
		}
		if out := d.mustDocker("run", "--rm", "--mount", mnt(sub), "busybox", "sh", "-c", cmd); out != want {
			t.Errorf("subpath %s: %q, want %q", sub, out, want)
		}
	}
	// Writes land in the subpath.
	d.mustDocker("run", "--rm", "--mount", mnt("sub/deep"), "busybox", "sh", "-c", "echo w > /m/new")
	if b, err := os.ReadFile(filepath.Join(d.dataRoot, "volumes", "sv", "_data", "sub", "deep", "new")); err != nil || string(b) != "w\n" {
		t.Errorf("write through the subpath: %q %v", b, err)
	}

	data := filepath.Join(d.dataRoot, "volumes", "sv", "_data")
	for sub, want := range map[string]string{
		"abs":    "path concatenation escapes the base directory, base: " + data + ", subpath: abs",
		"up":     "path concatenation escapes the base directory, base: " + data + ", subpath: up",
		"nosuch": "cannot access path " + data + "/nosuch: lstat " + data + "/nosuch: no such file or directory",
		"../x":   `invalid mount config for type "volume": subpath must be a relative path within the volume`,
		"/etc":   `invalid mount config for type "volume": subpath must be a relative path within the volume`,
	} {
		out, code := d.exitCode("run", "--rm", "--mount", mnt(sub), "busybox", "true")
		if code == 0 || !strings.Contains(out, "Error response from daemon: "+want+"\n") {
			t.Errorf("subpath %s: exit %d:\n%s\nwant %q", sub, code, out, want)
		}
	}
	out, _ := d.exitCode("run", "--rm", "--mount", "type=volume,dst=/m,volume-subpath=a", "busybox", "true")
	mustContain(t, "anonymous volume with a subpath", out, `invalid mount config for type "volume": must not set Subpath when using anonymous volumes`)

	body := `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"sv","Target":"/m","VolumeOptions":{"Subpath":"sub"}}]}}`
	resp := d.curl("-i", "-XPOST", "-H", "Content-Type: application/json", "-d", body, "http://x/v1.44/containers/create")
	mustContain(t, "API 1.44", resp, "400 Bad Request", `{"message":"VolumeOptions.Subpath needs API v1.45 or newer"}`)

	d.mustDocker("create", "--name", "cpsub", "--mount", mnt("sub"), "busybox", "true")
	if out := d.mustDocker("cp", "cpsub:/m/f", "-"); !strings.Contains(out, "hi\n") {
		t.Errorf("docker cp through the subpath of a stopped container: %q", out)
	}
	d.mustDocker("rm", "cpsub")
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), d.dataRoot) {
		t.Errorf("mounts left under the data root:\n%s", b)
	}
}

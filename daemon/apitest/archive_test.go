package apitest

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestContainerCopy drives docker cp both ways against berth: files,
// directories, a bind mount, a symlink (as is and with -L), tar streams on
// stdin and stdout, a stopped container, and the errors.
func TestContainerCopy(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	host := t.TempDir()
	bind := t.TempDir()
	out := t.TempDir()
	writeFile(t, filepath.Join(host, "file.txt"), "hello from the host\n")
	writeFile(t, filepath.Join(host, "dir", "a"), "a\n")
	writeFile(t, filepath.Join(host, "dir", "sub", "b"), "b\n")
	d.mustDocker("run", "-d", "--name", "cp1", "-v", bind+":/data", "--tmpfs", "/scratch", "busybox", "sleep", "1000")

	// host → container: a file into a directory, a directory to a new name.
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cp1:/tmp/")
	if got := d.mustDocker("exec", "cp1", "cat", "/tmp/file.txt"); got != "hello from the host\n" {
		t.Fatalf("file copied in: %q", got)
	}
	d.mustDocker("cp", filepath.Join(host, "dir"), "cp1:/tmp/copied")
	if got := d.mustDocker("exec", "cp1", "cat", "/tmp/copied/a", "/tmp/copied/sub/b"); got != "a\nb\n" {
		t.Fatalf("dir copied in: %q", got)
	}
	// Into a bind mount: the file lands in the host directory.
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cp1:/data/")
	if got := readFile(t, filepath.Join(bind, "file.txt")); got != "hello from the host\n" {
		t.Fatalf("file copied into the bind: %q", got)
	}
	// Into a tmpfs: the container's own view, as it sees it.
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cp1:/scratch/")
	if got := d.mustDocker("exec", "cp1", "cat", "/scratch/file.txt"); got != "hello from the host\n" {
		t.Fatalf("file copied into a tmpfs: %q", got)
	}
	// container → host.
	d.mustDocker("exec", "cp1", "sh", "-c", "mkdir -p /srv/tree/x && echo one > /srv/tree/x/one && ln -s /srv/tree/x/one /srv/link")
	d.mustDocker("cp", "cp1:/srv/tree", filepath.Join(out, "tree"))
	if got := readFile(t, filepath.Join(out, "tree", "x", "one")); got != "one\n" {
		t.Fatalf("dir copied out: %q", got)
	}
	d.mustDocker("cp", "cp1:/data/file.txt", filepath.Join(out, "fromdata"))
	if got := readFile(t, filepath.Join(out, "fromdata")); got != "hello from the host\n" {
		t.Fatalf("file copied out of the bind: %q", got)
	}
	d.mustDocker("cp", "cp1:/srv/link", filepath.Join(out, "link"))
	if target, err := os.Readlink(filepath.Join(out, "link")); err != nil || target != "/srv/tree/x/one" {
		t.Fatalf("symlink copied out: %q %v", target, err)
	}
	d.mustDocker("cp", "-L", "cp1:/srv/link", filepath.Join(out, "followed"))
	if got := readFile(t, filepath.Join(out, "followed")); got != "one\n" {
		t.Fatalf("symlink followed with -L: %q", got)
	}
	// The stat header (HEAD) of the symlink names its target inside the root.
	hdr := d.curl("-sI", "http://berth/containers/cp1/archive?path=/srv/link")
	mustContain(t, "HEAD archive", hdr, "HTTP/1.1 200", "X-Docker-Container-Path-Stat: ")
	var st struct {
		Name       string `json:"name"`
		LinkTarget string `json:"linkTarget"`
	}
	for _, line := range strings.Split(hdr, "\r\n") {
		if v, ok := strings.CutPrefix(line, "X-Docker-Container-Path-Stat: "); ok {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || json.Unmarshal(b, &st) != nil {
				t.Fatalf("stat header %q: %v", v, err)
			}
		}
	}
	if st.Name != "link" || st.LinkTarget != "/srv/tree/x/one" {
		t.Fatalf("stat: %+v", st)
	}
	// Tar streams: cp - reads a tar on stdin, cp CONTAINER:path - writes one.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	_ = tw.WriteHeader(&tar.Header{Name: "streamed", Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi\n"))
	_ = tw.Close()
	if o, err := d.dockerIn(tb.Bytes(), "cp", "-", "cp1:/tmp"); err != nil {
		t.Fatalf("cp - : %v %s", err, o)
	}
	if got := d.mustDocker("exec", "cp1", "cat", "/tmp/streamed"); got != "hi\n" {
		t.Fatalf("streamed in: %q", got)
	}
	cmd := exec.Command(dockerCLI, "cp", "cp1:/tmp/streamed", "-")
	cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	tarOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("cp to -: %v", err)
	}
	tr := tar.NewReader(bytes.NewReader(tarOut))
	if h, err := tr.Next(); err != nil || h.Name != "streamed" || h.Size != 3 {
		t.Fatalf("tar on stdout: %+v %v", h, err)
	}

	// The whole root of a running container: its files and its bind, not
	// what /proc and /sys hold.
	d.mustDocker("cp", "cp1:/", filepath.Join(out, "root"))
	for _, p := range []string{"bin/busybox", "data/file.txt", "tmp/copied/sub/b", "etc/hostname"} {
		if _, err := os.Stat(filepath.Join(out, "root", p)); err != nil {
			t.Errorf("cp of /: %v", err)
		}
	}
	for _, p := range []string{"proc", "sys"} {
		if ents, err := os.ReadDir(filepath.Join(out, "root", p)); err != nil || len(ents) != 0 {
			t.Errorf("cp of /: %s holds %d entries (%v)", p, len(ents), err)
		}
	}

	// A paused container is copied into through its frozen init's root.
	d.mustDocker("pause", "cp1")
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cp1:/tmp/paused")
	d.mustDocker("unpause", "cp1")
	if got := d.mustDocker("exec", "cp1", "cat", "/tmp/paused"); got != "hello from the host\n" {
		t.Fatalf("copied into a paused container: %q", got)
	}

	// Errors, as docker words them.
	o, code := d.exitCode("cp", "cp1:/nope", out)
	if code != 1 || !strings.Contains(o, "Could not find the file /nope in container cp1") {
		t.Fatalf("missing path: %d %q", code, o)
	}
	d.mustDocker("run", "-d", "--name", "ro", "--read-only", "busybox", "sleep", "1000")
	o, code = d.exitCode("cp", filepath.Join(host, "file.txt"), "ro:/")
	if code != 1 || !strings.Contains(o, "container rootfs is marked read-only") {
		t.Fatalf("read-only rootfs: %d %q", code, o)
	}
	mustContain(t, "empty path", d.curl("-i", "http://berth/containers/cp1/archive"), "HTTP/1.1 400", "Path cannot be empty")
	mustContain(t, "missing container", d.curl("-i", "http://berth/containers/nope/archive?path=/"), "HTTP/1.1 404")

	// A stopped container: its file system and binds are mounted for the copy.
	d.mustDocker("create", "--name", "cpst", "-v", bind+":/data", "busybox", "true")
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cpst:/")
	d.mustDocker("cp", "cpst:/file.txt", filepath.Join(out, "fromstopped"))
	if got := readFile(t, filepath.Join(out, "fromstopped")); got != "hello from the host\n" {
		t.Fatalf("stopped container round trip: %q", got)
	}
	d.mustDocker("cp", filepath.Join(host, "dir"), "cpst:/data/")
	if got := readFile(t, filepath.Join(bind, "dir", "sub", "b")); got != "b\n" {
		t.Fatalf("stopped container's bind: %q", got)
	}
	// One made with --init and a user its /etc/passwd lacks: no spec can
	// be made for it now, its binds still are mounted for the copy.
	d.mustDocker("create", "--name", "cpodd", "--init", "-u", "nosuchuser", "-v", bind+":/data2", "busybox", "true")
	d.mustDocker("cp", filepath.Join(host, "file.txt"), "cpodd:/data2/odd.txt")
	if got := readFile(t, filepath.Join(bind, "odd.txt")); got != "hello from the host\n" {
		t.Fatalf("stopped container without a spec, its bind: %q", got)
	}
	if got := d.mustDocker("start", "-a", "cpst"); got != "" {
		t.Fatalf("start after cp: %q", got)
	}
}

// TestContainerCopyHostile PUTs tars that try to leave the container's
// root: "../" names are refused with 400, a symlink pointing out is
// followed inside the root, and the canary beside it is untouched.
func TestContainerCopyHostile(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	canaryDir := t.TempDir()
	canary := filepath.Join(canaryDir, "canary")
	writeFile(t, canary, "untouched\n")
	d.mustDocker("run", "-d", "--name", "hx", "busybox", "sleep", "1000")

	put := func(entries ...*tar.Header) string {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len("pwned\n"))
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write([]byte("pwned\n"))
			}
		}
		_ = tw.Close()
		p := filepath.Join(t.TempDir(), "x.tar")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return d.curl("-i", "-X", "PUT", "-H", "Content-Type: application/x-tar", "--data-binary", "@"+p,
			"http://berth/containers/hx/archive?path=/tmp&noOverwriteDirNonDir=true")
	}
	up := strings.Repeat("../", 30)
	mustContain(t, "../ entry", put(&tar.Header{Name: up + canary, Typeflag: tar.TypeReg, Mode: 0o644}), "HTTP/1.1 400", "outside the root")
	// A symlink out is followed inside the root: to nothing there (refused)...
	out := put(&tar.Header{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: up + canaryDir},
		&tar.Header{Name: "esc/canary", Typeflag: tar.TypeReg, Mode: 0o644})
	mustContain(t, "symlink out", out, "HTTP/1.1 400", "symlink to nothing in the root")
	out = put(&tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: canaryDir},
		&tar.Header{Name: "abs/canary", Typeflag: tar.TypeReg, Mode: 0o644})
	mustContain(t, "absolute symlink", out, "HTTP/1.1 400", "symlink to nothing in the root")
	// ... or to the container's own directory of that name.
	out = put(&tar.Header{Name: "etc2", Typeflag: tar.TypeSymlink, Linkname: up + "etc"},
		&tar.Header{Name: "etc2/pwned", Typeflag: tar.TypeReg, Mode: 0o644})
	mustContain(t, "symlink to /etc", out, "HTTP/1.1 200")
	// A path param that climbs is taken from the container's "/".
	mustContain(t, "path climbing", d.curl("-sI", "http://berth/containers/hx/archive?path="+up+"etc/hostname"), "HTTP/1.1 200")
	if got := readFile(t, canary); got != "untouched\n" {
		t.Fatalf("canary outside the container changed: %q", got)
	}
	if got := d.mustDocker("exec", "hx", "cat", "/etc/pwned"); got != "pwned\n" {
		t.Fatalf("contained write: %q", got)
	}
	// Reading through a symlink the container made that points at the
	// host's directory finds nothing: it resolves inside the container.
	d.mustDocker("exec", "hx", "ln", "-s", up+canaryDir, "/tmp/out")
	mustContain(t, "GET through a symlink out", d.curl("-i", "http://berth/containers/hx/archive?path=/tmp/out/canary"),
		"HTTP/1.1 404", "Could not find the file /tmp/out/canary in container hx")
	o, code := d.exitCode("cp", "hx:/tmp/out/", t.TempDir())
	if code != 1 || !strings.Contains(o, "Could not find the file /tmp/out/ in container hx") {
		t.Fatalf("cp through a symlink out: %d %q", code, o)
	}
	// Not a tar at all: 400, and still serving.
	mustContain(t, "garbage body", d.curl("-i", "-X", "PUT", "--data-binary", strings.Repeat("this is not a tar archive. ", 100),
		"http://berth/containers/hx/archive?path=/tmp"), "HTTP/1.1 400")
	mustContain(t, "PUT onto a file", d.curl("-i", "-X", "PUT", "--data-binary", "x",
		"http://berth/containers/hx/archive?path=/etc/hostname"), "HTTP/1.1 400", "extraction point is not a directory")
	// The daemon still serves.
	d.mustDocker("ps")
}

// cgroupFile reads a v1 controller's file of a berth container (cgroups at
// /berth/<id>).
func cgroupFile(t *testing.T, d *daemon, ctr, controller, file string) string {
	t.Helper()
	id := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.Id}}", ctr))
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "berth", id, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestContainerUpdate changes a running container's limits with docker
// update and finds them in its cgroup files and in inspect; a stopped
// container gets them at its next start; the restart policy changes; bad
// updates are refused as dockerd refuses them.
func TestContainerUpdate(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("needs cgroup v1 controllers (this host's layout)")
	}
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	if out := d.mustDocker("update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "50",
		"--cpu-shares", "512", "--memory-reservation", "32m", "up"); out != "up\n" {
		t.Fatalf("update: %q", out)
	}
	for _, c := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"memory", "memory.memsw.limit_in_bytes", "134217728"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "512"},
		{"pids", "pids.max", "50"},
	} {
		if c.file == "memory.memsw.limit_in_bytes" {
			if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
				continue // no swap accounting on this kernel
			}
		}
		if got := cgroupFile(t, d, "up", c.ctl, c.file); got != c.want {
			t.Errorf("%s: %s, want %s", c.file, got, c.want)
		}
	}
	if got := d.mustDocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}", "up"); got != "67108864 134217728 500000000 50 512\n" {
		t.Fatalf("inspect after update: %q", got)
	}
	// Unlimited pids again; the restart policy.
	d.mustDocker("update", "--pids-limit", "-1", "--restart", "on-failure:3", "up")
	if got := cgroupFile(t, d, "up", "pids", "pids.max"); got != "max" {
		t.Errorf("pids.max after -1: %s", got)
	}
	if got := d.mustDocker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "up"); got != "on-failure:3\n" {
		t.Fatalf("restart policy: %q", got)
	}
	// Refused as dockerd refuses, and nothing changes.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "200m", "up"}, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"},
		{[]string{"--memory", "64m", "--memory-swap", "32m", "up"}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{[]string{"--memory", "1m", "up"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--cpu-quota", "20000", "up"}, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"},
		{[]string{"--restart", "sometimes", "up"}, "invalid restart policy"},
		{[]string{"--memory", "64m", "nope"}, "No such container: nope"},
	} {
		out, code := d.exitCode(append([]string{"update"}, c.args...)...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("update %v: %d %q, want %q", c.args, code, out, c.want)
		}
	}
	if got := cgroupFile(t, d, "up", "memory", "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory after refused updates: %s", got)
	}
	// A limit below what the container uses: the kernel's refusal, wrapped
	// as dockerd wraps it, and the record as it was. (Without swap the
	// kernel cannot reclaim the tmpfs file.) The cgroup library words it.
	if b, _ := os.ReadFile("/proc/swaps"); strings.Count(string(b), "\n") <= 1 {
		d.mustDocker("exec", "up", "dd", "if=/dev/zero", "of=/dev/ballast", "bs=1M", "count=30")
		out, code := d.exitCode("update", "--memory", "10m", "--memory-swap", "10m", "up")
		if code != 1 || !strings.Contains(out, "Cannot update container ") || !strings.Contains(out, "unable to set memory limit to 10485760") {
			t.Errorf("memory below the usage: %d %q", code, out)
		}
		if got := d.mustDocker("inspect", "-f", "{{.HostConfig.Memory}}", "up"); got != "67108864\n" {
			t.Errorf("record after a refused update: %q", got)
		}
		if got := cgroupFile(t, d, "up", "memory", "memory.limit_in_bytes"); got != "67108864" {
			t.Errorf("memory after a refused update: %s", got)
		}
	}
	mustContain(t, "malformed update", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Memory":"lots"}`,
		"http://berth/containers/up/update"), "HTTP/1.1 400", "invalid JSON")

	// A new restart policy acts on the next exit of a running container.
	d.mustDocker("run", "-d", "--name", "rp", "busybox", "sh", "-c", "while [ ! -f /go ]; do sleep 0.1; done; exit 3")
	d.mustDocker("update", "--restart", "on-failure:1", "rp")
	d.mustDocker("exec", "rp", "touch", "/go")
	waitFor(t, "the updated restart policy", func() bool {
		return d.mustDocker("inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "rp") == "exited 1 3\n"
	})

	// A stopped container keeps the update for its next start.
	d.mustDocker("create", "--name", "later", "busybox", "sleep", "1000")
	d.mustDocker("update", "--memory", "48m", "--memory-swap", "96m", "later")
	d.mustDocker("start", "later")
	if got := cgroupFile(t, d, "later", "memory", "memory.limit_in_bytes"); got != "50331648" {
		t.Errorf("memory of the updated stopped container: %s", got)
	}
}

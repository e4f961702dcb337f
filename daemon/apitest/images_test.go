package apitest

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// TestDockerCLIImages drives one daemon through the image life cycle with
// the real docker CLI.
func TestDockerCLIImages(t *testing.T) {
	d := newDaemon(t)
	d.start()

	out := d.mustDocker("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}")
	if got := strings.Fields(out); len(got) != 3 || got[0] != "1.56" || got[1] != "1.24" || got[2] != "1.50" {
		t.Fatalf("docker version: %q", out)
	}

	archive, bbID := busyboxArchive(t, "busybox:latest")
	out = d.mustDocker("load", "-i", archive)
	mustContain(t, "docker load", out, "Loaded image: busybox:latest")

	info := d.mustDocker("info", "--format", "{{json .}}")
	var inf map[string]any
	if err := json.Unmarshal([]byte(info), &inf); err != nil {
		t.Fatalf("docker info json: %v\n%s", err, info)
	}
	if inf["Images"] != float64(1) || inf["DockerRootDir"] != d.dataRoot || inf["LiveRestoreEnabled"] != true ||
		inf["Driver"] == "" || inf["NCPU"].(float64) < 1 || inf["MemTotal"].(float64) <= 0 || inf["KernelVersion"] == "" {
		t.Fatalf("docker info: %s", info)
	}
	if rt, _ := inf["Runtimes"].(map[string]any); rt["berth"] == nil {
		t.Fatalf("docker info runtimes: %v", inf["Runtimes"])
	}

	// Events in the background: they must see the tag and the untag.
	evCmd := exec.Command(dockerCLI, "events", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	evCmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	evOut, err := evCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := evCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = evCmd.Process.Kill(); _ = evCmd.Wait() })
	evLines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(evOut)
		for sc.Scan() {
			evLines <- sc.Text()
		}
		close(evLines)
	}()
	// The subscription is live once the daemon counts a listener.
	waitFor(t, "events listener", func() bool {
		return strings.TrimSpace(d.mustDocker("info", "--format", "{{.NEventsListener}}")) == "1"
	})

	d.mustDocker("tag", "busybox", "example.com/team/bb:v1")
	d.mustDocker("tag", "busybox:latest", "bb2")
	out = d.mustDocker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	for _, want := range []string{"busybox:latest", "example.com/team/bb:v1", "bb2:latest"} {
		mustContain(t, "docker images", out, want+" "+bbID[7:19])
	}
	out = d.mustDocker("images", "--filter", "reference=example.com/*/*", "--format", "{{.Repository}}")
	if strings.TrimSpace(out) != "example.com/team/bb" {
		t.Fatalf("reference filter: %q", out)
	}
	out = d.mustDocker("images", "-q")
	if strings.TrimSpace(out) == "" || !strings.HasPrefix(strings.Fields(out)[0], bbID[7:19]) {
		t.Fatalf("docker images -q: %q", out)
	}

	// Inspect and history.
	out = d.mustDocker("image", "inspect", "--format", "{{.Id}} {{json .Config.Cmd}} {{.Os}} {{len .RootFS.Layers}}", "bb2")
	if strings.TrimSpace(out) != bbID+` ["sh"] linux 1` {
		t.Fatalf("inspect: %q", out)
	}
	out = d.mustDocker("history", "--format", "{{.ID}} {{.CreatedBy}}", "busybox")
	mustContain(t, "history", out, bbID[7:19]+" layer 0")
	if _, err := d.docker("image", "inspect", "nosuch:image"); err == nil {
		t.Fatal("inspect of a missing image succeeded")
	}

	// rmi: by ID with references in several repositories needs -f.
	out, err = d.docker("rmi", bbID[7:19])
	if err == nil || !strings.Contains(out, "must be forced") && !strings.Contains(out, "conflict") {
		t.Fatalf("rmi by ID with several repos: err %v, %s", err, out)
	}
	out = d.mustDocker("rmi", "bb2")
	mustContain(t, "rmi bb2", out, "Untagged: bb2:latest")
	waitEvent(t, evLines, "tag example.com/team/bb:v1")
	waitEvent(t, evLines, "untag bb2:latest")

	// save | load round trip keeps the ID.
	saved := filepath.Join(t.TempDir(), "saved.tar")
	d.mustDocker("save", "-o", saved, "busybox:latest")
	d.mustDocker("rmi", "-f", bbID)
	if out := d.mustDocker("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after rmi -f: %q", out)
	}
	out = d.mustDocker("load", "-i", saved)
	mustContain(t, "load of save", out, "Loaded image: busybox:latest")
	if out := d.mustDocker("image", "inspect", "--format", "{{.Id}}", "busybox"); strings.TrimSpace(out) != bbID {
		t.Fatalf("round trip ID: %q, want %s", out, bbID)
	}
	// save piped into load through stdout/stdin too.
	pipe := exec.Command("sh", "-c", dockerCLI+" save busybox | "+dockerCLI+" load")
	pipe.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	if b, err := pipe.CombinedOutput(); err != nil || !strings.Contains(string(b), "Loaded image: busybox:latest") {
		t.Fatalf("docker save | docker load: %v\n%s", err, b)
	}

	// import with --change and a message.
	rootfsTar := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := testutil.LayerTar(testutil.BusyboxRootfs(t), rootfsTar); err != nil {
		t.Fatal(err)
	}
	out = d.mustDocker("import", "--change", `CMD ["/bin/sh","-c","echo hi"]`, "--change", "ENV FOO=bar", "--change", "LABEL team=blue",
		"-m", "from a tar", rootfsTar, "imported:1")
	impID := strings.TrimSpace(out)
	if !strings.HasPrefix(impID, "sha256:") {
		t.Fatalf("import printed %q", out)
	}
	out = d.mustDocker("image", "inspect", "--format", "{{json .Config.Cmd}} {{index .Config.Labels \"team\"}}", "imported:1")
	mustContain(t, "imported config", out, `["/bin/sh","-c","echo hi"] blue`)
	out = d.mustDocker("history", "--format", "{{.Comment}}", "imported:1")
	mustContain(t, "imported history", out, "from a tar")
	out = d.mustDocker("image", "inspect", "--format", "{{json .Config.Env}}", "imported:1")
	mustContain(t, "imported env", out, "FOO=bar")
	out = d.mustDocker("images", "--filter", "label=team=blue", "--format", "{{.Repository}}")
	if strings.TrimSpace(out) != "imported" {
		t.Fatalf("label filter: %q", out)
	}
	out = d.mustDocker("images", "--filter", "since=busybox", "--format", "{{.Repository}}")
	if strings.TrimSpace(out) != "imported" {
		t.Fatalf("since filter: %q", out)
	}

	// A dangling image: load an untagged one, prune it.
	dangling, danglingID := smallArchive(t, "dangling", nil...)
	out = d.mustDocker("load", "-i", dangling)
	mustContain(t, "load untagged", out, "Loaded image ID: "+danglingID)
	out = d.mustDocker("images", "--filter", "dangling=true", "-q", "--no-trunc")
	if strings.TrimSpace(out) != danglingID {
		t.Fatalf("dangling filter: %q want %s", out, danglingID)
	}
	out = d.mustDocker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	mustContain(t, "system df", out, "Images 3", "Containers 0", "Local Volumes 0")
	out = d.mustDocker("image", "prune", "-f")
	mustContain(t, "prune", out, "deleted: "+danglingID)
	if out := d.mustDocker("images", "-q", "--no-trunc"); strings.Contains(out, danglingID) {
		t.Fatalf("dangling image survived prune: %s", out)
	}
	// prune -a removes every unused image.
	d.mustDocker("image", "prune", "-a", "-f")
	if out := d.mustDocker("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after prune -a: %q", out)
	}

	// A registry that is not there (tests reach loopback only; pulls
	// from a real registry are in registry_test.go).
	out, err = d.docker("pull", "127.0.0.1:1/busybox")
	if err == nil || !strings.Contains(out, "cannot connect") {
		t.Fatalf("pull: err %v, %s", err, out)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitEvent(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("event stream ended before %q; saw %q", want, seen)
			}
			if l == want {
				return
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no event %q in 30s; saw %q", want, seen)
		}
	}
}

// TestKillRestart: images survive a SIGKILL of the daemon, and a second
// daemon on the same data root is refused with a clear message.
func TestKillRestart(t *testing.T) {
	d := newDaemon(t)
	d.start()
	archive, id := smallArchive(t, "persist", "keep:me")
	d.mustDocker("load", "-i", archive)

	second := newDaemon(t)
	second.dataRoot, second.execRoot = d.dataRoot, d.execRoot
	err := second.startErr()
	if err == nil {
		t.Fatal("a second daemon on the same data root started")
	}
	mustContain(t, "second daemon", err.Error(), "is in use by another berth daemon", "pid")

	d.kill9()
	d.start()
	out := d.mustDocker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	mustContain(t, "images after kill -9", out, "keep:me "+id)
	if _, err := os.Stat(d.sock); err != nil {
		t.Fatal(err)
	}
}

// TestLoadProgress: without quiet, a load streams "Loading layer" progress
// per layer (as dockerd), which the docker CLI draws on a terminal; quiet
// loads send only the result; an error once the stream began comes in it.
func TestLoadProgress(t *testing.T) {
	d := newDaemon(t)
	d.start()
	archive, _ := busyboxArchive(t, "busybox:latest")

	out := d.curl("-X", "POST", "-H", "Content-Type: application/x-tar", "--data-binary", "@"+archive, "http://x/images/load?quiet=0")
	var msgs []struct {
		Status, ID, Stream string
		ProgressDetail     struct{ Current, Total int64 }
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m struct {
			Status, ID, Stream string
			ProgressDetail     struct{ Current, Total int64 }
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("load stream: %v\n%s", err, out)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) < 3 || msgs[0].Status != "Loading layer" || len(msgs[0].ID) != 12 ||
		msgs[len(msgs)-1].Stream != "Loaded image: busybox:latest\n" {
		t.Fatalf("load progress: %s", out)
	}
	last := msgs[len(msgs)-2]
	if last.Status != "Loading layer" || last.ProgressDetail.Total <= 0 || last.ProgressDetail.Current != last.ProgressDetail.Total {
		t.Fatalf("last progress is not the whole layer: %+v\n%s", last, out)
	}

	// Loaded again: the layer is there, nothing to unpack, no progress.
	d.mustDocker("rmi", "busybox:latest")
	out = d.curl("-X", "POST", "--data-binary", "@"+archive, "http://x/images/load?quiet=1")
	if strings.Contains(out, "Loading layer") || !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("quiet load: %s", out)
	}

	// The docker CLI on a terminal draws the bar.
	if _, err := exec.LookPath("script"); err == nil {
		d.mustDocker("rmi", "busybox:latest")
		d.mustDocker("image", "prune", "-f")
		cmd := exec.Command("script", "-qec", dockerCLI+" load -i "+archive, "/dev/null")
		cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "Loading layer") || !strings.Contains(string(b), "Loaded image: busybox:latest") {
			t.Fatalf("docker load on a terminal: %v\n%q", err, b)
		}
	}
}

// TestLoadErrorInStream: a layer whose content is not what the config's
// diff ID says fails once its progress has begun: the error comes in the
// stream (status 200, as dockerd), the docker CLI shows it and exits 1,
// and nothing of the image is kept.
func TestLoadErrorInStream(t *testing.T) {
	d := newDaemon(t)
	d.start()
	archive, _ := busyboxArchive(t, "busybox:latest")
	bad := filepath.Join(t.TempDir(), "bad.tar")
	rewriteTar(t, archive, bad, func(name string, b []byte) []byte {
		if !strings.HasSuffix(name, ".json") || name == "manifest.json" || !strings.Contains(string(b), `"diff_ids"`) {
			return b
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["rootfs"].(map[string]any)["diff_ids"] = []string{"sha256:" + strings.Repeat("ab", 32)}
		out, _ := json.Marshal(cfg)
		return out
	})
	out := d.curl("-i", "-X", "POST", "-H", "Content-Type: application/x-tar", "--data-binary", "@"+bad, "http://x/images/load?quiet=0")
	mustContain(t, "load of a bad layer", out, "HTTP/1.1 200", `"status":"Loading layer"`, `"errorDetail":{"message":`)
	cmd := exec.Command("script", "-qec", dockerCLI+" load -i "+bad, "/dev/null")
	cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "diff") {
		t.Fatalf("docker load of a bad layer: %v\n%q", err, b)
	}
	if out := d.mustDocker("images", "-aq"); out != "" {
		t.Fatalf("images after failed loads: %q", out)
	}
	d.mustDocker("load", "-i", archive) // and the store is fine
}

// rewriteTar copies the tar in to out, passing each regular file's content
// through fn.
func rewriteTar(t *testing.T, in, out string, fn func(name string, b []byte) []byte) {
	t.Helper()
	src, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	tr, tw := tar.NewReader(src), tar.NewWriter(dst)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b = fn(h.Name, b)
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

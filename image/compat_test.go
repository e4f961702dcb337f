package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", tool, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// saveTo saves refs from e into a file.
func saveTo(t *testing.T, e *env, refs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "saved.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := e.store.Save(context.Background(), f, refs); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSkopeo: skopeo reads what berth saves, as a docker-archive and as an
// OCI archive, and berth loads what skopeo writes in both forms, with the
// image ID and diff IDs unchanged.
func TestSkopeo(t *testing.T) {
	testutil.RequireRoot(t)
	need(t, "skopeo")
	ctx := context.Background()
	e := newEnv(t, "overlay2")
	path, id := twoLayerArchive(t, "busybox")
	load(t, e.store, path)
	saved := saveTo(t, e, "busybox")

	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	raw := run(t, "skopeo", "inspect", "--config", "--raw", "docker-archive:"+saved)
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	img, _ := e.store.Get(ctx, "busybox")
	if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[1] != img.Config.RootFS.DiffIDs[1].String() {
		t.Fatalf("skopeo sees diff IDs %v, berth %v", cfg.RootFS.DiffIDs, img.Config.RootFS.DiffIDs)
	}
	if got := strings.TrimSpace(run(t, "skopeo", "inspect", "--format", "{{.Digest}}", "oci-archive:"+saved+":latest")); got != img.Manifests[0].Digest.String() {
		t.Fatalf("skopeo sees manifest %s in the OCI archive, berth saved %s", got, img.Manifests[0].Digest)
	}

	dir := t.TempDir()
	dockerTar := filepath.Join(dir, "skopeo-docker.tar")
	ociTar := filepath.Join(dir, "skopeo-oci.tar")
	run(t, "skopeo", "copy", "-q", "docker-archive:"+saved, "docker-archive:"+dockerTar+":example.com/skopeo/docker:v1")
	run(t, "skopeo", "copy", "-q", "docker-archive:"+saved, "oci-archive:"+ociTar+":example.com/skopeo/oci:v2")
	// skopeo's docker-archive keeps the config, so the image ID; its OCI
	// conversion rewrites the config (media types), so only the diff IDs
	// are the same.
	for _, c := range []struct {
		path, ref string
		sameID    bool
	}{{dockerTar, "example.com/skopeo/docker:v1", true}, {ociTar, "example.com/skopeo/oci:v2", false}} {
		b := newEnv(t, "overlay2")
		loaded := load(t, b.store, c.path)
		if len(loaded) != 1 || len(loaded[0].Refs) != 1 || loaded[0].Refs[0] != c.ref || (c.sameID && loaded[0].ID.String() != id) {
			t.Fatalf("load of skopeo's %s: %+v, want %s tagged %s", filepath.Base(c.path), loaded, id, c.ref)
		}
		got, err := b.store.Get(ctx, c.ref)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Config.RootFS.DiffIDs, img.Config.RootFS.DiffIDs) {
			t.Fatalf("diff IDs after skopeo: %v, want %v", got.Config.RootFS.DiffIDs, img.Config.RootFS.DiffIDs)
		}
		if out := runImage(t, b.store, c.ref); out != "hello from layer 2\n" {
			t.Fatalf("image from skopeo printed %q", out)
		}
	}
}

// TestUmoci: umoci unpacks what berth saves; berth loads and runs an image
// umoci made.
func TestUmoci(t *testing.T) {
	testutil.RequireRoot(t)
	need(t, "umoci", "tar")
	ctx := context.Background()
	e := newEnv(t, "overlay2")
	path, _ := twoLayerArchive(t, "busybox")
	load(t, e.store, path)
	saved := saveTo(t, e, "busybox")

	layout := filepath.Join(t.TempDir(), "layout")
	if err := os.Mkdir(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-C", layout, "-xf", saved)
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", layout+":latest", bundle)
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/hello")); err != nil || string(b) != "hello from layer 2\n" {
		t.Fatalf("umoci unpacked /hello = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/etc/deleteme")); !os.IsNotExist(err) {
		t.Fatalf("umoci sees the whited-out file: %v", err)
	}

	// An image umoci builds: busybox and a command.
	made := filepath.Join(t.TempDir(), "made")
	run(t, "umoci", "init", "--layout", made)
	run(t, "umoci", "new", "--image", made+":v1")
	b2 := filepath.Join(t.TempDir(), "b2")
	run(t, "umoci", "unpack", "--image", made+":v1", b2)
	run(t, "cp", "-a", testutil.BusyboxRootfs(t)+"/.", filepath.Join(b2, "rootfs"))
	if err := os.WriteFile(filepath.Join(b2, "rootfs/greeting"), []byte("made by umoci\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "umoci", "repack", "--image", made+":v1", b2)
	run(t, "umoci", "config", "--image", made+":v1", "--config.cmd", "cat", "--config.cmd", "/greeting")
	madeTar := filepath.Join(t.TempDir(), "made.tar")
	run(t, "tar", "-C", made, "-cf", madeTar, ".")
	b := newEnv(t, "overlay2")
	loaded := load(t, b.store, madeTar)
	// A bare tag in the layout names no repository: loaded untagged.
	if len(loaded) != 1 || len(loaded[0].Refs) != 0 {
		t.Fatalf("load of umoci's layout: %+v", loaded)
	}
	if out := runImage(t, b.store, loaded[0].ID.String()); out != "made by umoci\n" {
		t.Fatalf("umoci's image printed %q", out)
	}
	if _, err := b.store.Get(ctx, loaded[0].ID.String()[7:15]); err != nil {
		t.Fatal(err)
	}
}

// TestDocker: docker loads and runs what berth saves; berth loads and runs
// what docker saves, with the same image ID.
func TestDocker(t *testing.T) {
	testutil.RequireRoot(t)
	d, err := testutil.StartDockerd("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	})
	docker := func(args ...string) string {
		t.Helper()
		out, err := d.Docker(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	e := newEnv(t, "overlay2")
	path, id := twoLayerArchive(t, "busybox")
	load(t, e.store, path)
	saved := saveTo(t, e, "busybox")

	if out := docker("load", "-i", saved); !strings.Contains(out, "busybox:latest") {
		t.Fatalf("docker load: %s", out)
	}
	if got := strings.TrimSpace(docker("image", "inspect", "--format", "{{.ID}}", "busybox")); got != id {
		t.Fatalf("docker sees ID %s, berth %s", got, id)
	}
	if out := docker("run", "--rm", "--network", "none", "busybox"); out != "hello from layer 2\n" {
		t.Fatalf("docker ran berth's image: %q", out)
	}
	docker("tag", "busybox", "example.com/from/docker:1")
	fromDocker := filepath.Join(t.TempDir(), "docker.tar")
	docker("save", "-o", fromDocker, "example.com/from/docker:1")
	b := newEnv(t, "overlay2")
	loaded := load(t, b.store, fromDocker)
	if len(loaded) != 1 || loaded[0].ID.String() != id || loaded[0].Refs[0] != "example.com/from/docker:1" {
		t.Fatalf("load of docker's save: %+v, want %s", loaded, id)
	}
	if out := runImage(t, b.store, "example.com/from/docker:1"); out != "hello from layer 2\n" {
		t.Fatalf("docker's image printed %q", out)
	}
}

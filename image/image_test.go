package image_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/runtime"
	"berth.dev/berth/snapshot"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(loadChildEnv); spec != "" {
		loadChild(spec)
		return
	}
	leakcheck.Main(hostCgroupsKept{m})
}

// hostCgroupsKept runs the tests and then puts back what their containers
// changed in the host's cgroup trees, before the leak check looks.
type hostCgroupsKept struct{ m *testing.M }

func (r hostCgroupsKept) Run() int {
	defer testutil.KeepHostCgroups()()
	return r.m.Run()
}

var testDrivers = []string{"overlay2", "vfs"}

func forDrivers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range testDrivers {
		t.Run(d, func(t *testing.T) { testutil.RequireRoot(t); fn(t, d) })
	}
}

// twoLayerArchive is busybox plus a layer that adds /hello, replaces
// /etc/motd and deletes /etc/deleteme.
func twoLayerArchive(t *testing.T, tags ...string) (path, id string) {
	t.Helper()
	base := testutil.BusyboxRootfs(t)
	for name, c := range map[string]string{"etc/motd": "old\n", "etc/deleteme": "x"} {
		if err := os.WriteFile(filepath.Join(base, name), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	top := writeFiles(t, map[string]string{"hello": "hello from layer 2\n", "etc/motd": "new\n", "etc/.wh.deleteme": ""})
	path = filepath.Join(t.TempDir(), "image.tar")
	id = dockerArchive(t, path, tags, []string{"cat", "/hello"}, base, top)
	return path, id
}

func load(t *testing.T, s *image.Store, path string) []image.Loaded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	loaded, err := s.Load(context.Background(), f)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return loaded
}

// runImage runs the image's command in a container made from it, with
// berth's runtime, and returns its output.
func runImage(t *testing.T, s *image.Store, ref string, args ...string) string {
	t.Helper()
	ctx := context.Background()
	id := "ctr-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	img, mounts, err := s.CreateContainer(ctx, id, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.RemoveContainer(ctx, id); err != nil {
			t.Error(err)
		}
	}()
	rootfs := t.TempDir()
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(rootfs); err != nil {
			t.Error(err)
		}
	}()
	if len(args) == 0 {
		args = append(img.Config.Config.Entrypoint, img.Config.Config.Cmd...)
	}
	spec := testutil.Spec(args...)
	spec.Process.Env = img.Config.Config.Env
	bundle := testutil.Bundle(t, rootfs, spec)
	rtRoot := t.TempDir()
	defer func() {
		// The runtime keeps a read-only view of its binary in its root.
		if err := (&runtime.Runtime{Root: rtRoot}).ReleaseInitBinary(); err != nil {
			t.Error(err)
		}
	}()
	cmd := exec.Command(testutil.BerthBinary(t), "runtime", "--root", rtRoot, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestLoadDockerArchiveAndRun(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver)
		path, id := twoLayerArchive(t, "busybox", "example.com/team/tool:v1")
		loaded := load(t, e.store, path)
		if len(loaded) != 1 || loaded[0].ID.String() != id {
			t.Fatalf("loaded %+v, want one image %s", loaded, id)
		}
		img, err := e.store.Get(context.Background(), "busybox:latest")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"busybox:latest", "example.com/team/tool:v1"}
		if !slices.Equal(img.RepoTags, want) || img.ID.String() != id || len(img.ChainIDs) != 2 {
			t.Fatalf("inspect: tags %v id %s chain %v; want %v %s", img.RepoTags, img.ID, img.ChainIDs, want, id)
		}
		if img.Size <= 0 {
			t.Errorf("size %d", img.Size)
		}
		for _, name := range []string{"docker.io/library/busybox", id, id[7:19]} {
			if got, err := e.store.Get(context.Background(), name); err != nil || got.ID != img.ID {
				t.Errorf("Get(%q) = %v, %v", name, got, err)
			}
		}
		if out := runImage(t, e.store, "busybox"); out != "hello from layer 2\n" {
			t.Fatalf("container printed %q", out)
		}
		out := runImage(t, e.store, "busybox", "sh", "-c", "cat /etc/motd; ls /etc/deleteme 2>&1 || true")
		if !strings.HasPrefix(out, "new\n") || !strings.Contains(out, "No such file") {
			t.Fatalf("layer 2 did not replace motd and delete /etc/deleteme: %q", out)
		}
	})
}

func TestSaveLoadRoundTrip(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		a := newEnv(t, driver)
		path, id := twoLayerArchive(t, "busybox")
		load(t, a.store, path)
		orig, err := a.store.Get(ctx, "busybox")
		if err != nil {
			t.Fatal(err)
		}
		var first, second bytes.Buffer
		if err := a.store.Save(ctx, &first, []string{"busybox"}); err != nil {
			t.Fatal(err)
		}
		if err := a.store.Save(ctx, &second, []string{id}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Error("two saves of one image differ")
		}
		saved := filepath.Join(t.TempDir(), "saved.tar")
		if err := os.WriteFile(saved, first.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		b := newEnv(t, driver)
		loaded := load(t, b.store, saved)
		if len(loaded) != 1 || loaded[0].ID != orig.ID || !slices.Equal(loaded[0].Refs, []string{"busybox:latest"}) {
			t.Fatalf("reloaded %+v, want %s busybox:latest", loaded, orig.ID)
		}
		again, err := b.store.Get(ctx, "busybox")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again.Config.RootFS.DiffIDs, orig.Config.RootFS.DiffIDs) || again.Manifests[0].Digest != orig.Manifests[0].Digest {
			t.Fatalf("round trip changed diff IDs or manifest: %v %s, was %v %s", again.Config.RootFS.DiffIDs, again.Manifests[0].Digest, orig.Config.RootFS.DiffIDs, orig.Manifests[0].Digest)
		}
		if out := runImage(t, b.store, "busybox"); out != "hello from layer 2\n" {
			t.Fatalf("container printed %q", out)
		}
	})
}

func TestLoadBadArchives(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	good, _ := twoLayerArchive(t, "busybox")
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated":   raw[:len(raw)/2],
		"not a tar":   []byte("hello, this is not an archive at all, and long enough to look at................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"),
		"no manifest": tarOf(t, map[string]string{"hello.txt": "hi"}),
		"blob digest lies": tarOf(t, map[string]string{
			"blobs/sha256/" + strings.Repeat("a", 64): "not what the name says",
			"index.json": `{"schemaVersion":2,"manifests":[]}`, "oci-layout": `{"imageLayoutVersion":"1.0.0"}`,
		}),
		"missing layer": tarOf(t, map[string]string{
			"manifest.json": `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["nope/layer.tar"]}]`,
			"c.json":        `{"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("b", 64) + `"]}}`,
		}),
		"wrong diff ID": tarOf(t, map[string]string{
			"manifest.json": `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]`,
			"c.json":        `{"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("b", 64) + `"]}}`,
			"l/layer.tar":   string(tarOf(t, map[string]string{"f": "x"})),
		}),
	}
	e := newEnv(t, "overlay2")
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.store.Load(ctx, bytes.NewReader(data))
			if err == nil {
				t.Fatal("load succeeded")
			}
			t.Logf("error: %v", err)
			if blobs, snaps, ingests, layers := e.counts(t); blobs+snaps+ingests+layers != 0 {
				t.Fatalf("a failed load left %d blobs, %d snapshots, %d ingests, %d layers", blobs, snaps, ingests, layers)
			}
			if imgs, _ := e.store.List(ctx); len(imgs) != 0 {
				t.Fatalf("a failed load left images: %v", imgs)
			}
		})
	}
}

func TestTagRemovePrune(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEnv(t, "overlay2")
	path, id := twoLayerArchive(t, "busybox")
	load(t, e.store, path)
	s := e.store

	if err := s.Tag(ctx, "busybox", "other/repo:x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "busybox", "busybox:second"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "nope", "a:b"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("tag of a missing image: %v", err)
	}
	if err := s.Tag(ctx, "busybox", "UPPER:case"); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("tag with an invalid name: %v", err)
	}
	// By ID with references in two repositories: must force.
	if _, err := s.Remove(ctx, id, false, false); !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "multiple repositories") {
		t.Fatalf("rmi by ID across repositories: %v", err)
	}
	// By reference with others left: untag only.
	items, err := s.Remove(ctx, "other/repo:x", false, false)
	if err != nil || len(items) != 1 || items[0].Untagged != "other/repo:x" {
		t.Fatalf("untag: %+v %v", items, err)
	}
	// A container uses it: the last tag needs force.
	if _, _, err := s.CreateContainer(ctx, "c1", "busybox"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "busybox:second", false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "busybox", false, false); !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "container c1 is using") {
		t.Fatalf("rmi of an image in use: %v", err)
	}
	s.Running = func(string) bool { return true }
	if _, err := s.Remove(ctx, id, true, false); !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "cannot be forced") {
		t.Fatalf("rmi -f of a running container's image: %v", err)
	}
	s.Running = nil
	// Dangling but in use: prune keeps it.
	items, err = s.Remove(ctx, "busybox", true, false)
	if err != nil || len(items) != 2 || items[0].Untagged != "busybox:latest" || items[1].Deleted != id {
		t.Fatalf("rmi -f of a stopped container's image: %+v %v", items, err)
	}
	if _, err := s.Get(ctx, id); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("image still there: %v", err)
	}
	// The container keeps its layers.
	if _, snaps, _, _ := e.counts(t); snaps != 4 {
		t.Fatalf("%d snapshots, want the two layers, the container's init layer and its own", snaps)
	}
	if err := s.RemoveContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.GC(); err != nil {
		t.Fatal(err)
	}
	if blobs, snaps, ingests, layers := e.counts(t); blobs+snaps+ingests+layers != 0 {
		t.Fatalf("left %d blobs, %d snapshots, %d ingests, %d layers", blobs, snaps, ingests, layers)
	}

	// Prune: dangling only, then all.
	load(t, s, path)
	if err := s.Tag(ctx, "busybox", "keep:me"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "busybox", false, false); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune(ctx, false)
	if err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("prune of a tagged image: %+v %v", rep, err)
	}
	rep, err = s.Prune(ctx, true)
	if err != nil || len(rep.Deleted) != 2 || rep.SpaceReclaimed <= 0 {
		t.Fatalf("prune -a: %+v %v", rep, err)
	}
	if blobs, snaps, ingests, layers := e.counts(t); blobs+snaps+ingests+layers != 0 {
		t.Fatalf("prune left %d blobs, %d snapshots, %d ingests, %d layers", blobs, snaps, ingests, layers)
	}
}

func TestImportCommitExport(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		e := newEnv(t, driver)
		s := e.store
		tarPath := filepath.Join(t.TempDir(), "rootfs.tar.gz")
		layerTar(t, testutil.BusyboxRootfs(t), strings.TrimSuffix(tarPath, ".gz"))
		if out, err := exec.Command("gzip", strings.TrimSuffix(tarPath, ".gz")).CombinedOutput(); err != nil {
			t.Fatalf("gzip: %v %s", err, out)
		}
		f, err := os.Open(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.Import(ctx, f, image.NewImageOptions{Ref: "imported:v1", Message: "from a tarball", Changes: []string{`CMD ["echo", "imported"]`, "ENV A=1 B=2", "WORKDIR /tmp", "EXPOSE 80/udp"}})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Get(ctx, "imported:v1")
		if err != nil || img.ID != id {
			t.Fatal(img, err)
		}
		c := img.Config.Config
		if !slices.Equal(c.Cmd, []string{"echo", "imported"}) || !slices.Equal(c.Env, []string{"A=1", "B=2"}) || c.WorkingDir != "/tmp" || len(c.ExposedPorts) != 1 || img.Config.History[0].Comment != "from a tarball" || img.Config.Comment != "from a tarball" {
			t.Fatalf("import config: %+v history %+v", c, img.Config.History)
		}
		if out := runImage(t, s, "imported:v1"); out != "imported\n" {
			t.Fatalf("imported image printed %q", out)
		}

		// A container changes its file system; commit makes an image of it.
		_, mounts, err := s.CreateContainer(ctx, "c1", "imported:v1")
		if err != nil {
			t.Fatal(err)
		}
		rootfs := t.TempDir()
		if err := snapshot.MountAll(mounts, rootfs); err != nil {
			t.Fatal(err)
		}
		werr := os.WriteFile(filepath.Join(rootfs, "committed"), []byte("yes\n"), 0o644)
		rerr := os.Remove(filepath.Join(rootfs, "bin/ls"))
		if err := snapshot.UnmountAll(rootfs); err != nil {
			t.Fatal(err)
		}
		if werr != nil || rerr != nil {
			t.Fatal(werr, rerr)
		}
		cid, err := s.Commit(ctx, "c1", image.NewImageOptions{Ref: "committed", Author: "tester", Message: "a commit", Changes: []string{"CMD cat /committed"}})
		if err != nil {
			t.Fatal(err)
		}
		ci, err := s.Get(ctx, "committed")
		if err != nil || ci.ID != cid || ci.Parent != id || ci.Config.Author != "tester" || len(ci.ChainIDs) != 2 {
			t.Fatalf("commit: %+v %v", ci, err)
		}
		if !slices.Equal(ci.Config.Config.Cmd, []string{"/bin/sh", "-c", "cat /committed"}) {
			t.Fatalf("commit cmd %v", ci.Config.Config.Cmd)
		}
		out := runImage(t, s, "committed", "sh", "-c", "cat /committed; test -e /bin/ls && echo ls is there; true")
		if out != "yes\n" {
			t.Fatalf("committed image: %q", out)
		}
		hist, err := s.History(ctx, "committed")
		if err != nil || len(hist) != 2 || hist[0].ID != cid.String() || hist[0].Comment != "a commit" || hist[1].ID != "<missing>" {
			t.Fatalf("history %+v %v", hist, err)
		}
		// The parent has a child now.
		if _, err := s.Remove(ctx, id.String(), true, false); !errdefs.Is(err, errdefs.KindConflict) {
			t.Fatalf("rmi of a parent: %v", err)
		}

		// Export: the container's whole file system as a tar.
		var buf bytes.Buffer
		if err := s.Export(ctx, "c1", &buf); err != nil {
			t.Fatal(err)
		}
		names := tarNames(t, buf.Bytes())
		if !names["committed"] || names["bin/ls"] || !names["bin/busybox"] {
			t.Fatalf("export has committed=%v bin/ls=%v bin/busybox=%v", names["committed"], names["bin/ls"], names["bin/busybox"])
		}
		if err := s.RemoveContainer(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		du, err := s.DiskUsage(ctx)
		if err != nil || len(du) != 2 {
			t.Fatalf("disk usage %+v %v", du, err)
		}
		for _, u := range du {
			if u.SharedSize <= 0 || u.SharedSize > u.Size {
				t.Errorf("disk usage of %s: size %d shared %d", u.ID, u.Size, u.SharedSize)
			}
		}
	})
}

// TestSaveSeveralImages: one archive holds several images and tags; a load
// brings them all back, and docker's rules about what a reference saves hold
// (a tag saves that tag, an ID every tag of the image).
func TestSaveSeveralImages(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	a := newEnv(t, "overlay2")
	base := testutil.BusyboxRootfs(t)
	top := writeFiles(t, map[string]string{"hello": "hi\n"})
	two := filepath.Join(t.TempDir(), "two.tar")
	id1 := dockerArchive(t, two, []string{"busybox", "busybox:other"}, []string{"cat", "/hello"}, base, top)
	load(t, a.store, two)
	single := filepath.Join(t.TempDir(), "single.tar")
	id2 := dockerArchive(t, single, []string{"example.com/one:1"}, []string{"true"}, base)
	load(t, a.store, single)
	if err := a.store.Tag(ctx, "example.com/one:1", "example.com/one:2"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.store.Save(ctx, &buf, []string{id1, "example.com/one:2"}); err != nil {
		t.Fatal(err)
	}
	b := newEnv(t, "overlay2")
	loaded, err := b.store.Load(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, l := range loaded {
		got[l.ID.String()] = l.Refs
	}
	want := map[string][]string{id1: {"busybox:latest", "busybox:other"}, id2: {"example.com/one:2"}}
	if len(got) != 2 || !slices.Equal(got[id1], want[id1]) || !slices.Equal(got[id2], want[id2]) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	// Loading it all again adds nothing: layers and blobs are stored once.
	blobs, snaps, _, layers := b.counts(t)
	buf.Reset()
	if err := a.store.Save(ctx, &buf, []string{id1, "example.com/one:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Load(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if blobs2, snaps2, _, layers2 := b.counts(t); blobs2 != blobs || snaps2 != snaps || layers2 != layers {
		t.Fatalf("a second load of the same images went from %d/%d/%d to %d/%d/%d blobs/snapshots/layers", blobs, snaps, layers, blobs2, snaps2, layers2)
	}
}

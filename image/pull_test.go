package image_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/registry"
	"berth.dev/berth/snapshot"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The registry here is a small one in the test process, because what it
// tests is what no real registry does: wrong bytes, bodies that break off
// or never end, redirect loops. Pulls from the real registry (Debian's
// docker-registry) are tested in package daemon/apitest and cli/command.

// fakeImage is an image as a registry serves it.
type fakeImage struct {
	manifest []byte
	digest   digest.Digest
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	blobs    map[digest.Digest][]byte
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newFakeImage makes an image of layers (path → content, as tarOf), for
// platform arch.
func newFakeImage(t *testing.T, arch string, layers ...map[string]string) *fakeImage {
	t.Helper()
	img := &fakeImage{blobs: map[digest.Digest][]byte{}}
	var diffIDs []digest.Digest
	for _, files := range layers {
		raw := tarOf(t, files)
		diffIDs = append(diffIDs, digest.FromBytes(raw))
		blob := gz(t, raw)
		d := digest.FromBytes(blob)
		img.blobs[d] = blob
		img.layers = append(img.layers, ocispec.Descriptor{MediaType: registry.MediaTypeDockerLayer, Digest: d, Size: int64(len(blob))})
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	img.config = ocispec.Descriptor{MediaType: registry.MediaTypeDockerConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	img.blobs[img.config.Digest] = cfg
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeDockerManifest,
		"config": img.config, "layers": img.layers,
	})
	img.digest = digest.FromBytes(img.manifest)
	return img
}

// fakeRegistry serves repository "test/img" with faults on demand.
type fakeRegistry struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	images map[string]*fakeImage // by tag and digest
	index  []byte                // served for tag "multi"
	fault  string                // see ServeHTTP
	ranges []string              // Range headers seen
	blobs  int                   // blob GETs seen
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{t: t, images: map[string]*fakeImage{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistry) add(tag string, img *fakeImage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[tag] = img
	f.images[img.digest.String()] = img
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fault := f.fault
	f.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(p, "/v2/test/img/manifests/"):
		ref := strings.TrimPrefix(p, "/v2/test/img/manifests/")
		if ref == "multi" && f.index != nil {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
			w.Write(f.index)
			return
		}
		f.mu.Lock()
		img, ok := f.images[ref]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		switch fault {
		case "schema1":
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
			fmt.Fprint(w, `{"schemaVersion":1,"name":"test/img","tag":"latest","fsLayers":[]}`)
			return
		case "manifest-digest":
			w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
		}
		w.Header().Set("Content-Type", registry.MediaTypeDockerManifest)
		w.Write(img.manifest)
	case strings.HasPrefix(p, "/v2/test/img/blobs/"):
		f.serveBlob(w, r, digest.Digest(strings.TrimPrefix(p, "/v2/test/img/blobs/")), fault)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeRegistry) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, fault string) {
	f.mu.Lock()
	var blob []byte
	for _, img := range f.images {
		if b, ok := img.blobs[d]; ok {
			blob = b
		}
	}
	f.blobs++
	if rg := r.Header.Get("Range"); rg != "" {
		f.ranges = append(f.ranges, rg)
	}
	f.mu.Unlock()
	if blob == nil {
		http.NotFound(w, r)
		return
	}
	isLayer := len(blob) > 0 && blob[0] == 0x1f // gzip: the layers, not the config
	switch {
	case fault == "redirect-loop" && isLayer:
		http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		return
	case fault == "wrong-bytes" && isLayer:
		bad := bytes.Clone(blob)
		bad[4] ^= 0xff // gzip's MTIME: the layer still reads, its digest differs
		w.Write(bad)
		return
	case fault == "endless" && isLayer:
		w.Write(blob)
		junk := bytes.Repeat([]byte{0}, 32<<10)
		for i := 0; i < 1<<14; i++ { // 512 MiB, unless the client stops first
			if _, err := w.Write(junk); err != nil {
				return
			}
		}
		return
	}
	off := 0
	if rg := r.Header.Get("Range"); strings.HasPrefix(rg, "bytes=") {
		off, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(blob)-1, len(blob)))
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)-off))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	}
	body := blob[off:]
	if (fault == "truncate-once" && isLayer && off == 0) || (fault == "truncate-always" && isLayer) {
		// Half, then the connection goes: the client sees a short body.
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	w.Write(body)
}

func (f *fakeRegistry) setFault(s string) {
	f.mu.Lock()
	f.fault, f.ranges, f.blobs = s, nil, 0
	f.mu.Unlock()
}

// threeLayers is a base, a layer that adds and replaces files, and one
// that deletes a file of the base (a whiteout the pull must keep).
func threeLayers(t *testing.T, arch string) *fakeImage {
	big := bigFile() // a layer worth resuming
	return newFakeImage(t, arch,
		map[string]string{"etc/motd": "base\n", "etc/deleteme": "x", "big": big},
		map[string]string{"hello": "hello " + arch + "\n", "etc/motd": "layer 2\n"},
		map[string]string{"etc/.wh.deleteme": "", "added": "3\n"},
	)
}

func newRegistryClient(t *testing.T) *registry.Client {
	c, err := registry.New(registry.Config{CertsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rootfsOf mounts a container's snapshot of ref and returns the files'
// contents asked for ("" when absent).
func rootfsOf(t *testing.T, s *image.Store, ref string, names ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	id := "pull-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	_, mounts, err := s.CreateContainer(ctx, id, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.RemoveContainer(ctx, id); err != nil {
			t.Error(err)
		}
	}()
	dir := t.TempDir()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			t.Error(err)
		}
	}()
	out := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			out[n] = string(b)
		}
	}
	return out
}

func TestPullLayersAndWhiteouts(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver)
		reg := newFakeRegistry(t)
		img := threeLayers(t, "amd64")
		reg.add("latest", img)
		ctx := context.Background()
		var events []image.PullEvent
		ref := reg.host() + "/test/img:latest"
		p, err := e.store.Pull(ctx, newRegistryClient(t), ref, image.PullOptions{MaxConcurrent: 3, Progress: func(ev image.PullEvent) { events = append(events, ev) }})
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != img.config.Digest || p.Digest != img.digest || !p.Updated {
			t.Fatalf("pulled %+v, want ID %s digest %s, updated", p, img.config.Digest, img.digest)
		}
		got := rootfsOf(t, e.store, ref, "etc/motd", "hello", "added", "etc/deleteme")
		want := map[string]string{"etc/motd": "layer 2\n", "hello": "hello amd64\n", "added": "3\n"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("container sees %q, want %q (etc/deleteme deleted by layer 3)", got, want)
		}
		complete := 0
		for _, ev := range events {
			if ev.Status == "Pull complete" {
				complete++
			}
		}
		if complete != 3 || events[len(events)-1].Status != "Status: Downloaded newer image for "+reg.host()+"/test/img:latest" {
			t.Fatalf("progress: %d layers complete, last %+v", complete, events[len(events)-1])
		}
		i, err := e.store.Get(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if len(i.RepoDigests) != 1 || i.RepoDigests[0] != reg.host()+"/test/img@"+img.digest.String() {
			t.Fatalf("RepoDigests %v", i.RepoDigests)
		}

		// Again: nothing fetched, up to date.
		reg.setFault("")
		p, err = e.store.Pull(ctx, newRegistryClient(t), ref, image.PullOptions{})
		if err != nil || p.Updated {
			t.Fatalf("second pull: %+v, %v", p, err)
		}
		if reg.blobs != 0 {
			t.Fatalf("second pull fetched %d blobs", reg.blobs)
		}
	})
}

func TestPullResumesBrokenBody(t *testing.T) {
	testutilRoot(t)
	e := newEnv(t, "overlay2")
	reg := newFakeRegistry(t)
	reg.add("latest", threeLayers(t, "amd64"))
	reg.setFault("truncate-once")
	ref := reg.host() + "/test/img:latest"
	if _, err := e.store.Pull(context.Background(), newRegistryClient(t), ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(reg.ranges) == 0 {
		t.Fatal("the broken bodies were not resumed with Range requests")
	}
	if got := rootfsOf(t, e.store, ref, "big"); got["big"] != bigFile() {
		t.Fatalf("big is %d bytes, not what the layer holds", len(got["big"]))
	}
}

// TestPullRefusesBadRegistries: each misbehaviour gets a clear error and
// leaves nothing: no image, blob, snapshot, ingest or layer.
func TestPullRefusesBadRegistries(t *testing.T) {
	for _, tc := range []struct {
		fault, want string
		kind        errdefs.Kind
	}{
		{"wrong-bytes", "digest", errdefs.KindUnknown},
		{"truncate-always", "broke off", errdefs.KindUnavailable},
		{"endless", "more than the", errdefs.KindInvalid},
		{"redirect-loop", "redirects", errdefs.KindUnavailable},
		{"manifest-digest", "does not match the digest", errdefs.KindInvalid},
		{"schema1", "schema 1 is not supported", errdefs.KindNotImplemented},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			forDrivers(t, func(t *testing.T, driver string) {
				e := newEnv(t, driver)
				reg := newFakeRegistry(t)
				reg.add("latest", threeLayers(t, "amd64"))
				reg.setFault(tc.fault)
				_, err := e.store.Pull(context.Background(), newRegistryClient(t), reg.host()+"/test/img", image.PullOptions{})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("pull: %v, want an error saying %q", err, tc.want)
				}
				if tc.kind != errdefs.KindUnknown && errdefs.KindOf(err) != tc.kind {
					t.Errorf("error kind %v, want %v: %v", errdefs.KindOf(err), tc.kind, err)
				}
				imgs, err := e.store.List(context.Background())
				if err != nil || len(imgs) != 0 {
					t.Fatalf("images after a failed pull: %d, %v", len(imgs), err)
				}
				if b, s, i, l := e.counts(t); b+s+i+l != 0 {
					t.Fatalf("left after a failed pull: %d blobs, %d snapshots, %d ingests, %d layers", b, s, i, l)
				}
			})
		})
	}
}

func TestPullPlatformFromIndex(t *testing.T) {
	testutilRoot(t)
	e := newEnv(t, "overlay2")
	reg := newFakeRegistry(t)
	amd, arm := threeLayers(t, "amd64"), threeLayers(t, "arm64")
	reg.add("amd", amd)
	reg.add("arm", arm)
	reg.index, _ = json.Marshal(ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: registry.MediaTypeDockerManifest, Digest: arm.digest, Size: int64(len(arm.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
			{MediaType: registry.MediaTypeDockerManifest, Digest: amd.digest, Size: int64(len(amd.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		},
	})
	ctx := context.Background()
	ref := reg.host() + "/test/img:multi"
	p, err := e.store.Pull(ctx, newRegistryClient(t), ref, image.PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != arm.config.Digest || p.Digest != digest.FromBytes(reg.index) {
		t.Fatalf("pulled %+v, want the arm64 image %s under the index's digest", p, arm.config.Digest)
	}
	if got := rootfsOf(t, e.store, ref, "hello"); got["hello"] != "hello arm64\n" {
		t.Fatalf("hello = %q", got["hello"])
	}
	_, err = e.store.Pull(ctx, newRegistryClient(t), ref, image.PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	if err == nil || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Fatalf("pull for s390x: %v", err)
	}
}

func testutilRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
}

// bigFile is 256 KiB that gzip cannot shrink.
func bigFile() string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 256<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// TestPullConcurrent: two pulls of one image at once both succeed, and the
// layers are made once (the loser of each commit adds its blob to the
// winner's layer and drops its own snapshot).
func TestPullConcurrent(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver)
		reg := newFakeRegistry(t)
		img := threeLayers(t, "amd64")
		reg.add("latest", img)
		ref := reg.host() + "/test/img:latest"
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := e.store.Pull(context.Background(), newRegistryClient(t), ref, image.PullOptions{})
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		blobs, snaps, ingests, layers := e.counts(t)
		// 3 layer blobs, config, manifest; one snapshot per layer.
		if blobs != 5 || snaps != 3 || ingests != 0 || layers != 3 {
			t.Fatalf("after two pulls: %d blobs, %d snapshots, %d ingests, %d layers", blobs, snaps, ingests, layers)
		}
		if got := rootfsOf(t, e.store, ref, "added"); got["added"] != "3\n" {
			t.Fatalf("added = %q", got["added"])
		}
	})
}

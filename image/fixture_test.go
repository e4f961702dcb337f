package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"berth.dev/berth/content"
	"berth.dev/berth/image"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/metadata"
	"berth.dev/berth/snapshot"
)

// env is an image store on a fresh data root.
type env struct {
	root  string
	store *image.Store
	db    *metadata.DB
	cs    *content.Store
	sn    snapshot.Driver
}

func newEnv(t *testing.T, driver string) *env {
	t.Helper()
	e := &env{root: t.TempDir()}
	e.open(t, driver)
	return e
}

func (e *env) open(t *testing.T, driver string) {
	t.Helper()
	var err error
	if e.store, err = image.Open(e.root, driver); err != nil {
		t.Fatal(err)
	}
	e.db, e.sn = e.store.DB(), e.store.Driver()
	e.cs = e.db.Content
	t.Cleanup(func() { e.close(t) })
}

func (e *env) close(t *testing.T) {
	if e.db == nil {
		return
	}
	if err := e.store.Close(); err != nil {
		t.Error(err)
	}
	e.db = nil
}

// counts is what lies on disk: blobs, snapshots, ingests, layer records.
func (e *env) counts(t *testing.T) (blobs, snaps, ingests, layers int) {
	t.Helper()
	ctx := context.Background()
	if err := e.cs.Walk(ctx, func(content.Info) error { blobs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.sn.Walk(ctx, func(snapshot.Info) error { snaps++; return nil }); err != nil {
		t.Fatal(err)
	}
	in, err := e.cs.ListIngests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.View(func(tx *metadata.Tx) error {
		l, err := tx.Layers()
		layers = len(l)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return blobs, snaps, len(in), layers
}

func layerTar(t *testing.T, dir, out string) {
	t.Helper()
	if err := testutil.LayerTar(dir, out); err != nil {
		t.Fatal(err)
	}
}

func dockerArchive(t *testing.T, out string, tags []string, cmd []string, layerDirs ...string) string {
	t.Helper()
	id, err := testutil.DockerArchive(out, tags, cmd, layerDirs...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeFiles makes a directory tree from path → content ("" content and a
// trailing slash make a directory).
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if p[len(p)-1] == '/' {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarOf builds a tar of regular files in memory, in sorted order.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarNames lists the entries of a tar, without "./" and trailing slashes.
func tarNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")] = true
	}
}

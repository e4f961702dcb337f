// Package image is berth's image service: images by ID and reference, their
// layers unpacked into graph-driver snapshots, and the operations docker
// users know — load and save (docker-archive and OCI layout), import,
// export, commit, inspect, history, tag, remove, prune and disk usage. It
// stands on the content store (blobs), the graph driver (snapshots) and the
// metadata database (records, leases, garbage collection).
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"berth.dev/berth/archive"
	"berth.dev/berth/content"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/metadata"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/drivers"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is the image service.
type Store struct {
	db *metadata.DB
	cs *content.Store
	sn snapshot.Driver
	// Running reports whether a container is running, for docker's rule
	// that an image a running container uses cannot be removed even by
	// force. The daemon sets it; nil means none runs.
	Running func(containerID string) bool
	owned   bool       // Close closes db and sn
	initMu  sync.Mutex // makes init layers (prepareOnInit)
}

// New returns the image service over an open metadata database.
func New(db *metadata.DB) *Store {
	return &Store{db: db, cs: db.Content, sn: db.Snapshots}
}

// Open opens the image side of a data root: the content store in
// <root>/content, the graph driver (driver, "" to choose) under
// <root>/snapshots, the metadata database in <root>. Close closes them.
func Open(root, driver string) (*Store, error) {
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	sn, err := drivers.Open(filepath.Join(root, "snapshots"), driver)
	if err != nil {
		return nil, err
	}
	db, err := metadata.Open(root, cs, sn)
	if err != nil {
		sn.Close()
		return nil, err
	}
	s := New(db)
	s.owned = true
	return s, nil
}

// Close closes what Open opened.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return errors.Join(s.db.Close(), s.sn.Close())
}

// DB is the metadata database under the store.
func (s *Store) DB() *metadata.DB { return s.db }

// Driver is the graph driver under the store.
func (s *Store) Driver() snapshot.Driver { return s.sn }

// Image is an image with what docker's inspect shows of it.
type Image struct {
	metadata.Image
	Config      *Config
	RawConfig   []byte
	RepoTags    []string // familiar, "busybox:latest"
	RepoDigests []string // familiar, "busybox@sha256:..."
	// Size is the unpacked size of all its layers.
	Size int64
}

// Get returns the image s names (reference, ID or ID prefix).
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	var out *Image
	err := s.db.View(func(tx *metadata.Tx) error {
		id, _, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		out, err = s.describe(ctx, tx, id)
		return err
	})
	return out, err
}

// List returns every image, newest first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *metadata.Tx) error {
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			d, err := s.describe(ctx, tx, img.ID)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

func (s *Store) describe(ctx context.Context, tx *metadata.Tx, id digest.Digest) (*Image, error) {
	img, err := tx.Image(id)
	if err != nil {
		return nil, err
	}
	raw, err := s.readBlob(ctx, id, "image config")
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	out := &Image{Image: img, Config: cfg, RawConfig: raw}
	refs, err := tx.RefsOf(id)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if _, isDigest := digestOf(r); isDigest {
			out.RepoDigests = append(out.RepoDigests, Familiar(r))
		} else {
			out.RepoTags = append(out.RepoTags, Familiar(r))
		}
	}
	for _, c := range img.ChainIDs {
		l, err := tx.Layer(c)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ShortID(id), err)
		}
		out.Size += l.UnpackedSize
	}
	return out, nil
}

func (s *Store) readBlob(ctx context.Context, d digest.Digest, what string) ([]byte, error) {
	f, err := s.cs.Open(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d, err)
	}
	defer f.Close()
	return readAllLimited(f, what)
}

// Tag points reference target at the image source names.
func (s *Store) Tag(ctx context.Context, source, target string) error {
	named, err := ParseRef(target)
	if err != nil {
		return err
	}
	if _, isDigest := digestOf(named.String()); isDigest {
		return errdefs.Invalid("refusing to create a tag with a digest reference: %s", target)
	}
	return s.db.Update(func(tx *metadata.Tx) error {
		id, _, err := resolve(tx, source)
		if err != nil {
			return err
		}
		return s.setRef(tx, named.String(), id)
	})
}

// setRef points ref at id and stamps the image's LastTagTime.
func (s *Store) setRef(tx *metadata.Tx, ref string, id digest.Digest) error {
	img, err := tx.Image(id)
	if err != nil {
		return err
	}
	img.LastTagTime = time.Now().UTC()
	if err := tx.PutImage(img); err != nil {
		return err
	}
	return tx.PutRef(ref, id)
}

// unpack makes sure every layer of a config is a committed snapshot, taking
// each layer's bytes from the blob in layers[i] (any compression). It
// returns the chain IDs. Layers already present are not unpacked again.
func (s *Store) unpack(ctx context.Context, lease *metadata.LeaseHandle, diffIDs []digest.Digest, layers []ocispec.Descriptor) ([]digest.Digest, error) {
	if len(diffIDs) != len(layers) {
		return nil, errdefs.Invalid("image has %d layers but its config lists %d diff IDs", len(layers), len(diffIDs))
	}
	// ChainIDs works in place.
	chain := identity.ChainIDs(slices.Clone(diffIDs))
	for i, c := range chain {
		var parent digest.Digest
		if i > 0 {
			parent = chain[i-1]
		}
		if err := s.unpackLayer(ctx, lease, c, parent, diffIDs[i], layers[i]); err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, diffIDs[i], err)
		}
	}
	return chain, nil
}

func (s *Store) unpackLayer(ctx context.Context, lease *metadata.LeaseHandle, chainID, parent, diffID digest.Digest, blob ocispec.Descriptor) error {
	if err := lease.AddSnapshot(chainID.String()); err != nil {
		return err
	}
	if have, err := s.addLayerBlob(chainID, blob); err != nil || have {
		return err
	}
	key := "extract-" + lease.ID() + "-" + chainID.Encoded()
	if err := lease.AddSnapshot(key); err != nil {
		return err
	}
	if _, err := s.sn.Prepare(ctx, key, parent.String()); err != nil {
		return fmt.Errorf("prepare snapshot: %w", err)
	}
	// Gone after Commit; removed here if anything fails before.
	defer s.sn.Remove(context.WithoutCancel(ctx), key) //nolint:errcheck
	f, err := s.cs.Open(ctx, blob.Digest)
	if err != nil {
		return err
	}
	r := newProgressReader(ctx, f, chainID.Encoded()[:12], blob.Size)
	res, err := s.sn.Apply(ctx, key, r, archive.ApplyOptions{Expected: blob.Digest, ExpectedDiffID: diffID})
	f.Close()
	if err != nil {
		return err
	}
	return s.commitLayer(ctx, key, chainID, parent, res, blob, nil)
}

// commitLayer commits the active snapshot key, holding a layer's files, as
// layer chainID — or, when that layer exists already (a concurrent unpack
// won), adds blob to it. commit, when not nil, commits instead of the
// driver's Commit (a detached snapshot's CommitOnto).
func (s *Store) commitLayer(ctx context.Context, key string, chainID, parent digest.Digest, res archive.Result, blob ocispec.Descriptor, commit func() error) error {
	if have, err := s.addLayerBlob(chainID, blob); err != nil || have {
		return err
	}
	usage, err := s.sn.Usage(ctx, key)
	if err != nil {
		return err
	}
	if commit == nil {
		commit = func() error { return s.sn.Commit(ctx, chainID.String(), key) }
	}
	if err := commit(); err != nil {
		if !errdefs.Is(err, errdefs.KindConflict) {
			return fmt.Errorf("commit snapshot: %w", err)
		}
		// The winner records the layer right after its commit.
		for {
			if have, err := s.addLayerBlob(chainID, blob); err != nil || have {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return s.db.Update(func(tx *metadata.Tx) error {
		return tx.PutLayer(metadata.Layer{
			ChainID: chainID, DiffID: res.DiffID, Parent: parent,
			Size: res.Size, UnpackedSize: usage.Size,
			Blobs: []ocispec.Descriptor{blob},
		})
	})
}

// addLayerBlob records that blob holds layer chainID, if the layer exists.
// A read comes first: the common answers (no such layer, or it knows the
// blob) then cost no commit and its fsync.
func (s *Store) addLayerBlob(chainID digest.Digest, blob ocispec.Descriptor) (have bool, err error) {
	known := false
	if err := s.db.View(func(tx *metadata.Tx) error {
		l, err := tx.Layer(chainID)
		if err != nil {
			return nil
		}
		have, known = true, hasBlob(l.Blobs, blob.Digest)
		return nil
	}); err != nil || !have || known {
		return have, err
	}
	err = s.db.Update(func(tx *metadata.Tx) error {
		l, err := tx.Layer(chainID)
		if have = err == nil; !have {
			return nil
		}
		if hasBlob(l.Blobs, blob.Digest) {
			return nil
		}
		l.Blobs = append(l.Blobs, blob)
		return tx.PutLayer(l)
	})
	return have, err
}

func hasBlob(ds []ocispec.Descriptor, d digest.Digest) bool {
	for _, x := range ds {
		if x.Digest == d {
			return true
		}
	}
	return false
}

// ingest writes r to the content store under lease, verifying it against
// expected when given, and returns its descriptor digest and size.
func (s *Store) ingest(ctx context.Context, lease *metadata.LeaseHandle, ref string, r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	if err := lease.AddIngest(ref); err != nil {
		return "", 0, err
	}
	w, err := s.cs.Writer(ctx, ref)
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	n, err := io.Copy(w, r)
	if err != nil {
		return "", 0, err
	}
	d := w.Digest()
	if expected != "" && d != expected {
		_ = s.cs.Abort(ctx, ref)
		return "", 0, errdefs.Invalid("content digest mismatch: got %s, want %s", d, expected)
	}
	if err := lease.AddContent(d); err != nil {
		return "", 0, err
	}
	if err := w.Commit(ctx, n, d); err != nil && !content.IsExists(err) {
		return "", 0, err
	}
	return d, n, nil
}

// digestOf tells whether a normalized reference is name@digest.
func digestOf(ref string) (digest.Digest, bool) {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '@' {
			d := digest.Digest(ref[i+1:])
			return d, d.Validate() == nil
		}
	}
	return "", false
}

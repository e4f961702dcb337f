package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"berth.dev/berth/archive"
	"berth.dev/berth/content"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/metadata"
	"berth.dev/berth/snapshot"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NewImageOptions describe the image an import or commit makes.
type NewImageOptions struct {
	Ref     string   // tag the new image, if set
	Author  string   // commit --author
	Message string   // import/commit --message: the history comment
	Changes []string // --change instructions
	// Config, for commit, replaces the run configuration taken from the
	// base image (docker commit's container config), before Changes.
	Config *ContainerConfig
	// CreatedBy, for commit, is the new history entry's "created by" (the
	// container's command; default: the configuration's).
	CreatedBy string
}

// Import makes a one-layer image from a rootfs tar (any compression), as
// docker import does. The tar is stored, hashed and unpacked in one pass.
func (s *Store) Import(ctx context.Context, r io.Reader, opts NewImageOptions) (digest.Digest, error) {
	lease, err := s.db.NewLease()
	if err != nil {
		return "", err
	}
	defer func() { _ = lease.Release() }()
	ref := "import-" + lease.ID()
	if err := lease.AddIngest(ref); err != nil {
		return "", err
	}
	w, err := s.cs.Writer(ctx, ref)
	if err != nil {
		return "", err
	}
	defer w.Close()
	key := "import-" + lease.ID()
	if err := lease.AddSnapshot(key); err != nil {
		return "", err
	}
	if _, err := s.sn.Prepare(ctx, key, ""); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	defer s.sn.Remove(context.WithoutCancel(ctx), key) //nolint:errcheck // gone after Commit
	res, err := s.sn.Apply(ctx, key, io.TeeReader(r, w), archive.ApplyOptions{})
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if err := lease.AddContent(res.Digest); err != nil {
		return "", err
	}
	if err := w.Commit(ctx, w.Offset(), res.Digest); err != nil && !content.IsExists(err) {
		return "", fmt.Errorf("import: %w", err)
	}
	mediaType := map[archive.Compression]string{archive.Gzip: ocispec.MediaTypeImageLayerGzip, archive.Zstd: ocispec.MediaTypeImageLayerZstd}[res.Compression]
	if mediaType == "" {
		mediaType = ocispec.MediaTypeImageLayer
	}
	blob := ocispec.Descriptor{MediaType: mediaType, Digest: res.Digest, Size: w.Offset()}
	chainID := identity.ChainID([]digest.Digest{res.DiffID})
	if err := lease.AddSnapshot(chainID.String()); err != nil {
		return "", err
	}
	if err := s.commitLayer(ctx, key, chainID, "", res, blob, nil); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}

	now := time.Now().UTC()
	cfg := &Config{Created: &now, Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{res.DiffID}}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	cfg.Comment = opts.Message // docker inspect's .Comment, as dockerd sets it
	if err := ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", err
	}
	id, err := s.addNewImage(ctx, lease, cfg, []digest.Digest{chainID}, []ocispec.Descriptor{blob}, "", opts.Ref)
	return id, errWrap("import", err)
}

// addNewImage stores a config berth wrote, a manifest for it, the image
// record, and the reference.
func (s *Store) addNewImage(ctx context.Context, lease *metadata.LeaseHandle, cfg *Config, chain []digest.Digest, layers []ocispec.Descriptor, parent digest.Digest, ref string) (digest.Digest, error) {
	var named string
	if ref != "" {
		n, err := ParseRef(ref)
		if err != nil {
			return "", err
		}
		if _, isDigest := digestOf(n.String()); isDigest {
			return "", errdefs.Invalid("cannot tag with a digest reference: %s", ref)
		}
		named = n.String()
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	id, n, err := s.ingest(ctx, lease, "config-"+lease.ID(), strings.NewReader(string(raw)), "")
	if err != nil {
		return "", err
	}
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: n}
	manifest, err := s.writeManifest(ctx, lease, config, layers)
	if err != nil {
		return "", err
	}
	err = s.db.Update(func(tx *metadata.Tx) error {
		img := metadata.Image{ID: id, ChainIDs: chain, Manifests: []ocispec.Descriptor{*manifest}, Parent: parent, Created: *cfg.Created}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		if named != "" {
			return s.setRef(tx, named, id)
		}
		return nil
	})
	return id, err
}

// Commit makes a new image from a container's changes on its image: docker
// commit. The changes become one uncompressed layer.
func (s *Store) Commit(ctx context.Context, containerID string, opts NewImageOptions) (digest.Digest, error) {
	c, err := s.container(containerID)
	if err != nil {
		return "", err
	}
	base, err := s.Get(ctx, c.Image.String())
	if err != nil {
		return "", fmt.Errorf("commit: the container's image: %w", err)
	}
	lease, err := s.db.NewLease()
	if err != nil {
		return "", err
	}
	defer func() { _ = lease.Release() }()

	// The diff goes to the content store through a pipe and, from there,
	// into a new snapshot: the layer has the bytes the blob has.
	ref := "commit-" + lease.ID()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.sn.Diff(ctx, c.Snapshot, pw)) }()
	blobDigest, size, err := s.ingest(ctx, lease, ref, pr, "")
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("commit: diff: %w", err)
	}
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: blobDigest, Size: size}
	var parent digest.Digest
	if n := len(base.ChainIDs); n > 0 {
		parent = base.ChainIDs[n-1]
	}
	chain := append(append([]digest.Digest{}, base.ChainIDs...), identity.ChainID(append(append([]digest.Digest{}, base.Config.RootFS.DiffIDs...), blobDigest)))
	top := chain[len(chain)-1]
	if err := s.unpackLayer(ctx, lease, top, parent, blobDigest, blob); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}

	now := time.Now().UTC()
	cfg := *base.Config
	cfg.Created = &now
	cfg.Author = opts.Author
	cfg.Comment = opts.Message
	cfg.Container = containerID
	cfg.RootFS.DiffIDs = append(append([]digest.Digest{}, base.Config.RootFS.DiffIDs...), blobDigest)
	if opts.Config != nil {
		cfg.Config = *opts.Config
	}
	createdBy := opts.CreatedBy
	if createdBy == "" {
		createdBy = strings.Join(cfg.Config.Cmd, " ")
	}
	cfg.History = append(append([]ocispec.History{}, base.Config.History...), ocispec.History{
		Created: &now, Author: opts.Author, Comment: opts.Message, CreatedBy: createdBy,
	})
	if err := ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", err
	}
	layers, err := s.layerBlobs(base.Image)
	if err != nil {
		return "", err
	}
	id, err := s.addNewImage(ctx, lease, &cfg, chain, append(layers, blob), base.ID, opts.Ref)
	return id, errWrap("commit", err)
}

// layerBlobs returns a blob for each layer of an image, the ones its
// preferred manifest names.
func (s *Store) layerBlobs(img metadata.Image) ([]ocispec.Descriptor, error) {
	if len(img.Manifests) == 0 {
		return nil, fmt.Errorf("image %s has no manifest", ShortID(img.ID))
	}
	var m ocispec.Manifest
	if err := s.readJSON(context.Background(), img.Manifests[0], "manifest", &m); err != nil {
		return nil, err
	}
	return m.Layers, nil
}

// Export writes a container's whole file system as a tar, as docker export.
func (s *Store) Export(ctx context.Context, containerID string, w io.Writer) error {
	mounts, err := s.ContainerMounts(ctx, containerID)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-export-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("export: mount: %w", err)
	}
	werr := archive.WriteTree(w, dir)
	if err := snapshot.UnmountAll(dir); err != nil {
		return fmt.Errorf("export: unmount: %w", err)
	}
	return errWrap("export", werr)
}

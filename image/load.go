package image

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"time"

	"berth.dev/berth/archive"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/metadata"
	"berth.dev/berth/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Loaded is one image a load brought in.
type Loaded struct {
	ID   digest.Digest
	Refs []string // familiar references now pointing at it
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Docker's media types, which registries and docker-archive manifests use.
const (
	annotationImageName = "io.containerd.image.name"
)

// archiveFiles is what a load read from the archive: every regular file is
// a blob in the content store (named by its path), links are resolved.
type archiveFiles struct {
	files map[string]ocispec.Descriptor
	links map[string]string
}

func (a *archiveFiles) lookup(name string) (ocispec.Descriptor, bool) {
	name = cleanArchivePath(name)
	for range 40 {
		if d, ok := a.files[name]; ok {
			return d, true
		}
		to, ok := a.links[name]
		if !ok {
			break
		}
		name = to
	}
	return ocispec.Descriptor{}, false
}

// cleanArchivePath makes a name inside the archive canonical. Names only
// index the archive's own files, so "../" cannot reach anything else.
func cleanArchivePath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Load reads a docker-archive or OCI-layout tarball (as docker save and
// skopeo write them; gzip or zstd compressed or not) and adds its images
// and their references. Nothing of a failed load stays: its blobs and
// snapshots are held only by a lease, which ends with the load (or with
// the process, should it die).
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Loaded, error) {
	lease, err := s.db.NewLease()
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = lease.Release()
		_, _ = s.db.GC()
	}()

	stream, _, err := archive.Decompress(r)
	if err != nil {
		return nil, errWrap("load", err)
	}
	defer stream.Close()
	files, err := s.readArchive(ctx, lease, stream)
	if err != nil {
		return nil, errWrap("load", err)
	}

	var images []pendingImage
	if d, ok := files.lookup("manifest.json"); ok {
		images, err = s.dockerArchiveImages(ctx, files, d)
	} else if d, ok := files.lookup("index.json"); ok {
		images, err = s.ociLayoutImages(ctx, files, d)
	} else {
		err = errdefs.Invalid("not a docker-archive or OCI image layout: no manifest.json or index.json")
	}
	if err != nil {
		return nil, errWrap("load", err)
	}
	var out []Loaded
	for _, p := range images {
		l, err := s.addImage(ctx, lease, p)
		if err != nil {
			return out, errWrap("load", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// readArchive stores every regular file of the archive as a blob.
func (s *Store) readArchive(ctx context.Context, lease *metadata.LeaseHandle, r io.Reader) (*archiveFiles, error) {
	a := &archiveFiles{files: map[string]ocispec.Descriptor{}, links: map[string]string{}}
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errdefs.Invalid("read archive: %v", err)
		}
		name := cleanArchivePath(h.Name)
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			a.links[name] = cleanArchivePath(target)
		case tar.TypeLink:
			a.links[name] = cleanArchivePath(h.Linkname)
		case tar.TypeReg:
			var expected digest.Digest
			if dir, hex := path.Split(name); dir == "blobs/sha256/" {
				expected = digest.NewDigestFromEncoded(digest.SHA256, hex)
				if err := expected.Validate(); err != nil {
					return nil, errdefs.Invalid("archive entry %s: not a blob name: %v", name, err)
				}
			}
			d, size, err := s.ingest(ctx, lease, fmt.Sprintf("load-%s-%d", lease.ID(), n), tr, expected)
			if err != nil {
				return nil, fmt.Errorf("archive entry %s: %w", name, err)
			}
			a.files[name] = ocispec.Descriptor{Digest: d, Size: size}
		default:
			return nil, errdefs.Invalid("archive entry %s: unexpected type %q", name, h.Typeflag)
		}
	}
	return a, nil
}

// pendingImage is an image found in an archive, not yet unpacked.
type pendingImage struct {
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	manifest *ocispec.Descriptor // as the archive had it, if it had one
	refs     []string            // normalized
}

func (s *Store) readJSON(ctx context.Context, d ocispec.Descriptor, what string, v any) error {
	raw, err := s.readBlob(ctx, d.Digest, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.Invalid("%s: %v", what, err)
	}
	return nil
}

func (s *Store) dockerArchiveImages(ctx context.Context, files *archiveFiles, md ocispec.Descriptor) ([]pendingImage, error) {
	var entries []dockerManifest
	if err := s.readJSON(ctx, md, "manifest.json", &entries); err != nil {
		return nil, err
	}
	// A docker 25+ archive is an OCI layout too: keep its manifests so the
	// image's manifest digest survives the round trip.
	byConfig := map[digest.Digest]ocispec.Descriptor{}
	if d, ok := files.lookup("index.json"); ok {
		if imgs, err := s.ociLayoutImages(ctx, files, d); err == nil {
			for _, p := range imgs {
				if p.manifest != nil {
					byConfig[p.config.Digest] = *p.manifest
				}
			}
		}
	}
	var out []pendingImage
	for i, e := range entries {
		cfg, ok := files.lookup(e.Config)
		if !ok {
			return nil, errdefs.Invalid("manifest.json entry %d: config %s is not in the archive", i, e.Config)
		}
		cfg.MediaType = ocispec.MediaTypeImageConfig
		p := pendingImage{config: cfg}
		for _, l := range e.Layers {
			ld, ok := files.lookup(l)
			if !ok {
				return nil, errdefs.Invalid("manifest.json entry %d: layer %s is not in the archive", i, l)
			}
			p.layers = append(p.layers, ld)
		}
		if m, ok := byConfig[cfg.Digest]; ok {
			p.manifest = &m
		}
		for _, t := range e.RepoTags {
			named, err := ParseRef(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json entry %d: %w", i, err)
			}
			p.refs = append(p.refs, named.String())
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Store) ociLayoutImages(ctx context.Context, files *archiveFiles, indexDesc ocispec.Descriptor) ([]pendingImage, error) {
	var idx ocispec.Index
	if err := s.readJSON(ctx, indexDesc, "index.json", &idx); err != nil {
		return nil, err
	}
	var out []pendingImage
	for _, m := range idx.Manifests {
		p, err := s.ociImage(ctx, files, m, 0)
		if err != nil {
			return nil, err
		}
		if p == nil {
			continue
		}
		if name := imageName(m.Annotations); name != "" {
			named, err := ParseRef(name)
			if err != nil {
				return nil, fmt.Errorf("index.json: %w", err)
			}
			p.refs = append(p.refs, named.String())
		}
		out = append(out, *p)
	}
	return out, nil
}

// imageName is the full reference an index entry names, if it names one:
// containerd's annotation, or an OCI ref.name that is a whole reference
// (a bare tag names nothing without a repository).
func imageName(ann map[string]string) string {
	if n := ann[annotationImageName]; n != "" {
		return n
	}
	n := ann[ocispec.AnnotationRefName]
	if strings.ContainsAny(n, "/:@") {
		return n
	}
	return ""
}

// ociImage reads the image a manifest or index descriptor points to,
// choosing this machine's platform from an index; nil if none fits.
func (s *Store) ociImage(ctx context.Context, files *archiveFiles, d ocispec.Descriptor, depth int) (*pendingImage, error) {
	if depth > 4 {
		return nil, errdefs.Invalid("index nesting deeper than 4")
	}
	blob, ok := files.lookup("blobs/" + d.Digest.Algorithm().String() + "/" + d.Digest.Encoded())
	if !ok || blob.Digest != d.Digest {
		return nil, errdefs.Invalid("blob %s is not in the archive", d.Digest)
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, registry.MediaTypeDockerList:
		var idx ocispec.Index
		if err := s.readJSON(ctx, blob, "index "+d.Digest.String(), &idx); err != nil {
			return nil, err
		}
		for _, m := range idx.Manifests {
			if m.Platform != nil && (m.Platform.OS != "linux" || m.Platform.Architecture != runtime.GOARCH) {
				continue
			}
			if p, err := s.ociImage(ctx, files, m, depth+1); err != nil || p != nil {
				return p, err
			}
		}
		return nil, nil
	case ocispec.MediaTypeImageManifest, registry.MediaTypeDockerManifest, "":
		var m ocispec.Manifest
		if err := s.readJSON(ctx, blob, "manifest "+d.Digest.String(), &m); err != nil {
			return nil, err
		}
		if m.Config.Digest == "" {
			return nil, errdefs.Invalid("manifest %s has no config", d.Digest)
		}
		for _, x := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			b, ok := files.lookup("blobs/" + x.Digest.Algorithm().String() + "/" + x.Digest.Encoded())
			if !ok || b.Digest != x.Digest {
				return nil, errdefs.Invalid("manifest %s: blob %s is not in the archive", d.Digest, x.Digest)
			}
		}
		md := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: blob.Size}
		if md.MediaType == "" {
			md.MediaType = m.MediaType
		}
		return &pendingImage{config: m.Config, layers: m.Layers, manifest: &md}, nil
	}
	return nil, errdefs.Invalid("%s: unsupported media type %q", d.Digest, d.MediaType)
}

// addImage unpacks an image's layers, records it and points its
// references at it.
func (s *Store) addImage(ctx context.Context, lease *metadata.LeaseHandle, p pendingImage) (Loaded, error) {
	raw, err := s.readBlob(ctx, p.config.Digest, "image config")
	if err != nil {
		return Loaded{}, err
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return Loaded{}, err
	}
	for i := range p.layers {
		if p.layers[i].MediaType == "" {
			if p.layers[i].MediaType, err = s.layerMediaType(ctx, p.layers[i].Digest); err != nil {
				return Loaded{}, err
			}
		}
	}
	chain, err := s.unpack(ctx, lease, cfg.RootFS.DiffIDs, p.layers)
	if err != nil {
		return Loaded{}, err
	}
	manifest := p.manifest
	if manifest == nil {
		if manifest, err = s.writeManifest(ctx, lease, p.config, p.layers); err != nil {
			return Loaded{}, err
		}
	}
	id := p.config.Digest
	created := time.Now().UTC()
	if cfg.Created != nil {
		created = *cfg.Created
	}
	out := Loaded{ID: id}
	err = s.db.Update(func(tx *metadata.Tx) error {
		img, err := tx.Image(id)
		if err != nil {
			img = metadata.Image{ID: id, ChainIDs: chain, Created: created}
		}
		if !hasBlob(img.Manifests, manifest.Digest) {
			img.Manifests = append(img.Manifests, *manifest)
		}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		for _, r := range p.refs {
			if err := s.setRef(tx, r, id); err != nil {
				return err
			}
			out.Refs = append(out.Refs, Familiar(r))
		}
		return nil
	})
	return out, err
}

// layerMediaType names a layer blob's type from its compression.
func (s *Store) layerMediaType(ctx context.Context, d digest.Digest) (string, error) {
	f, err := s.cs.Open(ctx, d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	c, err := archive.DetectCompression(bufio.NewReader(f))
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", d, err)
	}
	switch c {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

// writeManifest stores an OCI manifest for an image that came without one
// (docker-archive, import, commit), so save and push have one to give.
func (s *Store) writeManifest(ctx context.Context, lease *metadata.LeaseHandle, config ocispec.Descriptor, layers []ocispec.Descriptor) (*ocispec.Descriptor, error) {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
	m.SchemaVersion = 2
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	d, n, err := s.ingest(ctx, lease, "manifest-"+lease.ID()+"-"+config.Digest.Encoded(), strings.NewReader(string(raw)), "")
	if err != nil {
		return nil, err
	}
	return &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: n}, nil
}

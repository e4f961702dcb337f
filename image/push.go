package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"berth.dev/berth/archive"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image/reference"
	"berth.dev/berth/metadata"
	"berth.dev/berth/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions says how to push.
type PushOptions struct {
	Auth registry.AuthConfig
	// MaxConcurrent is how many blobs are uploaded at once (default 5).
	MaxConcurrent int
	// Progress hears docker's push progress; one call at a time.
	Progress func(PullEvent)
}

// Pushed is one tag a push sent.
type Pushed struct {
	Tag    string
	Digest digest.Digest
	Size   int64
}

// DefaultMaxUploads is docker's max-concurrent-uploads default.
const DefaultMaxUploads = 5

// Push sends the images ref names to its registry: one tag, or every tag
// of the repository when ref has none. Blobs the registry has are
// skipped, blobs another repository of the registry has are mounted from
// it, the rest uploaded, several at once; the manifest goes last, so a
// failed push leaves no tag pointing at missing blobs.
func (s *Store) Push(ctx context.Context, reg *registry.Client, ref string, o PushOptions) ([]Pushed, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	if named.Digest != "" {
		return nil, errdefs.Invalid("cannot push a digest reference (%s): push a tag", named.FamiliarString())
	}
	tags, err := s.tagsOf(named)
	if err != nil {
		return nil, err
	}
	say := serialized(o.Progress)
	say(PullEvent{Status: "The push refers to repository [" + named.Name() + "]"})
	var out []Pushed
	var repo *registry.Repository
	for _, tag := range tags {
		t := named
		t.Tag = tag
		p, err := s.pushTag(ctx, reg, &repo, t, o, say)
		if err != nil {
			return out, pushError(o.Auth, err)
		}
		say(PullEvent{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, p.Digest, p.Size)})
		out = append(out, p)
	}
	return out, nil
}

// pushError words a registry's refusal as docker does.
func pushError(auth registry.AuthConfig, err error) error {
	var re *registry.Error
	if !errors.As(err, &re) || (re.Status != 401 && re.Status != 403) {
		return err
	}
	if auth.Username == "" && auth.Auth == "" && auth.IdentityToken == "" && auth.RegistryToken == "" {
		return errdefs.Mark(errdefs.KindUnauthorized, fmt.Errorf("no basic auth credentials (%w)", err))
	}
	return errdefs.Mark(errdefs.KindForbidden, fmt.Errorf("denied: requested access to the resource is denied (%w)", err))
}

// tagsOf lists the tags to push: named's, or all of its repository's.
func (s *Store) tagsOf(named reference.Named) ([]string, error) {
	if named.Tag != "" {
		return []string{named.Tag}, nil
	}
	var tags []string
	err := s.db.View(func(tx *metadata.Tx) error {
		refs, err := tx.Refs()
		if err != nil {
			return err
		}
		for r := range refs {
			n, err := reference.ParseNormalizedNamed(r)
			if err == nil && n.Name() == named.Name() && n.Tag != "" && n.Digest == "" {
				tags = append(tags, n.Tag)
			}
		}
		return nil
	})
	if err == nil && len(tags) == 0 {
		err = errdefs.NotFound("An image does not exist locally with the tag: %s", named.FamiliarName())
	}
	sort.Strings(tags)
	return tags, err
}

// pushImage is what a push of one tag sends.
type pushImage struct {
	id       digest.Digest
	manifest ocispec.Descriptor
	raw      []byte
	blobs    []ocispec.Descriptor // config first, then the layers
	chain    []digest.Digest      // the layers' chain IDs
	// from lists, per blob, the repositories of the same registry that
	// have it (as far as this store knows): candidates to mount from.
	from map[digest.Digest][]string
}

func (s *Store) pushTag(ctx context.Context, reg *registry.Client, repo **registry.Repository, named reference.Named, o PushOptions, say func(PullEvent)) (Pushed, error) {
	img, err := s.pushable(ctx, named)
	if err != nil {
		return Pushed{}, err
	}
	if *repo == nil {
		var from []string
		for _, rs := range img.from {
			from = append(from, rs...)
		}
		if *repo, err = reg.Repository(ctx, named.Domain, named.Path, o.Auth, []string{"pull", "push"}, dedupe(from)...); err != nil {
			return Pushed{}, err
		}
	}
	r := *repo
	// Progress names a layer by its stored blob, even when the push sends
	// a compressed copy; the config has no line.
	ids := make([]string, len(img.blobs))
	for i := len(img.blobs) - 1; i > 0; i-- {
		ids[i] = img.blobs[i].Digest.Encoded()[:12]
		say(PullEvent{ID: ids[i], Status: "Preparing"})
	}
	n := o.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxUploads
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, n)
	errs := make(chan error, len(img.blobs))
	var wg sync.WaitGroup
	for i, b := range img.blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			if i > 0 && uncompressed(b.MediaType) {
				gz, err := s.gzipLayer(ctx, img.chain[i-1], b, img.manifest.MediaType)
				if err != nil {
					cancel()
					errs <- fmt.Errorf("compress layer %s: %w", b.Digest, err)
					return
				}
				img.blobs[i], b = gz, gz
			}
			if err := s.pushBlob(ctx, r, b, img.from[b.Digest], ids[i], say); err != nil {
				cancel()
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && err != context.Canceled {
			return Pushed{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Pushed{}, err
	}
	if err := s.compressedManifest(ctx, img); err != nil {
		return Pushed{}, err
	}
	d, err := r.PutManifest(ctx, named.Tag, img.manifest.MediaType, img.raw)
	if err != nil {
		return Pushed{}, err
	}
	// The registry now has the image: record its digest, as a pull would.
	_ = s.db.Update(func(tx *metadata.Tx) error {
		return tx.PutRef(named.Name()+"@"+d.String(), img.id)
	})
	return Pushed{Tag: named.Tag, Digest: d, Size: int64(len(img.raw))}, nil
}

func (s *Store) pushBlob(ctx context.Context, r *registry.Repository, b ocispec.Descriptor, from []string, id string, say func(PullEvent)) error {
	layer := id != ""
	open := func() (io.ReadCloser, error) {
		f, err := s.cs.Open(ctx, b.Digest)
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if !layer {
			return f, nil
		}
		pr := &progressReader{r: f, id: id, total: b.Size, fn: func(id string, cur, total int64) {
			say(PullEvent{ID: id, Status: "Pushing", Current: cur, Total: total})
		}}
		return struct {
			io.Reader
			io.Closer
		}{pr, f}, nil
	}
	how, err := r.PushBlob(ctx, b, from, open)
	if err != nil || !layer {
		return err
	}
	switch how {
	case registry.BlobExisted:
		say(PullEvent{ID: id, Status: "Layer already exists"})
	case registry.BlobMounted:
		say(PullEvent{ID: id, Status: "Mounted from " + firstOther(from, r.Path())})
	default:
		say(PullEvent{ID: id, Status: "Pushed"})
	}
	return nil
}

func firstOther(from []string, self string) string {
	for _, f := range from {
		if f != self {
			return f
		}
	}
	return ""
}

func anyUncompressed(layers []ocispec.Descriptor) bool {
	for _, l := range layers {
		if uncompressed(l.MediaType) {
			return true
		}
	}
	return false
}

// uncompressed tells whether a layer media type is a plain tar.
func uncompressed(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageLayer || mediaType == registry.MediaTypeDockerLayerPlain
}

// gzipLayer returns layer chainID's gzip blob, making it from blob (a
// plain tar) the first time: registries and the docker CLI expect
// compressed layers, as docker pushes them. The new blob is recorded with
// the layer, so the next push (and cross-repository mounts) find it.
func (s *Store) gzipLayer(ctx context.Context, chainID digest.Digest, blob ocispec.Descriptor, manifestType string) (ocispec.Descriptor, error) {
	mediaType := ocispec.MediaTypeImageLayerGzip
	if manifestType == registry.MediaTypeDockerManifest {
		mediaType = registry.MediaTypeDockerLayer
	}
	var have *ocispec.Descriptor
	if err := s.db.View(func(tx *metadata.Tx) error {
		l, err := tx.Layer(chainID)
		if err != nil {
			return err
		}
		for _, b := range l.Blobs {
			if b.MediaType == ocispec.MediaTypeImageLayerGzip || b.MediaType == registry.MediaTypeDockerLayer {
				if _, err := s.cs.Info(ctx, b.Digest); err == nil {
					b.MediaType = mediaType
					have = &b
					return nil
				}
			}
		}
		return nil
	}); err != nil {
		return ocispec.Descriptor{}, err
	}
	if have != nil {
		return *have, nil
	}
	lease, err := s.db.NewLease()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer lease.Release() //nolint:errcheck // the layer record holds the blob once it is made
	src, err := s.cs.Open(ctx, blob.Digest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	go func() {
		zw, err := archive.Compress(pw, archive.Gzip)
		if err == nil {
			_, err = io.Copy(zw, src)
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	d, n, err := s.ingest(ctx, lease, "push-gzip-"+lease.ID()+"-"+blob.Digest.Encoded(), pr, "")
	pr.CloseWithError(err)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	gz := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: n}
	if _, err := s.addLayerBlob(chainID, gz); err != nil {
		return ocispec.Descriptor{}, err
	}
	return gz, nil
}

// compressedManifest rewrites img's manifest when a layer was compressed
// for the push: the registry gets the gzip layers, and the image keeps
// the new manifest beside the one it had.
func (s *Store) compressedManifest(ctx context.Context, img *pushImage) error {
	var m ocispec.Manifest
	if err := json.Unmarshal(img.raw, &m); err != nil {
		return errdefs.Invalid("manifest %s: %v", img.manifest.Digest, err)
	}
	changed := false
	for i := range m.Layers {
		if m.Layers[i].Digest != img.blobs[i+1].Digest {
			m.Layers[i], changed = img.blobs[i+1], true
		}
	}
	if !changed {
		return nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	lease, err := s.db.NewLease()
	if err != nil {
		return err
	}
	defer lease.Release() //nolint:errcheck // the image record holds the manifest once it is stored
	d, n, err := s.ingest(ctx, lease, "push-manifest-"+lease.ID(), bytes.NewReader(raw), "")
	if err != nil {
		return err
	}
	img.manifest = ocispec.Descriptor{MediaType: img.manifest.MediaType, Digest: d, Size: n}
	img.raw = raw
	return s.db.Update(func(tx *metadata.Tx) error {
		rec, err := tx.Image(img.id)
		if err != nil {
			return err
		}
		if !hasBlob(rec.Manifests, d) {
			rec.Manifests = append(rec.Manifests, img.manifest)
		}
		return tx.PutImage(rec)
	})
}

// pushable reads what a push of named sends: its image's manifest (the
// one it came with, or the one berth wrote for it) and the blobs it
// names, which must all be in the content store.
func (s *Store) pushable(ctx context.Context, named reference.Named) (*pushImage, error) {
	var img metadata.Image
	p := &pushImage{from: map[digest.Digest][]string{}}
	err := s.db.View(func(tx *metadata.Tx) error {
		id, err := tx.Ref(named.String())
		if err != nil {
			return errdefs.NotFound("An image does not exist locally with the tag: %s", named.FamiliarString())
		}
		if img, err = tx.Image(id); err != nil {
			return err
		}
		p.id, p.chain = id, img.ChainIDs
		return s.mountSources(tx, named, p)
	})
	if err != nil {
		return nil, err
	}
	if len(img.Manifests) == 0 {
		return nil, errdefs.Invalid("image %s has no manifest to push", ShortID(img.ID))
	}
	// The first manifest with compressed layers (a pull's, or one an
	// earlier push wrote), else the first one.
	var m ocispec.Manifest
	for i, md := range img.Manifests {
		raw, err := s.readBlob(ctx, md.Digest, "manifest")
		if err != nil {
			return nil, err
		}
		var mi ocispec.Manifest
		if err := json.Unmarshal(raw, &mi); err != nil {
			return nil, errdefs.Invalid("manifest %s: %v", md.Digest, err)
		}
		if i == 0 || !anyUncompressed(mi.Layers) {
			p.manifest, p.raw, m = md, raw, mi
		}
		if !anyUncompressed(mi.Layers) {
			break
		}
	}
	if p.manifest.MediaType == "" {
		p.manifest.MediaType = m.MediaType
	}
	p.blobs = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	if len(m.Layers) != len(p.chain) {
		return nil, errdefs.Invalid("image %s: its manifest has %d layers, the image %d", ShortID(img.ID), len(m.Layers), len(p.chain))
	}
	for _, b := range p.blobs {
		if _, err := s.cs.Info(ctx, b.Digest); err != nil {
			return nil, fmt.Errorf("push %s: blob %s of its manifest is not stored: %w", named.FamiliarString(), b.Digest, err)
		}
	}
	return p, nil
}

// mountSources fills p.from: for each blob of the images this store
// knows, the repositories on named's registry that it was pulled from or
// pushed to (their references say so).
func (s *Store) mountSources(tx *metadata.Tx, named reference.Named, p *pushImage) error {
	refs, err := tx.Refs()
	if err != nil {
		return err
	}
	for r, id := range refs {
		n, err := reference.ParseNormalizedNamed(r)
		if err != nil || n.Domain != named.Domain || n.Path == named.Path {
			continue
		}
		img, err := tx.Image(id)
		if err != nil {
			continue
		}
		for _, c := range img.ChainIDs {
			l, err := tx.Layer(c)
			if err != nil {
				continue
			}
			for _, b := range l.Blobs {
				if !slices.Contains(p.from[b.Digest], n.Path) {
					p.from[b.Digest] = append(p.from[b.Digest], n.Path)
				}
			}
		}
	}
	return nil
}

func dedupe(xs []string) []string {
	sort.Strings(xs)
	return slices.Compact(xs)
}

package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

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
	layers := img.blobs[1:]
	for i := len(layers) - 1; i >= 0; i-- {
		say(PullEvent{ID: layers[i].Digest.Encoded()[:12], Status: "Preparing"})
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
			if err := s.pushBlob(ctx, r, b, img.from[b.Digest], i > 0, say); err != nil {
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

func (s *Store) pushBlob(ctx context.Context, r *registry.Repository, b ocispec.Descriptor, from []string, layer bool, say func(PullEvent)) error {
	id := b.Digest.Encoded()[:12]
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
		p.id = id
		return s.mountSources(tx, named, p)
	})
	if err != nil {
		return nil, err
	}
	if len(img.Manifests) == 0 {
		return nil, errdefs.Invalid("image %s has no manifest to push", ShortID(img.ID))
	}
	p.manifest = img.Manifests[0]
	if p.raw, err = s.readBlob(ctx, p.manifest.Digest, "manifest"); err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(p.raw, &m); err != nil {
		return nil, errdefs.Invalid("manifest %s: %v", p.manifest.Digest, err)
	}
	if p.manifest.MediaType == "" {
		p.manifest.MediaType = m.MediaType
	}
	p.blobs = append([]ocispec.Descriptor{m.Config}, m.Layers...)
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

package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"berth.dev/berth/archive"
	"berth.dev/berth/content"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image/reference"
	"berth.dev/berth/metadata"
	"berth.dev/berth/registry"
	"berth.dev/berth/snapshot"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions says how to pull an image.
type PullOptions struct {
	Auth registry.AuthConfig
	// Platform chooses from a manifest list; nil means this machine's.
	Platform *ocispec.Platform
	// MaxConcurrent is how many layers are fetched at once (default 3).
	MaxConcurrent int
	// Progress hears what docker's pull progress says. It is called from
	// one goroutine at a time.
	Progress func(PullEvent)
}

// PullEvent is one message of a pull's progress, as docker words them:
// ID is a layer's short digest (or the tag for the opening line), Status
// what happens to it; Total > 0 gives a progress bar.
type PullEvent struct {
	ID             string
	Status         string
	Current, Total int64
}

// Pulled is what a pull brought.
type Pulled struct {
	ID  digest.Digest
	Ref string // familiar: "busybox:latest", "127.0.0.1:5000/x@sha256:..."
	// Digest is the digest of what the reference named in the registry
	// (the manifest list's, for a multi-platform image).
	Digest digest.Digest
	// Updated is false when the image was here, whole, already.
	Updated bool
}

// PullAllTags pulls every tag of repository name (docker pull -a); a
// name with a tag or digest is pulled alone.
func (s *Store) PullAllTags(ctx context.Context, reg *registry.Client, name string, o PullOptions) ([]Pulled, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	if named.Tag != "" || named.Digest != "" {
		p, err := s.Pull(ctx, reg, name, o)
		if err != nil {
			return nil, err
		}
		return []Pulled{p}, nil
	}
	repo, err := reg.Repository(ctx, named.Domain, named.Path, o.Auth, []string{"pull"})
	if err != nil {
		return nil, pullError(named, err)
	}
	tags, err := repo.Tags(ctx)
	if err != nil {
		return nil, pullError(named, err)
	}
	var out []Pulled
	for _, tag := range tags {
		p, err := s.Pull(ctx, reg, named.Name()+":"+tag, o)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DefaultMaxConcurrent is docker's max-concurrent-downloads default.
const DefaultMaxConcurrent = 3

// Pull fetches ref from its registry: the manifest (from a list, the
// platform's), the config, and the layers not present — several at once,
// each streamed in one pass through the content store (which verifies its
// digest) and extraction (which verifies its diff ID). Nothing of a
// failed pull stays: it is held by a lease only.
func (s *Store) Pull(ctx context.Context, reg *registry.Client, ref string, o PullOptions) (Pulled, error) {
	named, err := ParseRef(ref)
	if err != nil {
		return Pulled{}, err
	}
	say := serialized(o.Progress)
	which := named.Tag
	if named.Digest != "" {
		which = named.Digest.String()
	}
	repo, err := reg.Repository(ctx, named.Domain, named.Path, o.Auth, []string{"pull"})
	if err != nil {
		return Pulled{}, pullError(named, err)
	}
	top, raw, err := repo.Manifest(ctx, which)
	for err != nil && repo.Mirror() && ctx.Err() == nil {
		// The mirror lacks it, or failed: the next mirror, then the hub.
		next, ferr := repo.Fallback(ctx)
		if ferr != nil {
			break
		}
		repo = next
		top, raw, err = repo.Manifest(ctx, which)
	}
	if err != nil {
		return Pulled{}, pullError(named, err)
	}
	// After the manifest, as dockerd: a refused pull is an HTTP error.
	say(PullEvent{ID: which, Status: "Pulling from " + familiarPath(named)})
	mdesc, mraw := top, raw
	if registry.IsIndex(top.MediaType) {
		if mdesc, mraw, err = choosePlatform(ctx, repo, raw, o.Platform, 0); err != nil {
			return Pulled{}, pullError(named, err)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mraw, &m); err != nil {
		return Pulled{}, errdefs.Invalid("manifest %s: %v", mdesc.Digest, err)
	}
	if m.Config.Digest == "" {
		return Pulled{}, errdefs.Invalid("manifest %s has no config", mdesc.Digest)
	}
	for _, l := range m.Layers {
		if err := checkLayerType(l); err != nil {
			return Pulled{}, err
		}
	}

	lease, err := s.db.NewLease()
	if err != nil {
		return Pulled{}, err
	}
	defer func() {
		_ = lease.Release()
		_, _ = s.db.GC()
	}()

	craw, err := s.pullConfig(ctx, lease, repo, m.Config)
	if err != nil {
		return Pulled{}, err
	}
	cfg, err := parseConfig(craw)
	if err != nil {
		return Pulled{}, err
	}
	if o.Platform != nil && !registry.IsIndex(top.MediaType) && !platformMatches(cfg.Platform, *o.Platform) {
		return Pulled{}, errdefs.NotFound("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
			named.FamiliarString(), platformString(*o.Platform), platformString(cfg.Platform))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return Pulled{}, errdefs.Invalid("manifest %s has %d layers but its config lists %d diff IDs", mdesc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	chain := identity.ChainIDs(slices.Clone(cfg.RootFS.DiffIDs))
	fetched, err := s.pullLayers(ctx, lease, repo, m.Layers, cfg.RootFS.DiffIDs, chain, o, say)
	if err != nil {
		return Pulled{}, err
	}
	if _, _, err := s.ingest(ctx, lease, "pull-"+lease.ID()+"-manifest", bytes.NewReader(mraw), mdesc.Digest); err != nil {
		return Pulled{}, err
	}

	id := m.Config.Digest
	refs := []string{named.Name() + "@" + top.Digest.String()}
	if named.Digest == "" {
		refs = append(refs, named.String())
	}
	created := cfg.Created
	updated := fetched > 0
	err = s.db.Update(func(tx *metadata.Tx) error {
		img, err := tx.Image(id)
		if err != nil {
			img = metadata.Image{ID: id, ChainIDs: chain}
			if created != nil {
				img.Created = *created
			}
			updated = true
		}
		if !hasBlob(img.Manifests, mdesc.Digest) {
			img.Manifests = append(img.Manifests, mdesc)
		}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		for _, r := range refs {
			if old, err := tx.Ref(r); err == nil && old == id {
				continue
			}
			updated = true
			if err := s.setRef(tx, r, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Pulled{}, err
	}
	out := Pulled{ID: id, Ref: named.FamiliarString(), Digest: top.Digest, Updated: updated}
	say(PullEvent{Status: "Digest: " + top.Digest.String()})
	if updated {
		say(PullEvent{Status: "Status: Downloaded newer image for " + out.Ref})
	} else {
		say(PullEvent{Status: "Status: Image is up to date for " + out.Ref})
	}
	return out, nil
}

// serialized calls fn (if any) one call at a time: layers report from
// their own goroutines.
func serialized(fn func(PullEvent)) func(PullEvent) {
	var mu sync.Mutex
	return func(ev PullEvent) {
		if fn != nil {
			mu.Lock()
			fn(ev)
			mu.Unlock()
		}
	}
}

// familiarPath is the repository as docker's pull names it: "library/busybox".
func familiarPath(n reference.Named) string {
	if n.Domain == registry.DockerHub {
		return n.Path
	}
	return n.Name()
}

// pullError words a registry's refusal as docker does.
func pullError(n reference.Named, err error) error {
	var re *registry.Error
	if errors.As(err, &re) {
		detail := re.Detail
		if detail == "" {
			detail = re.Message
		}
		switch {
		case re.Status == 401 || re.Status == 403 || re.HasCode("NAME_UNKNOWN"):
			return errdefs.Mark(errdefs.KindNotFound, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %s", n.FamiliarName(), detail))
		case re.Status == 404:
			return errdefs.Mark(errdefs.KindNotFound, fmt.Errorf("manifest for %s not found: %s", n.FamiliarString(), detail))
		}
	}
	return err
}

// checkLayerType refuses layers a pull cannot unpack.
func checkLayerType(l ocispec.Descriptor) error {
	switch l.MediaType {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		registry.MediaTypeDockerLayer, registry.MediaTypeDockerLayerPlain:
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
		return errdefs.NotImplemented("layer %s is a foreign (non-distributable) layer, which berth does not fetch", l.Digest)
	default:
		return errdefs.NotImplemented("layer %s: unsupported media type %q", l.Digest, l.MediaType)
	}
	if err := l.Digest.Validate(); err != nil {
		return errdefs.Invalid("layer %q: %v", l.Digest, err)
	}
	if l.Size < 0 {
		return errdefs.Invalid("layer %s: negative size", l.Digest)
	}
	return nil
}

// choosePlatform picks the manifest for platform (nil: this machine's)
// from an index, fetching it by digest.
func choosePlatform(ctx context.Context, repo *registry.Repository, raw []byte, want *ocispec.Platform, depth int) (ocispec.Descriptor, []byte, error) {
	if depth > 4 {
		return ocispec.Descriptor{}, nil, errdefs.Invalid("manifest lists nested deeper than 4")
	}
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if want != nil {
		p = *want
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return ocispec.Descriptor{}, nil, errdefs.Invalid("manifest list: %v", err)
	}
	for _, m := range idx.Manifests {
		if m.Platform == nil || !platformMatches(*m.Platform, p) {
			continue
		}
		d, b, err := repo.Manifest(ctx, m.Digest.String())
		if err != nil {
			return d, nil, err
		}
		if registry.IsIndex(d.MediaType) {
			return choosePlatform(ctx, repo, b, want, depth+1)
		}
		return d, b, nil
	}
	return ocispec.Descriptor{}, nil, errdefs.NotFound("no matching manifest for %s in the manifest list entries", platformString(p))
}

// platformMatches tells whether have serves want: same OS and
// architecture, and the variant when want names one (arm64's "v8" is the
// default one).
func platformMatches(have, want ocispec.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	norm := func(p ocispec.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "v8" {
			return ""
		}
		return p.Variant
	}
	return want.Variant == "" || norm(have) == norm(want)
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pullConfig returns the image config, from the content store or the
// registry (stored then).
func (s *Store) pullConfig(ctx context.Context, lease *metadata.LeaseHandle, repo *registry.Repository, desc ocispec.Descriptor) ([]byte, error) {
	if err := lease.AddContent(desc.Digest); err != nil {
		return nil, err
	}
	if raw, err := s.readBlob(ctx, desc.Digest, "image config"); err == nil {
		return raw, nil
	}
	raw, err := repo.ReadBlob(ctx, desc, maxJSON)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.ingest(ctx, lease, "pull-"+lease.ID()+"-config", bytes.NewReader(raw), desc.Digest); err != nil {
		return nil, err
	}
	return raw, nil
}

// layerJob is one layer a pull fetches.
type layerJob struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
	short  string
	key    string // the detached snapshot it is extracted into
	res    archive.Result
	done   chan error
}

// pullLayers fetches the layers not present and returns how many it
// fetched. With a Rebaser driver every layer is extracted as it arrives,
// and the layers are committed in order as their parents are; with other
// drivers they are fetched into the content store at once and extracted
// in order.
func (s *Store) pullLayers(ctx context.Context, lease *metadata.LeaseHandle, repo *registry.Repository, layers []ocispec.Descriptor, diffIDs, chain []digest.Digest, o PullOptions, say func(PullEvent)) (int, error) {
	rebaser, detached := s.sn.(snapshot.Rebaser)
	jobs := make([]*layerJob, len(layers))
	keys := make([]string, 0, len(layers))
	var refs []string
	var blobs []digest.Digest
	for i, c := range chain {
		keys = append(keys, c.String())
		if have, err := s.addLayerBlob(c, layers[i]); err != nil {
			return 0, err
		} else if have {
			continue
		}
		j := &layerJob{desc: layers[i], diffID: diffIDs[i], short: layers[i].Digest.Encoded()[:12], done: make(chan error, 1)}
		j.key = "pull-" + lease.ID() + "-" + c.Encoded()
		jobs[i] = j
		keys = append(keys, j.key)
		refs = append(refs, "pull-"+lease.ID()+"-"+j.desc.Digest.Encoded())
		blobs = append(blobs, j.desc.Digest)
	}
	// One transaction each, not three per layer.
	if err := lease.AddSnapshot(keys...); err != nil {
		return 0, err
	}
	if err := lease.AddIngest(refs...); err != nil {
		return 0, err
	}
	if err := lease.AddContent(blobs...); err != nil {
		return 0, err
	}
	n := o.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	queued := 0
	for i, j := range jobs {
		if j == nil {
			say(PullEvent{ID: layers[i].Digest.Encoded()[:12], Status: "Already exists"})
			continue
		}
		say(PullEvent{ID: j.short, Status: "Pulling fs layer"})
	}
	for _, j := range jobs {
		if j == nil {
			continue
		}
		if queued >= n {
			say(PullEvent{ID: j.short, Status: "Waiting"})
		}
		queued++
	}
	if queued == 0 {
		return 0, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for _, j := range jobs {
			if j != nil && detached {
				_ = s.sn.Remove(context.WithoutCancel(ctx), j.key) // gone already unless it failed
			}
		}
	}()
	sem := make(chan struct{}, n)
	for _, j := range jobs {
		if j == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j.done <- ctx.Err()
				return
			}
			err := s.fetchLayer(ctx, lease, repo, j, detached, say)
			<-sem
			j.done <- err
		}()
	}
	for i, j := range jobs {
		if j == nil {
			continue
		}
		err := <-j.done
		var parent digest.Digest
		if i > 0 {
			parent = chain[i-1]
		}
		if err == nil {
			if detached {
				commit := func() error { return rebaser.CommitOnto(ctx, chain[i].String(), j.key, parent.String()) }
				err = s.commitLayer(ctx, j.key, chain[i], parent, j.res, j.desc, commit)
			} else {
				err = s.unpackLayer(ctx, lease, chain[i], parent, j.diffID, j.desc)
			}
		}
		if err != nil {
			return 0, fmt.Errorf("layer %d (%s): %w", i+1, j.desc.Digest, err)
		}
		say(PullEvent{ID: j.short, Status: "Pull complete"})
	}
	return queued, nil
}

// fetchLayer streams one layer from the registry into the content store
// and, on a Rebaser, into its detached snapshot at the same time.
func (s *Store) fetchLayer(ctx context.Context, lease *metadata.LeaseHandle, repo *registry.Repository, j *layerJob, detached bool, say func(PullEvent)) error {
	ref := "pull-" + lease.ID() + "-" + j.desc.Digest.Encoded()
	w, err := s.cs.Writer(ctx, ref, content.WithExpected(j.desc.Digest, j.desc.Size))
	var src io.Reader
	switch {
	case content.IsExists(err):
		// The blob is here (a load's, or a removed image's not yet
		// collected): extract from it, or leave it to unpackLayer.
		if !detached {
			return nil
		}
		f, err := s.cs.Open(ctx, j.desc.Digest)
		if err != nil {
			return err
		}
		defer f.Close()
		src, w = f, nil
	case err != nil:
		return err
	default:
		defer w.Close()
		rc, err := repo.OpenBlob(ctx, j.desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		down := &progressReader{r: rc, id: j.short, total: j.desc.Size, fn: func(id string, cur, total int64) {
			say(PullEvent{ID: id, Status: "Downloading", Current: cur, Total: total})
		}}
		src = io.TeeReader(down, w)
	}
	if detached {
		if err := s.sn.(snapshot.Rebaser).PrepareDetached(ctx, j.key); err != nil {
			return err
		}
		if j.res, err = s.sn.Apply(ctx, j.key, src, archive.ApplyOptions{ExpectedDiffID: j.diffID}); err != nil {
			return err
		}
	}
	// The tar may end before its compressed stream: the rest is hashed too.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return err
	}
	if w != nil {
		say(PullEvent{ID: j.short, Status: "Verifying Checksum"})
		if err := w.Commit(ctx, j.desc.Size, j.desc.Digest); err != nil && !content.IsExists(err) {
			return fmt.Errorf("blob %s: %w", j.desc.Digest, err)
		}
	}
	say(PullEvent{ID: j.short, Status: "Download complete"})
	return nil
}

// ParsePlatform reads docker's os[/arch[/variant]]; the architecture is
// this machine's when left out.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" || slices.Contains(parts, "") {
		return ocispec.Platform{}, errdefs.Invalid("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

package daemon

import (
	"context"
	"strconv"
	"strings"

	"berth.dev/berth/daemon/backend"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/registry"
	"github.com/moby/moby/api/types/events"
	registrytypes "github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newRegistryClient makes the registry client of cfg.
func newRegistryClient(cfg *Config) (*registry.Client, error) {
	return registry.New(registry.Config{
		CertsDir:  cfg.CertsDir,
		Insecure:  cfg.InsecureRegistries,
		Mirrors:   cfg.RegistryMirrors,
		UserAgent: "berth/" + Version,
	})
}

// registryNow is the registry client and the transfer limits in force
// (a reload replaces them).
func (d *Daemon) registryNow() (reg *registry.Client, downloads, uploads int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.registry, intOr(d.cfg.MaxConcurrentDownloads, DefaultMaxConcurrentDownloads), intOr(d.cfg.MaxConcurrentUploads, DefaultMaxConcurrentUploads)
}

func progressOf(fn func(backend.ProgressEvent)) func(image.PullEvent) {
	if fn == nil {
		return nil
	}
	return func(ev image.PullEvent) {
		fn(backend.ProgressEvent{ID: ev.ID, Status: ev.Status, Current: ev.Current, Total: ev.Total})
	}
}

// PullImage is POST /images/create?fromImage=: docker pull.
func (d *Daemon) PullImage(ctx context.Context, o backend.PullOptions) error {
	var platform *ocispec.Platform
	if o.Platform != "" {
		p, err := image.ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		platform = &p
	}
	reg, downloads, _ := d.registryNow()
	return d.job(ctx, "image.pull", true, func(ctx context.Context) error {
		po := image.PullOptions{Auth: o.Auth, Platform: platform, Progress: progressOf(o.Progress), MaxConcurrent: downloads}
		var pulled []image.Pulled
		var err error
		if o.AllTags {
			pulled, err = d.images.PullAllTags(ctx, reg, o.Ref, po)
		} else {
			var p image.Pulled
			if p, err = d.images.Pull(ctx, reg, o.Ref, po); err == nil {
				pulled = append(pulled, p)
			}
		}
		for _, p := range pulled {
			d.events.Publish(events.ImageEventType, events.ActionPull, p.Ref, map[string]string{"name": p.Ref})
		}
		return err
	})
}

// PushImage is POST /images/{name}/push: docker push.
func (d *Daemon) PushImage(ctx context.Context, o backend.PushOptions) error {
	reg, _, uploads := d.registryNow()
	return d.job(ctx, "image.push", false, func(ctx context.Context) error {
		pushed, err := d.images.Push(ctx, reg, o.Ref, image.PushOptions{Auth: o.Auth, Progress: progressOf(o.Progress), MaxConcurrent: uploads})
		for _, p := range pushed {
			if o.Progress != nil {
				o.Progress(backend.ProgressEvent{Aux: map[string]any{"Tag": p.Tag, "Digest": p.Digest.String(), "Size": p.Size}})
			}
			name := strings.TrimSuffix(o.Ref, ":"+p.Tag) + ":" + p.Tag
			d.events.Publish(events.ImageEventType, events.ActionPush, name, map[string]string{"name": name})
		}
		return err
	})
}

// SearchImages is GET /images/search: docker search, with dockerd's
// filters (stars, is-official, is-automated) applied here.
func (d *Daemon) SearchImages(ctx context.Context, o backend.SearchOptions) ([]registrytypes.SearchResult, error) {
	if err := o.Filters.Validate("stars", "is-official", "is-automated"); err != nil {
		return nil, err
	}
	minStars := 0
	for _, v := range o.Filters.Get("stars") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.Invalid("invalid filter 'stars=%s'", v)
		}
		minStars = max(minStars, n)
	}
	official, officialSet, err := o.Filters.Bool("is-official")
	if err != nil {
		return nil, err
	}
	automated, automatedSet, err := o.Filters.Bool("is-automated")
	if err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > 100 {
		return nil, errdefs.Invalid("limit %d is outside the range of [1, 100]", limit)
	}
	domain, term := registry.SplitSearchTerm(o.Term)
	var res []registrytypes.SearchResult
	err = d.job(ctx, "image.search", false, func(ctx context.Context) error {
		reg, _, _ := d.registryNow()
		res, err = reg.Search(ctx, domain, term, limit, o.Auth)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := res[:0]
	for _, r := range res {
		//lint:ignore SA1019 dockerd still takes the is-automated filter
		if r.StarCount < minStars || (officialSet && r.IsOfficial != official) || (automatedSet && r.IsAutomated != automated) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// AuthLogin is POST /auth: it checks credentials with the registry and
// returns the identity token to store instead of the password, if the
// registry gives one. Nothing is stored by the daemon.
func (d *Daemon) AuthLogin(ctx context.Context, auth registrytypes.AuthConfig) (string, error) {
	var token string
	err := d.job(ctx, "auth", false, func(ctx context.Context) error {
		var err error
		reg, _, _ := d.registryNow()
		token, err = reg.Login(ctx, auth)
		return err
	})
	return token, err
}

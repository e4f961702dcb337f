package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"berth.dev/berth/daemon/backend"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/metadata"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
)

// Images is GET /images/json.
func (d *Daemon) Images(ctx context.Context, opts backend.ImageListOptions) ([]imagetypes.Summary, error) {
	var out []imagetypes.Summary
	err := d.job(ctx, "image.list", false, func(ctx context.Context) error {
		if err := opts.Filters.Validate("dangling", "label", "label!", "reference", "before", "since", "until"); err != nil {
			return err
		}
		dangling, danglingSet, err := opts.Filters.Bool("dangling")
		if err != nil {
			return err
		}
		imgs, err := d.images.List(ctx)
		if err != nil {
			return err
		}
		before, err := d.imageTime(ctx, opts.Filters, "before")
		if err != nil {
			return err
		}
		since, err := d.imageTime(ctx, opts.Filters, "since")
		if err != nil {
			return err
		}
		parents := map[string]bool{}
		for _, img := range imgs {
			if img.Parent != "" {
				parents[img.Parent.String()] = true
			}
		}
		shared := map[string]int64{}
		if opts.SharedSize {
			usage, err := d.images.DiskUsage(ctx)
			if err != nil {
				return err
			}
			for _, u := range usage {
				shared[u.ID] = u.SharedSize
			}
		}
		for _, img := range imgs {
			untagged := len(img.RepoTags) == 0
			// Without all, intermediate images (untagged parents) are hidden.
			if !opts.All && untagged && parents[img.ID.String()] && !danglingSet {
				continue
			}
			if danglingSet && dangling != untagged {
				continue
			}
			if !before.IsZero() && !img.Created.Before(before) {
				continue
			}
			if !since.IsZero() && !img.Created.After(since) {
				continue
			}
			labels := img.Config.Config.Labels
			if !opts.Filters.MatchLabels("label", labels) {
				continue
			}
			s := summary(img)
			if opts.Filters.Has("reference") {
				// As dockerd: only the matching references are listed.
				s.RepoTags = matchReference(opts.Filters, img.RepoTags)
				s.RepoDigests = matchReference(opts.Filters, img.RepoDigests)
				if len(s.RepoTags)+len(s.RepoDigests) == 0 {
					continue
				}
			}
			if opts.SharedSize {
				s.SharedSize = shared[img.ID.String()]
			}
			out = append(out, s)
		}
		return nil
	})
	if out == nil {
		out = []imagetypes.Summary{}
	}
	return out, err
}

// matchReference is docker's reference filter: a shell pattern against a
// familiar name:tag or the bare familiar name. It returns the matching refs.
func matchReference(f filters.Args, refs []string) []string {
	out := []string{}
	for _, r := range refs {
		name := r
		if i := strings.LastIndexAny(r, ":@"); i > strings.LastIndex(r, "/") {
			name = r[:i]
		}
		if f.MatchPattern("reference", r) || f.MatchPattern("reference", name) {
			out = append(out, r)
		}
	}
	return out
}

func (d *Daemon) imageTime(ctx context.Context, f filters.Args, key string) (time.Time, error) {
	vs := f.Get(key)
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	img, err := d.images.Get(ctx, vs[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("filter %s: %w", key, err)
	}
	return img.Created, nil
}

func summary(img *image.Image) imagetypes.Summary {
	s := imagetypes.Summary{
		ID: img.ID.String(), ParentID: img.Parent.String(), Created: img.Created.Unix(),
		RepoTags: nonNil(img.RepoTags), RepoDigests: nonNil(img.RepoDigests),
		Size: img.Size, SharedSize: -1, Containers: -1, Labels: img.Config.Config.Labels,
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ImageInspect is GET /images/{name}/json.
func (d *Daemon) ImageInspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error) {
	var out *imagetypes.InspectResponse
	err := d.job(ctx, "image.inspect", false, func(ctx context.Context) error {
		img, err := d.images.Get(ctx, name)
		if errdefs.Is(err, errdefs.KindNotFound) {
			return errdefs.NotFound("no such image: %s: %v", name, err) // dockerd 20.10's words
		}
		if err != nil {
			return err
		}
		var cfg dockerspec.DockerOCIImage
		if err := json.Unmarshal(img.RawConfig, &cfg); err != nil {
			return fmt.Errorf("image %s: config: %w", image.ShortID(img.ID), err)
		}
		out = &imagetypes.InspectResponse{
			ID: img.ID.String(), RepoTags: nonNil(img.RepoTags), RepoDigests: nonNil(img.RepoDigests),
			Comment: img.Config.Comment, Author: cfg.Author, Config: &cfg.Config,
			Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS, OsVersion: cfg.OSVersion,
			Size:        img.Size,
			GraphDriver: &storage.DriverData{Name: d.images.Driver().Name(), Data: map[string]string{}},
			RootFS:      imagetypes.RootFS{Type: "layers"},
			Metadata:    imagetypes.Metadata{LastTagTime: img.LastTagTime},
		}
		if cfg.Created != nil {
			out.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
		}
		for _, l := range cfg.RootFS.DiffIDs {
			out.RootFS.Layers = append(out.RootFS.Layers, l.String())
		}
		return nil
	})
	return out, err
}

// ImageHistory is GET /images/{name}/history.
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	var out []imagetypes.HistoryResponseItem
	err := d.job(ctx, "image.history", false, func(ctx context.Context) error {
		items, err := d.images.History(ctx, name)
		if err != nil {
			return err
		}
		for _, h := range items {
			out = append(out, imagetypes.HistoryResponseItem{ID: h.ID, Created: h.Created.Unix(), CreatedBy: h.CreatedBy,
				Size: h.Size, Comment: h.Comment, Tags: h.Tags})
		}
		return nil
	})
	return out, err
}

// TagImage is POST /images/{name}/tag: it points repo:tag at the image and
// returns the familiar new reference.
func (d *Daemon) TagImage(ctx context.Context, source, repo, tag string) (string, error) {
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	var ref string
	err := d.job(ctx, "image.tag", true, func(ctx context.Context) error {
		if repo == "" {
			return errdefs.Invalid("repository name must have at least one component")
		}
		named, err := image.ParseRef(target)
		if err != nil {
			return err
		}
		if err := d.images.Tag(ctx, source, named.String()); err != nil {
			return err
		}
		img, err := d.images.Get(ctx, named.String())
		if err != nil {
			return err
		}
		ref = image.Familiar(named.String())
		d.events.Publish(events.ImageEventType, events.ActionTag, img.ID.String(), map[string]string{"name": ref})
		return nil
	})
	return ref, err
}

// ImageDelete is DELETE /images/{name}: docker's rmi.
func (d *Daemon) ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	var out []imagetypes.DeleteResponse
	err := d.job(ctx, "image.delete", true, func(ctx context.Context) error {
		d.waitFilesystems() // an --rm container just gone still holds its snapshot
		img, err := d.images.Get(ctx, name)
		if err != nil {
			return err
		}
		items, err := d.images.Remove(ctx, name, force, noPrune)
		if err != nil {
			return err
		}
		for _, it := range items {
			out = append(out, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
			if it.Untagged != "" {
				d.events.Publish(events.ImageEventType, events.ActionUnTag, img.ID.String(), map[string]string{"name": it.Untagged})
			}
			if it.Deleted != "" {
				d.events.Publish(events.ImageEventType, events.ActionDelete, it.Deleted, map[string]string{"name": it.Deleted})
			}
		}
		return nil
	})
	return out, err
}

// ImagesPrune is POST /images/prune (filter dangling; false prunes every
// unused image).
func (d *Daemon) ImagesPrune(ctx context.Context, f filters.Args) (*imagetypes.PruneReport, error) {
	out := &imagetypes.PruneReport{}
	err := d.job(ctx, "image.prune", true, func(ctx context.Context) error {
		if err := f.Validate("dangling"); err != nil {
			return err
		}
		d.waitFilesystems()
		dangling, set, err := f.Bool("dangling")
		if err != nil {
			return err
		}
		rep, err := d.images.Prune(ctx, set && !dangling)
		if err != nil {
			return err
		}
		for _, it := range rep.Deleted {
			out.ImagesDeleted = append(out.ImagesDeleted, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
			if it.Untagged != "" {
				d.events.Publish(events.ImageEventType, events.ActionUnTag, it.Untagged, map[string]string{"name": it.Untagged})
			}
			if it.Deleted != "" {
				d.events.Publish(events.ImageEventType, events.ActionDelete, it.Deleted, map[string]string{"name": it.Deleted})
			}
		}
		out.SpaceReclaimed = uint64(max(rep.SpaceReclaimed, 0))
		d.events.Publish(events.ImageEventType, events.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(out.SpaceReclaimed)})
		return nil
	})
	return out, err
}

// LoadImage is POST /images/load. progress, when set, hears of each layer
// unpacked (short chain ID, bytes of its blob done and in all).
func (d *Daemon) LoadImage(ctx context.Context, r io.Reader, progress func(id string, current, total int64)) ([]backend.LoadedImage, error) {
	var out []backend.LoadedImage
	err := d.job(ctx, "image.load", true, func(ctx context.Context) error {
		if progress != nil {
			ctx = image.WithProgress(ctx, progress)
		}
		loaded, err := d.images.Load(ctx, r)
		if err != nil {
			return err
		}
		for _, l := range loaded {
			out = append(out, backend.LoadedImage{ID: l.ID.String(), Refs: l.Refs})
			name := l.ID.String()
			if len(l.Refs) > 0 {
				name = l.Refs[0]
			}
			d.events.Publish(events.ImageEventType, events.ActionLoad, l.ID.String(), map[string]string{"name": name})
		}
		return nil
	})
	return out, err
}

// ExportImages is GET /images/get and /images/{name}/get: docker save.
// Nothing is written to w when a name does not resolve.
func (d *Daemon) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	return d.job(ctx, "image.save", true, func(ctx context.Context) error {
		ids := make([]string, len(names))
		for i, n := range names {
			img, err := d.images.Get(ctx, n)
			if errdefs.Is(err, errdefs.KindNotFound) {
				return errdefs.NotFound("No such image: %s", n) // as given, as dockerd's save says
			}
			if err != nil {
				return err
			}
			ids[i] = img.ID.String()
		}
		if err := d.images.Save(ctx, w, names); err != nil {
			return err
		}
		for i, n := range names {
			d.events.Publish(events.ImageEventType, events.ActionSave, ids[i], map[string]string{"name": n})
		}
		return nil
	})
}

// ImportImage is POST /images/create?fromSrc=-: docker import of a rootfs
// tar. It returns the new image's ID.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, opts backend.ImportOptions) (string, error) {
	var id string
	err := d.job(ctx, "image.import", true, func(ctx context.Context) error {
		if opts.Platform != "" {
			os, arch, _ := strings.Cut(opts.Platform, "/")
			arch, _, _ = strings.Cut(arch, "/")
			if os != runtime.GOOS || (arch != "" && arch != runtime.GOARCH) {
				return errdefs.NotImplemented("import for platform %s: only %s/%s is supported", opts.Platform, runtime.GOOS, runtime.GOARCH)
			}
		}
		ref := opts.Repo
		if ref != "" && opts.Tag != "" {
			ref += ":" + opts.Tag
		}
		if ref != "" {
			named, err := image.ParseRef(ref)
			if err != nil {
				return err
			}
			ref = named.String()
		}
		dg, err := d.images.Import(ctx, r, image.NewImageOptions{Ref: ref, Message: opts.Message, Changes: opts.Changes})
		if err != nil {
			return err
		}
		id = dg.String()
		name := id
		if ref != "" {
			name = image.Familiar(ref)
		}
		d.events.Publish(events.ImageEventType, events.ActionImport, id, map[string]string{"name": name})
		return nil
	})
	return id, err
}

// layersSize sums the unpacked size of every layer (system df's LayersSize).
func (d *Daemon) layersSize() (int64, error) {
	var n int64
	err := d.images.DB().View(func(tx *metadata.Tx) error {
		ls, err := tx.Layers()
		for _, l := range ls {
			n += l.UnpackedSize
		}
		return err
	})
	return n, err
}

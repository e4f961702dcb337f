package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"berth.dev/berth/image/reference"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageListOptions selects images.
type ImageListOptions struct {
	All        bool
	Filters    Filters
	SharedSize bool
	Manifests  bool
	Identity   bool
}

// ImageListResult is the images listed.
type ImageListResult struct{ Items []image.Summary }

// ImageList lists images.
func (c *Client) ImageList(ctx context.Context, o ImageListOptions) (ImageListResult, error) {
	q := url.Values{}
	o.Filters.set(q)
	if o.All {
		q.Set("all", "1")
	}
	if o.SharedSize {
		q.Set("shared-size", "1")
	}
	if o.Manifests && !versionLess(c.negotiatedVersion(ctx), "1.47") {
		q.Set("manifests", "1")
	}
	if o.Identity {
		if err := c.requiresVersion(ctx, "1.54", "identity"); err != nil {
			return ImageListResult{}, err
		}
		q.Set("manifests", "1")
		q.Set("identity", "1")
	}
	items, err := answer[[]image.Summary](c.get(ctx, "/images/json", q))
	return ImageListResult{Items: items}, err
}

// ImageInspectOption configures ImageInspect.
type ImageInspectOption interface{ Apply(*imageInspectOpts) error }

type imageInspectOpts struct{ raw *bytes.Buffer }

type imageInspectFunc func(*imageInspectOpts) error

func (f imageInspectFunc) Apply(o *imageInspectOpts) error { return f(o) }

// ImageInspectWithRawResponse copies the response's JSON into raw.
func ImageInspectWithRawResponse(raw *bytes.Buffer) ImageInspectOption {
	return imageInspectFunc(func(o *imageInspectOpts) error { o.raw = raw; return nil })
}

// ImageInspectResult is an image's inspect.
type ImageInspectResult struct{ image.InspectResponse }

// ImageInspect inspects an image.
func (c *Client) ImageInspect(ctx context.Context, ref string, opts ...ImageInspectOption) (ImageInspectResult, error) {
	if ref == "" {
		return ImageInspectResult{}, notFound("image", ref)
	}
	var o imageInspectOpts
	for _, opt := range opts {
		if err := opt.Apply(&o); err != nil {
			return ImageInspectResult{}, fmt.Errorf("error applying image inspect option: %w", err)
		}
	}
	resp, err := c.get(ctx, "/images/"+ref+"/json", nil)
	if err != nil {
		return ImageInspectResult{}, err
	}
	b, err := decodeRaw(resp, new(json.RawMessage))
	if err != nil {
		return ImageInspectResult{}, err
	}
	if o.raw != nil {
		o.raw.Write(b)
	}
	var r ImageInspectResult
	err = json.Unmarshal(b, &r)
	return r, err
}

// ImageHistoryOption configures ImageHistory (none yet).
type ImageHistoryOption interface{ Apply(*imageHistoryOpts) error }

type imageHistoryOpts struct{}

// ImageHistoryResult is an image's layers, newest first.
type ImageHistoryResult struct{ Items []image.HistoryResponseItem }

// ImageHistory shows an image's history.
func (c *Client) ImageHistory(ctx context.Context, ref string, opts ...ImageHistoryOption) (ImageHistoryResult, error) {
	var o imageHistoryOpts
	for _, opt := range opts {
		if err := opt.Apply(&o); err != nil {
			return ImageHistoryResult{}, err
		}
	}
	items, err := answer[[]image.HistoryResponseItem](c.get(ctx, "/images/"+ref+"/history", nil))
	return ImageHistoryResult{Items: items}, err
}

// ImageTagOptions is the image and its new reference.
type ImageTagOptions struct{ Source, Target string }

// ImageTagResult is empty.
type ImageTagResult struct{}

// ImageTag tags an image, checking both references as docker's client does.
func (c *Client) ImageTag(ctx context.Context, o ImageTagOptions) (ImageTagResult, error) {
	if _, err := reference.ParseAny(o.Source); err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", o.Source, err)
	}
	ref, err := reference.ParseNormalizedNamed(o.Target)
	if err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", o.Target, err)
	}
	if ref.Digest != "" {
		return ImageTagResult{}, errors.New("refusing to create a tag with a digest reference")
	}
	ref = ref.TagNameOnly()
	resp, err := c.post(ctx, "/images/"+o.Source+"/tag", url.Values{"repo": {ref.Name()}, "tag": {ref.Tag}}, nil, nil)
	if err != nil {
		return ImageTagResult{}, err
	}
	closeBody(resp)
	return ImageTagResult{}, nil
}

// ImageRemoveOptions: untag even if used; keep untagged parents.
type ImageRemoveOptions struct {
	Platforms     []ocispec.Platform
	Force         bool
	PruneChildren bool
}

// ImageRemoveResult is what was untagged and deleted.
type ImageRemoveResult struct{ Items []image.DeleteResponse }

// ImageRemove removes an image.
func (c *Client) ImageRemove(ctx context.Context, ref string, o ImageRemoveOptions) (ImageRemoveResult, error) {
	q := url.Values{}
	if o.Force {
		q.Set("force", "1")
	}
	if !o.PruneChildren {
		q.Set("noprune", "1")
	}
	for _, p := range o.Platforms {
		b, err := json.Marshal(p)
		if err != nil {
			return ImageRemoveResult{}, err
		}
		q.Add("platforms", string(b))
	}
	items, err := answer[[]image.DeleteResponse](c.delete(ctx, "/images/"+ref, q))
	return ImageRemoveResult{Items: items}, err
}

// ImagePruneOptions selects what is pruned.
type ImagePruneOptions struct{ Filters Filters }

// ImagePruneResult is what was removed.
type ImagePruneResult struct{ Report image.PruneReport }

// ImagePrune removes unused images.
func (c *Client) ImagePrune(ctx context.Context, o ImagePruneOptions) (ImagePruneResult, error) {
	rep, err := prune[image.PruneReport](ctx, c, "/images/prune", o.Filters, "Error retrieving disk usage")
	return ImagePruneResult{Report: rep}, err
}

// ImagePullOptions: all tags, credentials, the platform.
type ImagePullOptions struct {
	All           bool
	RegistryAuth  string
	PrivilegeFunc func(context.Context) (string, error)
	Platforms     []ocispec.Platform
}

// ImagePullResponse is the pull's JSON progress stream.
type ImagePullResponse interface{ io.ReadCloser }

// ImagePull pulls an image.
func (c *Client) ImagePull(ctx context.Context, refStr string, o ImagePullOptions) (ImagePullResponse, error) {
	ref, err := reference.ParseNormalizedNamed(refStr)
	if err != nil {
		return nil, err
	}
	q := url.Values{"fromImage": {ref.Name()}}
	if !o.All {
		if ref.Digest != "" {
			q.Set("tag", ref.Digest.String())
		} else {
			q.Set("tag", ref.TagNameOnly().Tag)
		}
	}
	switch len(o.Platforms) {
	case 0:
	case 1:
		q.Set("platform", formatPlatform(o.Platforms[0]))
	default:
		return nil, errInvalid("specifying multiple platforms is not yet supported")
	}
	pull := func(auth string) (*http.Response, error) {
		h := http.Header{}
		if auth != "" {
			h.Set("X-Registry-Auth", auth)
		}
		return c.post(ctx, "/images/create", q, h, nil)
	}
	resp, err := pull(o.RegistryAuth)
	if isUnauthorized(err) && o.PrivilegeFunc != nil {
		auth, perr := o.PrivilegeFunc(ctx)
		if perr != nil {
			return nil, perr
		}
		resp, err = pull(auth)
	}
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageImportSource is the tar to import: Source read when SourceName is
// "-", else SourceName is a URL the daemon fetches.
type ImageImportSource struct {
	Source     io.Reader
	SourceName string
}

// ImageImportOptions: the commit message, Dockerfile changes, platform.
type ImageImportOptions struct {
	Tag      string
	Message  string
	Changes  []string
	Platform ocispec.Platform
}

// ImageImportResult is the import's JSON progress stream.
type ImageImportResult interface{ io.ReadCloser }

// ImageImport makes an image from a root file system tar.
func (c *Client) ImageImport(ctx context.Context, src ImageImportSource, ref string, o ImageImportOptions) (ImageImportResult, error) {
	if ref != "" {
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("fromSrc", src.SourceName)
	set("repo", ref)
	set("tag", o.Tag)
	set("message", o.Message)
	if o.Platform.OS != "" {
		q.Set("platform", formatPlatform(o.Platform))
	}
	for _, ch := range o.Changes {
		q.Add("changes", ch)
	}
	resp, err := c.send(ctx, http.MethodPost, "/images/create", q, nil, src.Source)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageLoadOption configures ImageLoad.
type ImageLoadOption interface{ Apply(*imageLoadOpts) error }

type imageLoadOpts struct {
	quiet     bool
	platforms []ocispec.Platform
}

type imageLoadFunc func(*imageLoadOpts) error

func (f imageLoadFunc) Apply(o *imageLoadOpts) error { return f(o) }

// ImageLoadWithQuiet asks for no progress bars.
func ImageLoadWithQuiet(quiet bool) ImageLoadOption {
	return imageLoadFunc(func(o *imageLoadOpts) error { o.quiet = quiet; return nil })
}

// ImageLoadWithPlatforms loads only these platforms' variants.
func ImageLoadWithPlatforms(ps ...ocispec.Platform) ImageLoadOption {
	return imageLoadFunc(func(o *imageLoadOpts) error {
		if o.platforms != nil {
			return fmt.Errorf("platforms already set to %v", o.platforms)
		}
		o.platforms = ps
		return nil
	})
}

// ImageLoadResult is the load's JSON progress stream.
type ImageLoadResult interface{ io.ReadCloser }

// ImageLoad loads images from a docker-archive or OCI layout tar.
func (c *Client) ImageLoad(ctx context.Context, in io.Reader, opts ...ImageLoadOption) (ImageLoadResult, error) {
	var o imageLoadOpts
	for _, opt := range opts {
		if err := opt.Apply(&o); err != nil {
			return nil, err
		}
	}
	q := url.Values{"quiet": {"0"}}
	if o.quiet {
		q.Set("quiet", "1")
	}
	if err := c.addPlatforms(ctx, q, o.platforms); err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodPost, "/images/load", q, http.Header{"Content-Type": {"application/x-tar"}}, in)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// addPlatforms adds load's and save's platforms (API 1.48).
func (c *Client) addPlatforms(ctx context.Context, q url.Values, ps []ocispec.Platform) error {
	if len(ps) == 0 {
		return nil
	}
	if err := c.requiresVersion(ctx, "1.48", "platform"); err != nil {
		return err
	}
	for _, p := range ps {
		b, err := json.Marshal(p)
		if err != nil {
			return errInvalid("invalid platform: " + err.Error())
		}
		q.Add("platform", string(b))
	}
	return nil
}

// ImageSaveOption configures ImageSave.
type ImageSaveOption interface{ Apply(*imageSaveOpts) error }

type imageSaveOpts struct{ platforms []ocispec.Platform }

type imageSaveFunc func(*imageSaveOpts) error

func (f imageSaveFunc) Apply(o *imageSaveOpts) error { return f(o) }

// ImageSaveWithPlatforms saves only these platforms' variants.
func ImageSaveWithPlatforms(ps ...ocispec.Platform) ImageSaveOption {
	return imageSaveFunc(func(o *imageSaveOpts) error {
		if o.platforms != nil {
			return fmt.Errorf("platforms already set to %v", o.platforms)
		}
		o.platforms = ps
		return nil
	})
}

// ImageSaveResult is the saved tar.
type ImageSaveResult interface{ io.ReadCloser }

// ImageSave saves images as a tar.
func (c *Client) ImageSave(ctx context.Context, refs []string, opts ...ImageSaveOption) (ImageSaveResult, error) {
	var o imageSaveOpts
	for _, opt := range opts {
		if err := opt.Apply(&o); err != nil {
			return nil, err
		}
	}
	q := url.Values{"names": refs}
	if err := c.addPlatforms(ctx, q, o.platforms); err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, "/images/get", q)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

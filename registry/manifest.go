package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"berth.dev/berth/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's manifest media types (OCI's are in image-spec).
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeDockerLayerPlain is an uncompressed docker layer (rare in
	// registries; docker-archive manifests imply it).
	MediaTypeDockerLayerPlain = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeSchema1          = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed    = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize bounds a manifest or index read from a registry (as
// containerd's limit): a registry sending more is refused.
const MaxManifestSize = 4 << 20

// manifestAccept lists what a pull takes, schema1 included so that it can
// be recognised and refused with a clear message.
var manifestAccept = []string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifest, MediaTypeDockerList,
	mediaTypeSchema1Signed, mediaTypeSchema1,
}

// IsIndex tells whether a media type is a manifest list or image index.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerList
}

// Manifest fetches the manifest (or index) ref names — a tag or a digest —
// and verifies it: against the digest asked for, or against the digest the
// registry announces for a tag. The descriptor gives its media type,
// digest and size.
func (r *Repository) Manifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	what := "manifest " + r.path + refSep(ref) + ref
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("manifests", ref), nil)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	for _, a := range manifestAccept {
		req.Header.Add("Accept", a)
	}
	resp, err := r.do(req, what, http.StatusOK)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, errdefs.Unavailable("%s: %v", what, netError(err))
	}
	if len(raw) > MaxManifestSize {
		return ocispec.Descriptor{}, nil, errdefs.Invalid("%s: larger than %d bytes", what, MaxManifestSize)
	}
	if resp.ContentLength >= 0 && int64(len(raw)) != resp.ContentLength {
		return ocispec.Descriptor{}, nil, errdefs.Unavailable("%s: truncated: %d of %d bytes", what, len(raw), resp.ContentLength)
	}

	var dg digest.Digest
	if want, err := digest.Parse(ref); err == nil {
		if !want.Algorithm().Available() {
			return ocispec.Descriptor{}, nil, errdefs.Invalid("%s: unsupported digest algorithm", what)
		}
		if got := want.Algorithm().FromBytes(raw); got != want {
			return ocispec.Descriptor{}, nil, errdefs.Invalid("%s: the registry sent content with digest %s", what, got)
		}
		dg = want
	} else {
		dg = digest.FromBytes(raw)
		if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
			if hd, err := digest.Parse(h); err == nil && hd.Algorithm().Available() && hd.Algorithm().FromBytes(raw) != hd {
				return ocispec.Descriptor{}, nil, errdefs.Invalid("%s: content does not match the digest %s the registry announced", what, hd)
			}
		}
	}
	mt, err := manifestMediaType(resp.Header.Get("Content-Type"), raw)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(raw))}, raw, nil
}

func refSep(ref string) string {
	if _, err := digest.Parse(ref); err == nil {
		return "@"
	}
	return ":"
}

// manifestMediaType is a manifest's type: what the registry said, or what
// the document says of itself when the header is generic. Schema 1 is
// refused here.
func manifestMediaType(contentType string, raw []byte) (string, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	var doc struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", errdefs.Invalid("not JSON: %v", err)
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerList:
	case mediaTypeSchema1, mediaTypeSchema1Signed:
		doc.SchemaVersion = 1
	default:
		mt = doc.MediaType
		if mt == "" && doc.SchemaVersion == 2 {
			mt = ocispec.MediaTypeImageManifest
			if doc.Manifests != nil {
				mt = ocispec.MediaTypeImageIndex
			}
		}
	}
	if doc.SchemaVersion == 1 || doc.FSLayers != nil {
		return "", errdefs.NotImplemented("Docker Image manifest version 2, schema 1 is not supported: " +
			"ask the image's author to push it again as Docker schema 2 or OCI (any docker or skopeo of the last years does)")
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return mt, nil
	}
	return "", errdefs.NotImplemented("unsupported manifest media type %q", mt)
}

// PutManifest stores raw as ref (a tag, or its digest) and returns its
// digest.
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, raw []byte) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("manifests", ref), bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.do(req, "put manifest "+r.path+refSep(ref)+ref, http.StatusCreated, http.StatusOK)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return digest.FromBytes(raw), nil
}

// Tags lists the repository's tags (all pages, at most 100,000 tags).
func (r *Repository) Tags(ctx context.Context) ([]string, error) {
	var out []string
	next := r.base.String() + "/v2/" + r.path + "/tags/list?n=1000"
	for page := 0; next != "" && page < 100; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		resp, err := r.do(req, "tags of "+r.path, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var list struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, MaxManifestSize)).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return nil, errdefs.Unavailable("tags of %s: bad answer: %v", r.path, err)
		}
		out = append(out, list.Tags...)
		next = nextLink(r.base, resp.Header.Get("Link"))
	}
	return out, nil
}

// nextLink reads a pagination Link header (<url>; rel="next"), keeping
// only links to the same host.
func nextLink(base *url.URL, l string) string {
	if l == "" {
		return ""
	}
	s, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(l), "<"), ">")
	if !ok {
		return ""
	}
	u, err := base.Parse(s)
	if err != nil || u.Host != base.Host {
		return ""
	}
	return u.String()
}

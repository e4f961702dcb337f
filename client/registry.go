package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"berth.dev/berth/image/reference"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RegistryLoginOptions are the credentials to check with a registry.
type RegistryLoginOptions struct {
	Username      string
	Password      string
	ServerAddress string
	IdentityToken string
	RegistryToken string
}

// RegistryLoginResult is the daemon's answer: its status ("Login
// Succeeded") and an identity token to keep in place of the password when
// the registry gave one.
type RegistryLoginResult struct {
	Auth registry.AuthResponse
}

// RegistryLogin has the daemon check credentials with a registry; wrong
// ones are an unauthorized error.
func (c *Client) RegistryLogin(ctx context.Context, o RegistryLoginOptions) (RegistryLoginResult, error) {
	auth := registry.AuthConfig{Username: o.Username, Password: o.Password, ServerAddress: o.ServerAddress,
		IdentityToken: o.IdentityToken, RegistryToken: o.RegistryToken}
	res, err := answer[registry.AuthResponse](c.post(ctx, "/auth", nil, nil, auth))
	return RegistryLoginResult{Auth: res}, err
}

// ImagePushOptions: all tags, credentials, one platform of an index.
type ImagePushOptions struct {
	All bool
	// RegistryAuth is X-Registry-Auth: the base64url JSON of a
	// registry.AuthConfig (authconfig.Encode).
	RegistryAuth string
	// PrivilegeFunc gives other credentials when the registry refused
	// RegistryAuth; the push is tried once more with them.
	PrivilegeFunc func(context.Context) (string, error)
	Platform      *ocispec.Platform
}

// ImagePushResponse is the push's JSON progress stream.
type ImagePushResponse interface{ io.ReadCloser }

// ImagePush pushes an image's tag (or all its tags) to its registry.
func (c *Client) ImagePush(ctx context.Context, image string, o ImagePushOptions) (ImagePushResponse, error) {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		return nil, errors.New("cannot push a digest reference")
	}
	q := url.Values{}
	if !o.All {
		q.Set("tag", ref.TagNameOnly().Tag)
	}
	if o.Platform != nil {
		if err := c.requiresVersion(ctx, "1.46", "platform"); err != nil {
			return nil, err
		}
		b, err := json.Marshal(o.Platform)
		if err != nil {
			return nil, errInvalid("invalid platform: " + err.Error())
		}
		q.Set("platform", string(b))
	}
	push := func(auth string) (*http.Response, error) {
		// The header always goes: a daemon requires it ("{}" for none).
		if auth == "" {
			auth = emptyAuth
		}
		return c.post(ctx, "/images/"+ref.Name()+"/push", q, http.Header{registry.AuthHeader: {auth}}, nil)
	}
	resp, err := push(o.RegistryAuth)
	if isUnauthorized(err) && o.PrivilegeFunc != nil {
		auth, perr := o.PrivilegeFunc(ctx)
		if perr != nil {
			return nil, perr
		}
		resp, err = push(auth)
	}
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// emptyAuth is X-Registry-Auth without credentials: "{}".
const emptyAuth = "e30="

// ImageSearchOptions: credentials, filters (stars, is-official), how many.
type ImageSearchOptions struct {
	RegistryAuth  string
	PrivilegeFunc func(context.Context) (string, error)
	Filters       Filters
	Limit         int
}

// ImageSearchResult is what the registry found, unsorted.
type ImageSearchResult struct {
	Items []registry.SearchResult
}

// ImageSearch has the daemon search a registry for term.
func (c *Client) ImageSearch(ctx context.Context, term string, o ImageSearchOptions) (ImageSearchResult, error) {
	q := url.Values{"term": {term}}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	o.Filters.set(q)
	search := func(auth string) ([]registry.SearchResult, error) {
		h := http.Header{registry.AuthHeader: {auth}}
		return answer[[]registry.SearchResult](c.send(ctx, http.MethodGet, "/images/search", q, h, nil))
	}
	items, err := search(o.RegistryAuth)
	if isUnauthorized(err) && o.PrivilegeFunc != nil {
		auth, perr := o.PrivilegeFunc(ctx)
		if perr != nil {
			return ImageSearchResult{}, perr
		}
		items, err = search(auth)
	}
	return ImageSearchResult{Items: items}, err
}

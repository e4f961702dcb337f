package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"berth.dev/berth/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Repository is one repository on the endpoint of its registry that
// answered, with credentials for the actions asked. It is safe for
// concurrent use.
type Repository struct {
	c      *Client
	domain string // as references name the registry: docker.io, 127.0.0.1:5000
	path   string // the repository on it: library/busybox
	base   *url.URL
	hc     *http.Client
	a      *authorizer
	mirror bool
	// what Fallback needs to try the endpoints after this one
	auth   AuthConfig
	scopes []string
	next   int
}

// maxRedirects bounds a chain of redirects (a loop ends with an error).
const maxRedirects = 10

// Repository finds the endpoint of domain that answers its API and returns
// repository path there, authorized for actions ("pull", "push"). A push
// that mounts blobs from other repositories names them in from.
func (c *Client) Repository(ctx context.Context, domain, path string, auth AuthConfig, actions []string, from ...string) (*Repository, error) {
	if domain == "" || path == "" {
		return nil, errdefs.Invalid("repository %q on %q: empty name", path, domain)
	}
	scopes := []string{"repository:" + path + ":" + strings.Join(actions, ",")}
	for _, f := range from {
		if f != path {
			scopes = append(scopes, "repository:"+f+":pull")
		}
	}
	return c.open(ctx, domain, path, auth, scopes, 0)
}

// Fallback is the repository on the endpoints after a mirror, for a pull
// the mirror could not serve; an error when r is not a mirror.
func (r *Repository) Fallback(ctx context.Context) (*Repository, error) {
	if !r.mirror {
		return nil, errdefs.NotFound("%s is not a mirror", r.base)
	}
	return r.c.open(ctx, r.domain, r.path, r.auth, r.scopes, r.next)
}

// Mirror tells whether r is served by a mirror of the registry.
func (r *Repository) Mirror() bool { return r.mirror }

// open finds the endpoint of domain that answers, for path with scopes,
// trying the endpoints from the skip'th on.
func (c *Client) open(ctx context.Context, domain, path string, auth AuthConfig, scopes []string, skip int) (*Repository, error) {
	// Mirrors serve pulls only: not pushes, logins or catalogs.
	pullOnly := len(scopes) > 0
	for _, s := range scopes {
		pullOnly = pullOnly && strings.HasPrefix(s, "repository:") && strings.HasSuffix(s, ":pull")
	}
	eps := c.endpoints(domain)
	var errs []error
	for i, ep := range eps {
		if i < skip || (ep.mirror && !pullOnly) {
			continue
		}
		tr, err := c.transport(ep)
		if err != nil {
			return nil, err
		}
		a := &authorizer{c: c, auth: auth, host: ep.base.Host, scopes: scopes}
		chs, err := c.ping(ctx, tr, ep.base)
		if err != nil {
			errs = append(errs, err)
			// An unverified https endpoint falls back to http only when
			// the server does not speak TLS, as docker does.
			if i+1 < len(eps) && ctx.Err() == nil {
				continue
			}
			break
		}
		a.setChallenge(chs)
		r := &Repository{c: c, domain: domain, path: path, base: ep.base, a: a, mirror: ep.mirror, auth: auth, scopes: scopes, next: i + 1}
		r.hc = &http.Client{
			Transport: &authTransport{base: tr, a: a, ua: c.userAgent},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return errdefs.Unavailable("stopped after %d redirects (a redirect loop?)", maxRedirects)
				}
				return nil
			},
		}
		return r, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, errdefs.Unavailable("registry %s: %w", domain, errors.Join(errs...))
}

// ping asks base for /v2/: 200 or 401 (with its challenges) is a registry.
func (c *Client) ping(ctx context.Context, tr http.RoundTripper, base *url.URL) ([]challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/v2/", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, netError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil, nil
	case http.StatusUnauthorized:
		return parseChallenges(resp.Header), nil
	}
	return nil, fmt.Errorf("%s/v2/: %s: not a registry API v2 endpoint", base, resp.Status)
}

// netError shortens Go's "Get \"url\": dial tcp ...: connect: ..." to its
// cause, since callers name the registry already.
func netError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("cannot connect: %w", oe.Err)
	}
	return err
}

// Path is the repository on the registry.
func (r *Repository) Path() string { return r.path }

func (r *Repository) url(kind, ref string) string {
	return r.base.String() + "/v2/" + r.path + "/" + kind + "/" + ref
}

// do sends req, turning a registry's error answer into a typed error.
func (r *Repository) do(req *http.Request, what string, ok ...int) (*http.Response, error) {
	resp, err := r.hc.Do(req)
	if err != nil {
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		if errdefs.KindOf(err) != errdefs.KindUnknown {
			return nil, fmt.Errorf("%s: %w", what, err) // a redirect loop, a token refused
		}
		return nil, errdefs.Unavailable("%s: %v", what, netError(err))
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, responseError(resp, what)
}

// Error is a registry's error answer: its HTTP status and the codes of its
// errors body (MANIFEST_UNKNOWN, DENIED, ...).
type Error struct {
	Status int
	Codes  []string
	// Detail is the registry's own words: "manifest unknown: manifest
	// unknown" (code and message of each error), or its text.
	Detail  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// HasCode tells whether the registry answered with code.
func (e *Error) HasCode(code string) bool {
	for _, c := range e.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// responseError reads a registry's error answer: the distribution spec's
// {"errors": [{"code", "message", "detail"}]} or plain text.
func responseError(resp *http.Response, what string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	var parsed struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	var msgs []string
	if json.Unmarshal(body, &parsed) == nil {
		for _, pe := range parsed.Errors {
			e.Codes = append(e.Codes, pe.Code)
			msgs = append(msgs, strings.ReplaceAll(strings.ToLower(pe.Code), "_", " ")+": "+pe.Message)
		}
	}
	e.Detail = strings.Join(msgs, "; ")
	if e.Detail == "" {
		e.Detail = errorText(body)
	}
	e.Message = what + ": " + resp.Status
	if e.Detail != "" {
		e.Message += ": " + e.Detail
	}
	kind := errdefs.KindUnavailable
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		kind = errdefs.KindUnauthorized
	case http.StatusForbidden:
		kind = errdefs.KindForbidden
	case http.StatusNotFound:
		kind = errdefs.KindNotFound
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		kind = errdefs.KindInvalid
	}
	return errdefs.Mark(kind, e)
}

// errorText is a short, printable excerpt of an error body.
func errorText(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// BlobExists tells whether the repository has blob d.
func (r *Repository) BlobExists(ctx context.Context, d digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("blobs", d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.do(req, "blob "+d.String(), http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

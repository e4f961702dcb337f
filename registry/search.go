package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"berth.dev/berth/errdefs"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// SplitSearchTerm splits docker's search term into the registry it names
// and the term to send: "127.0.0.1:5000/busy" searches 127.0.0.1:5000 for
// "busy"; a term without a registry searches Docker Hub.
func SplitSearchTerm(term string) (domain, remote string) {
	first, rest, ok := strings.Cut(term, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, rest
	}
	return DockerHub, term
}

// Search asks the registry domain for repositories matching term, at most
// limit of them: Docker Hub's and other indexes' /v1/search, or, where a
// registry has none (distribution's registry), its catalog filtered by
// the term.
func (c *Client) Search(ctx context.Context, domain, term string, limit int, auth AuthConfig) ([]registrytypes.SearchResult, error) {
	if domain == DockerHub || domain == hubIndexHost {
		domain = hubIndexHost // the search API is the index's
	}
	r, err := c.open(ctx, domain, "", auth, []string{"registry:catalog:*"}, 0)
	if err != nil {
		return nil, err
	}
	q := url.Values{"q": {term}, "n": {strconv.Itoa(limit)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base.String()+"/v1/search?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(req, "search "+domain, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && domain != hubIndexHost {
		return r.searchCatalog(ctx, term, limit)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, errdefs.NotFound("search %s: the index has no search API", domain)
	}
	var out registrytypes.SearchResults
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&out); err != nil {
		return nil, errdefs.Unavailable("search %s: bad answer: %v", domain, err)
	}
	if len(out.Results) > limit {
		out.Results = out.Results[:limit]
	}
	return out.Results, nil
}

// maxCatalogPages bounds a catalog walk: a registry sending links forever
// is stopped.
const maxCatalogPages = 20

// searchCatalog lists the registry's catalog (pages of 1000) and keeps
// the repositories whose name holds term.
func (r *Repository) searchCatalog(ctx context.Context, term string, limit int) ([]registrytypes.SearchResult, error) {
	var out []registrytypes.SearchResult
	next := r.base.String() + "/v2/_catalog?n=1000"
	term = strings.ToLower(term)
	for page := 0; next != "" && page < maxCatalogPages; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		resp, err := r.do(req, "search "+r.domain+": catalog", http.StatusOK)
		if err != nil {
			return nil, err
		}
		var cat struct {
			Repositories []string `json:"repositories"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&cat)
		resp.Body.Close()
		if err != nil {
			return nil, errdefs.Unavailable("search %s: bad catalog: %v", r.domain, err)
		}
		for _, name := range cat.Repositories {
			if strings.Contains(strings.ToLower(name), term) {
				out = append(out, registrytypes.SearchResult{Name: r.domain + "/" + name})
			}
		}
		next = nextLink(r.base, resp.Header.Get("Link"))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ServerDomain is the registry a login's server address names:
// "https://index.docker.io/v1/" and "" are Docker Hub, "http://host:5000/x"
// is host:5000.
func ServerDomain(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", hubIndexHost, hubAPIHost, DockerHub:
		return DockerHub
	}
	return s
}

// Login checks credentials against a registry: its /v2/ with basic
// credentials, or a token from its token server. It returns the identity
// token (an OAuth2 refresh token) when the token server gives one, which
// docker stores in place of the password.
func (c *Client) Login(ctx context.Context, auth AuthConfig) (identityToken string, err error) {
	domain := ServerDomain(auth.ServerAddress)
	r, err := c.open(ctx, domain, "", auth, nil, 0)
	if err != nil {
		return "", err
	}
	r.a.mu.Lock()
	ch := r.a.challenge
	r.a.mu.Unlock()
	what := "login to " + r.base.String()
	if ch == nil {
		return "", nil // the registry asks for nothing
	}
	if ch.scheme == "bearer" && auth.RegistryToken == "" {
		r.a.decodeAuth()
		t, err := c.fetchToken(ctx, *ch, nil, &r.a.auth)
		if err != nil {
			return "", errdefs.Mark(errdefs.KindUnauthorized, err)
		}
		return t.refresh, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base.String()+"/v2/", nil)
	if err != nil {
		return "", err
	}
	resp, err := r.do(req, what, http.StatusOK)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return "", nil
}

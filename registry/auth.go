package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// AuthConfig is what a caller knows of its credentials for one registry:
// docker's X-Registry-Auth body.
type AuthConfig = registrytypes.AuthConfig

// challenge is one WWW-Authenticate challenge.
type challenge struct {
	scheme string // lower case: "basic", "bearer"
	params map[string]string
}

// parseChallenges reads WWW-Authenticate headers: a scheme, then
// comma-separated key=value pairs whose values may be quoted strings.
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, v := range h.Values("WWW-Authenticate") {
		s := strings.TrimSpace(v)
		for s != "" {
			i := strings.IndexAny(s, " \t")
			scheme := s
			if i >= 0 {
				scheme, s = s[:i], strings.TrimSpace(s[i:])
			} else {
				s = ""
			}
			ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
			for s != "" {
				eq := strings.IndexByte(s, '=')
				if eq <= 0 || strings.ContainsAny(s[:eq], " \t,") {
					break // the next challenge's scheme
				}
				key := strings.ToLower(strings.TrimSpace(s[:eq]))
				s = s[eq+1:]
				var val string
				if strings.HasPrefix(s, `"`) {
					var b strings.Builder
					j := 1
					for ; j < len(s) && s[j] != '"'; j++ {
						if s[j] == '\\' && j+1 < len(s) {
							j++
						}
						b.WriteByte(s[j])
					}
					val, s = b.String(), s[min(j+1, len(s)):]
				} else {
					end := strings.IndexByte(s, ',')
					if end < 0 {
						end = len(s)
					}
					val, s = strings.TrimSpace(s[:end]), s[end:]
				}
				ch.params[key] = val
				s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), ","))
			}
			out = append(out, ch)
		}
	}
	return out
}

// tokenKey names a cached bearer token.
type tokenKey struct {
	realm, service, scope, user string
}

type token struct {
	value   string
	refresh string // an identity token the server gave (login)
	expires time.Time
}

// authorizer adds credentials to one repository's requests as the
// registry's challenge asks.
type authorizer struct {
	c      *Client
	auth   AuthConfig
	host   string // only requests to this host get credentials
	scopes []string

	mu        sync.Mutex
	challenge *challenge
	token     string
}

// decodeAuth fills Username and Password from the "auth" field (base64
// "user:password"), as docker's config.json stores them.
func (a *authorizer) decodeAuth() {
	if a.auth.Auth == "" || a.auth.Username != "" {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(a.auth.Auth)
	if err != nil {
		return
	}
	if u, p, ok := strings.Cut(string(raw), ":"); ok {
		a.auth.Username, a.auth.Password = u, p
	}
}

// setChallenge records the challenge of the registry's /v2/ answer.
func (a *authorizer) setChallenge(chs []challenge) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range chs {
		if ch.scheme == "bearer" || ch.scheme == "basic" {
			a.challenge = &ch
			if ch.scheme == "bearer" {
				break
			}
		}
	}
}

// apply adds the Authorization header to req, fetching a token first when
// the registry wants one.
func (a *authorizer) apply(ctx context.Context, req *http.Request) error {
	if req.URL.Host != a.host {
		return nil // redirected to blob storage: its URL is its credential
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.challenge == nil {
		return nil
	}
	switch a.challenge.scheme {
	case "basic":
		a.decodeAuth()
		if a.auth.Username != "" || a.auth.Password != "" {
			req.SetBasicAuth(a.auth.Username, a.auth.Password)
		}
	case "bearer":
		if a.auth.RegistryToken != "" {
			req.Header.Set("Authorization", "Bearer "+a.auth.RegistryToken)
			return nil
		}
		if a.token == "" {
			t, err := a.c.fetchToken(ctx, *a.challenge, a.scopes, &a.auth)
			if err != nil {
				return err
			}
			a.token = t.value
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return nil
}

// reauthorize is called with a 401's challenges: it tells whether a retry
// with new credentials may pass (a bearer challenge asking for a scope the
// token lacked, or a first challenge).
func (a *authorizer) reauthorize(chs []challenge) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range chs {
		if ch.scheme != "bearer" && ch.scheme != "basic" {
			continue
		}
		had := a.challenge != nil
		a.challenge = &ch
		if ch.scheme == "bearer" {
			if s := ch.params["scope"]; s != "" {
				for _, sc := range strings.Fields(s) {
					if !slices.Contains(a.scopes, sc) {
						a.scopes = append(a.scopes, sc)
						had = false
					}
				}
			}
			if a.token != "" && !had {
				a.token = ""
			}
		}
		return !had
	}
	return false
}

// fetchToken gets a bearer token from the challenge's realm for scopes:
// with an identity token by OAuth2's refresh grant, else by GET with basic
// credentials (or none). Tokens are cached until they expire.
func (c *Client) fetchToken(ctx context.Context, ch challenge, scopes []string, auth *AuthConfig) (token, error) {
	realm := ch.params["realm"]
	ru, err := url.Parse(realm)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" {
		return token{}, errdefs.Unavailable("registry's token realm %q is not an http(s) URL", realm)
	}
	service := ch.params["service"]
	key := tokenKey{realm: realm, service: service, scope: strings.Join(scopes, " "), user: auth.Username + "\x00" + auth.IdentityToken}
	c.mu.Lock()
	if t, ok := c.tokens[key]; ok && time.Now().Before(t.expires) {
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()

	tr, err := c.transport(endpoint{base: &url.URL{Scheme: ru.Scheme, Host: ru.Host}, insecure: ru.Scheme == "http" || c.insecureFor(ru.Host)})
	if err != nil {
		return token{}, err
	}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	var req *http.Request
	if auth.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {auth.IdentityToken}, "client_id": {"berth"}}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		q := ru.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if auth.Username != "" {
			q.Set("account", auth.Username)
			// Asks for a refresh token to keep as the login's identity token.
			q.Set("offline_token", "true")
			q.Set("client_id", "berth")
		}
		ru.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
		if err == nil && (auth.Username != "" || auth.Password != "") {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
	}
	if err != nil {
		return token{}, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return token{}, errdefs.Unavailable("token server %s: %v", ru.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return token{}, errdefs.Unavailable("token server %s: %v", ru.Host, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return token{}, errdefs.Mark(errdefs.KindUnauthorized, fmt.Errorf("token server %s: %s: %s", ru.Host, resp.Status, errorText(body)))
	}
	if resp.StatusCode != http.StatusOK {
		return token{}, errdefs.Unavailable("token server %s: %s: %s", ru.Host, resp.Status, errorText(body))
	}
	var tr2 struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr2); err != nil {
		return token{}, errdefs.Unavailable("token server %s: bad answer: %v", ru.Host, err)
	}
	t := token{value: tr2.Token, refresh: tr2.RefreshToken}
	if t.value == "" {
		t.value = tr2.AccessToken
	}
	if t.value == "" {
		return token{}, errdefs.Unavailable("token server %s: answer holds no token", ru.Host)
	}
	// The spec's default lifetime is 60 s; a margin keeps a token from
	// expiring between the cache and the registry.
	life := time.Duration(max(tr2.ExpiresIn, 60)) * time.Second
	t.expires = time.Now().Add(life - life/10)
	c.mu.Lock()
	c.tokens[key] = t
	c.mu.Unlock()
	return t, nil
}

// authTransport authorizes each request and, on a 401 whose challenge asks
// for more, retries once with new credentials.
type authTransport struct {
	base http.RoundTripper
	a    *authorizer
	ua   string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", t.ua)
	if err := t.a.apply(req.Context(), req); err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.URL.Host != t.a.host {
		return resp, err
	}
	if req.Body != nil && req.GetBody == nil {
		return resp, nil // cannot send the body again
	}
	if !t.a.reauthorize(parseChallenges(resp.Header)) {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	retry.Header.Del("Authorization")
	if err := t.a.apply(req.Context(), retry); err != nil {
		return resp, nil //nolint:nilerr // the 401 says more than a failed token fetch
	}
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// insecureFor is isInsecure, except that a loopback registry with a
// certs.d directory of its own is verified: the operator gave it a CA.
func (c *Client) insecureFor(hostport string) bool {
	if c.insecureHosts[hostport] {
		return true
	}
	if c.hasCerts(hostport) {
		return false
	}
	return c.isInsecure(hostport)
}

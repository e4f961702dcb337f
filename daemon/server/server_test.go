package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// echo is a router that reports what the server handed it.
type echo struct{}

func (echo) Routes() []httputils.Route {
	h := func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
		return httputils.WriteJSON(w, 200, map[string]string{"name": vars["name"], "version": httputils.VersionFromContext(ctx)})
	}
	fail := func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
		kinds := map[string]errdefs.Kind{"notfound": errdefs.KindNotFound, "conflict": errdefs.KindConflict, "invalid": errdefs.KindInvalid,
			"unauthorized": errdefs.KindUnauthorized, "forbidden": errdefs.KindForbidden, "unavailable": errdefs.KindUnavailable,
			"notimpl": errdefs.KindNotImplemented}
		err := errors.New("plain " + vars["kind"])
		if k, ok := kinds[vars["kind"]]; ok {
			err = errdefs.Mark(k, err)
		}
		return fmt.Errorf("wrapped: %w", err)
	}
	return []httputils.Route{
		{Method: "GET", Path: "/things/{name:.+}/json", Handler: h},
		{Method: "GET", Path: "/one/{name}", Handler: h},
		{Method: "POST", Path: "/fail/{kind}", Handler: fail},
	}
}

func serve(t *testing.T, method, path string) (*http.Response, string) {
	t.Helper()
	s := New(Config{Version: "test", MinAPIVersion: "1.24", CurrentAPIVersion: "1.56"}, slog.New(slog.NewTextHandler(io.Discard, nil)), echo{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result(), rec.Body.String()
}

func TestRouting(t *testing.T) {
	for _, c := range []struct{ path, name, version string }{
		{"/things/busybox/json", "busybox", "1.56"},
		{"/v1.41/things/library/busybox:latest/json", "library/busybox:latest", "1.41"},
		{"/v1.24/things/localhost:5000/a/b/json/json", "localhost:5000/a/b/json", "1.24"},
		{"/one/x", "x", "1.56"},
	} {
		resp, body := serve(t, "GET", c.path)
		var got map[string]string
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got["name"] != c.name || got["version"] != c.version {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
		}
		if resp.Header.Get("Api-Version") != "1.56" || resp.Header.Get("Ostype") != "linux" || !strings.HasPrefix(resp.Header.Get("Server"), "Berth/") {
			t.Errorf("%s: headers %v", c.path, resp.Header)
		}
	}
	if resp, body := serve(t, "GET", "/one/x/y"); resp.StatusCode != 404 || body != `{"message":"page not found"}`+"\n" {
		t.Errorf("one segment: %d %s", resp.StatusCode, body)
	}
}

func TestVersionBounds(t *testing.T) {
	for path, want := range map[string]string{
		"/v1.23/one/x": "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version",
		"/v1.9/one/x":  "client version 1.9 is too old",
		"/v1.57/one/x": "client version 1.57 is too new. Maximum supported API version is 1.56",
		"/v2.0/one/x":  "client version 2.0 is too new",
	} {
		resp, body := serve(t, "GET", path)
		if resp.StatusCode != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestErrorStatus: the one mapping from kinds to codes, through wrapping.
func TestErrorStatus(t *testing.T) {
	for kind, code := range map[string]int{"notfound": 404, "conflict": 409, "invalid": 400, "unauthorized": 401,
		"forbidden": 403, "unavailable": 503, "notimpl": 501, "other": 500} {
		resp, body := serve(t, "POST", "/fail/"+kind)
		var e struct{ Message string }
		if resp.StatusCode != code || json.Unmarshal([]byte(body), &e) != nil || e.Message != "wrapped: plain "+kind {
			t.Errorf("%s: %d %s", kind, resp.StatusCode, body)
		}
	}
	if resp, _ := serve(t, "GET", "/fail/x"); resp.StatusCode != 405 {
		t.Errorf("wrong method: %d", resp.StatusCode)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.24", "1.24", 0}, {"1.9", "1.24", -1}, {"1.50", "1.5", 1}, {"2.0", "1.56", 1}, {"1.56", "1.56.0", 0}} {
		if got := httputils.CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

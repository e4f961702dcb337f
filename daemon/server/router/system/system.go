// Package system is the API's system area: /_ping, /version, /info,
// /events and /system/df.
package system

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/daemon/backend"
	"berth.dev/berth/daemon/events"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// Backend is what the system routes need from the daemon.
type Backend interface {
	SystemInfo(ctx context.Context) (*system.Info, error)
	SystemVersion(ctx context.Context) system.VersionResponse
	SystemDiskUsage(ctx context.Context) (*backend.DiskUsage, error)
	SubscribeToEvents(since, until time.Time, f filters.Args) ([]eventtypes.Message, <-chan eventtypes.Message, func())
	AuthLogin(ctx context.Context, auth registry.AuthConfig) (identityToken string, err error)
}

// Router serves the system routes.
type Router struct {
	b Backend
	// BuilderVersion is the _ping Builder-Version header ("1": no BuildKit).
	BuilderVersion string
}

// New returns the system router over b.
func New(b Backend) *Router { return &Router{b: b, BuilderVersion: "1"} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodGet, Path: "/_ping", Handler: r.ping},
		{Method: http.MethodHead, Path: "/_ping", Handler: r.ping},
		{Method: http.MethodGet, Path: "/version", Handler: r.version},
		{Method: http.MethodGet, Path: "/info", Handler: r.info},
		{Method: http.MethodGet, Path: "/events", Handler: r.events},
		{Method: http.MethodGet, Path: "/system/df", Handler: r.df},
		{Method: http.MethodPost, Path: "/auth", Handler: r.auth},
	}
}

// auth is POST /auth: docker login's check of credentials.
func (r *Router) auth(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var a registry.AuthConfig
	if err := httputils.DecodeJSON(req, &a); err != nil {
		return err
	}
	token, err := r.b.AuthLogin(ctx, a)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
}

func (r *Router) ping(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Builder-Version", r.BuilderVersion)
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if req.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (r *Router) version(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	return httputils.WriteJSON(w, http.StatusOK, r.b.SystemVersion(ctx))
}

func (r *Router) info(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	info, err := r.b.SystemInfo(ctx)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, info)
}

func (r *Router) df(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	du, err := r.b.SystemDiskUsage(ctx)
	if err != nil {
		return err
	}
	// API 1.52 added the per-type summaries and 1.53 dropped the lists.
	if httputils.VersionLess(ctx, "1.52") {
		du.ImageUsage, du.Container, du.Volume, du.Build = nil, nil, nil, nil
	} else if !httputils.VersionLess(ctx, "1.53") {
		du.LayersSize, du.Images, du.Containers, du.Volumes, du.BuildCache = 0, nil, nil, nil, nil
	}
	return httputils.WriteJSON(w, http.StatusOK, du)
}

// ParseTime reads docker's since/until: unix seconds with optional
// fraction ("1700000000.123456789"), or RFC 3339.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	sec, frac, hasFrac := strings.Cut(s, ".")
	if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
		var ns int64
		if hasFrac {
			f := (frac + "000000000")[:9]
			if ns, err = strconv.ParseInt(f, 10, 64); err != nil {
				return time.Time{}, errdefs.Invalid("invalid timestamp %q", s)
			}
		}
		return time.Unix(n, ns), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errdefs.Invalid("invalid timestamp %q: want unix seconds or RFC 3339", s)
	}
	return t, nil
}

func (r *Router) events(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	since, err := ParseTime(req.Form.Get("since"))
	if err != nil {
		return err
	}
	until, err := ParseTime(req.Form.Get("until"))
	if err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate("type", "action", "event", "image", "label", "container", "volume", "network", "daemon", "scope"); err != nil {
		return err
	}
	past, ch, cancel := r.b.SubscribeToEvents(since, until, f)
	defer cancel()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for _, m := range past {
		if err := enc.Encode(m); err != nil {
			return nil
		}
	}
	_ = rc.Flush()
	var timeout <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timeout:
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			if !events.Match(f, m) {
				continue
			}
			if err := enc.Encode(m); err != nil {
				return nil
			}
			_ = rc.Flush()
		}
	}
}

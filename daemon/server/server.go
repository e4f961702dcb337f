// Package server is berth's Docker Engine API over HTTP: routing (one
// router package per area under router/, each over its own Backend
// interface), the version middleware, the response headers dockerd sends,
// and the listeners (unix, tcp with mutual TLS, systemd fds).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/lazyregexp"
	"berth.dev/berth/internal/trace"
)

// Config is what the server tells clients about itself.
type Config struct {
	Version           string // berth's version, for the Server header
	MinAPIVersion     string
	CurrentAPIVersion string
	Experimental      bool
}

type route struct {
	method  string
	re      *regexp.Regexp
	names   []string
	handler httputils.HandlerFunc
}

// Server serves the API on any number of listeners.
type Server struct {
	cfg    Config
	log    *slog.Logger
	routes []route
	srv    *http.Server
	mu     sync.Mutex
	ls     []net.Listener
}

var versionPrefix = lazyregexp.New(`^/v([0-9]+(?:\.[0-9]+)*)(/.*)$`)

// New returns a server with the routes of routers. Adding an API area is
// one more router here.
func New(cfg Config, log *slog.Logger, routers ...httputils.Router) *Server {
	s := &Server{cfg: cfg, log: log}
	for _, r := range routers {
		for _, rt := range r.Routes() {
			s.routes = append(s.routes, compile(rt))
		}
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	return s
}

var partRE = lazyregexp.New(`\{([a-zA-Z]+)(:[^}]*)?\}`)

func compile(rt httputils.Route) route {
	var names []string
	pat, last := "", 0
	for _, m := range partRE.FindAllStringSubmatchIndex(rt.Path, -1) {
		pat += regexp.QuoteMeta(rt.Path[last:m[0]])
		names = append(names, rt.Path[m[2]:m[3]])
		if m[4] >= 0 {
			pat += "(" + rt.Path[m[4]+1:m[5]] + ")"
		} else {
			pat += "([^/]+)"
		}
		last = m[1]
	}
	pat += regexp.QuoteMeta(rt.Path[last:])
	return route{method: rt.Method, re: regexp.MustCompile("^" + pat + "$"), names: names, handler: rt.Handler}
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", fmt.Sprintf("Berth/%s (linux)", s.cfg.Version))
	h.Set("Api-Version", s.cfg.CurrentAPIVersion)
	h.Set("Docker-Experimental", fmt.Sprint(s.cfg.Experimental))
	h.Set("Ostype", "linux")

	path, version := r.URL.Path, s.cfg.CurrentAPIVersion
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
	}
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	trace.Stepf("api %s %s", r.Method, r.URL.Path)
	defer func() {
		trace.Stepf("api %s %s: %d", r.Method, r.URL.Path, rw.status)
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "version", version, "status", rw.status, "duration", time.Since(start))
	}()
	if httputils.CompareVersions(version, s.cfg.MinAPIVersion) < 0 {
		httputils.WriteError(rw, errdefs.Invalid("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, s.cfg.MinAPIVersion))
		return
	}
	if httputils.CompareVersions(version, s.cfg.CurrentAPIVersion) > 0 {
		httputils.WriteError(rw, errdefs.Invalid("client version %s is too new. Maximum supported API version is %s", version, s.cfg.CurrentAPIVersion))
		return
	}
	methodMismatch := false
	for _, rt := range s.routes {
		m := rt.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		if rt.method != r.Method {
			methodMismatch = true
			continue
		}
		vars := map[string]string{}
		for i, n := range rt.names {
			vars[n] = m[i+1]
		}
		ctx := httputils.WithVersion(r.Context(), version)
		if err := rt.handler(ctx, rw, r.WithContext(ctx), vars); err != nil {
			if rw.wrote {
				s.log.Warn("api request failed after its response started", "method", r.Method, "path", r.URL.Path, "error", err)
				return
			}
			if httputils.StatusCode(err) == http.StatusInternalServerError {
				s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			}
			httputils.WriteError(rw, err)
		}
		return
	}
	if methodMismatch {
		_ = httputils.WriteJSON(rw, http.StatusMethodNotAllowed, map[string]string{"message": fmt.Sprintf("method %s not allowed on %s", r.Method, path)})
		return
	}
	httputils.WriteError(rw, errdefs.NotFound("page not found"))
}

// responseWriter tracks whether a response has started, so that a late
// error is logged instead of written into a body.
type responseWriter struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote, w.status = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends what is buffered (streams: events, load progress).
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Serve serves on ls until Shutdown; it returns the first listener's
// failure, or nil after Shutdown.
func (s *Server) Serve(ls []net.Listener) error {
	s.mu.Lock()
	s.ls = ls
	s.mu.Unlock()
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			s.log.Info("API listening", "addr", l.Addr().String(), "network", l.Addr().Network())
			err := s.srv.Serve(l)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var first error
	for range ls {
		if err := <-errc; err != nil && first == nil {
			first = err
			go s.srv.Close()
		}
	}
	return first
}

// Shutdown stops accepting and waits for in-flight requests until ctx
// ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

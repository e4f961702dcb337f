// Package archive is the API's docker cp area: HEAD, GET and PUT
// /containers/{id}/archive (a path's stat, a tar of it, a tar extracted
// into a directory of the container).
package archive

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// statHeader carries a path's stat, base64 JSON, as dockerd sends it.
const statHeader = "X-Docker-Container-Path-Stat"

// Backend is what the archive routes need from the daemon.
type Backend interface {
	ContainerStatPath(ctx context.Context, name, path string) (*containertypes.PathStat, error)
	ContainerArchivePath(ctx context.Context, name, path string, start func(*containertypes.PathStat) io.Writer) error
	ContainerExtractToDir(ctx context.Context, name, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error
}

// Router serves the archive routes.
type Router struct{ b Backend }

// New returns the archive router over b.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodHead, Path: "/containers/{name}/archive", Handler: r.head},
		{Method: http.MethodGet, Path: "/containers/{name}/archive", Handler: r.get},
		{Method: http.MethodPut, Path: "/containers/{name}/archive", Handler: r.put},
	}
}

func setStat(w http.ResponseWriter, st *containertypes.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(statHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func (r *Router) head(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	st, err := r.b.ContainerStatPath(ctx, vars["name"], req.Form.Get("path"))
	if err != nil {
		return err
	}
	if err := setStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) get(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	lw := &httputils.LazyWriter{W: w, ContentType: "application/x-tar"}
	err := r.b.ContainerArchivePath(ctx, vars["name"], req.Form.Get("path"), func(st *containertypes.PathStat) io.Writer {
		_ = setStat(w, st)
		return lw
	})
	if err != nil && lw.Started {
		return nil // the status is out: the stream just ends
	}
	if err == nil && !lw.Started {
		_, _ = lw.Write(nil) // an empty tar is still an answer
	}
	return err
}

func (r *Router) put(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	// Only the query: ParseForm would read a form-typed body, the tar.
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return errdefs.Invalid("parse request: %v", err)
	}
	req.Form = q
	err = r.b.ContainerExtractToDir(ctx, vars["name"], req.Form.Get("path"),
		httputils.BoolValue(req, "copyUIDGID"), httputils.BoolValue(req, "noOverwriteDirNonDir"), req.Body)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

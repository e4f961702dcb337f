// Package volume is the API's volume area: create, list, inspect, remove
// and prune (the local driver's volumes).
package volume

import (
	"context"
	"net/http"

	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/daemon/server/httputils"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// Backend is what the volume routes need from the daemon.
type Backend interface {
	VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error)
	Volumes(ctx context.Context, f filters.Args) ([]volumetypes.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumesPrune(ctx context.Context, f filters.Args) (*volumetypes.PruneReport, error)
}

// Router serves the volume routes.
type Router struct{ b Backend }

// New returns the volume router over b.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodGet, Path: "/volumes", Handler: r.list},
		{Method: http.MethodPost, Path: "/volumes/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/volumes/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/volumes/{name:.+}", Handler: r.inspect},
		{Method: http.MethodDelete, Path: "/volumes/{name:.+}", Handler: r.remove},
	}
}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	vols, err := r.b.Volumes(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, volumetypes.ListResponse{Volumes: vols})
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var cr volumetypes.CreateRequest
	if err := httputils.DecodeJSON(req, &cr); err != nil {
		return err
	}
	v, err := r.b.VolumeCreate(ctx, cr)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, v)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	v, err := r.b.VolumeInspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, v)
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	return httputils.NoContent(w, r.b.VolumeRemove(ctx, vars["name"], httputils.BoolValue(req, "force")))
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	// Before API 1.42 prune took every unused volume, named ones too.
	if httputils.VersionLess(ctx, "1.42") && !f.Has("all") {
		f.Add("all", "true")
	}
	rep, err := r.b.VolumesPrune(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

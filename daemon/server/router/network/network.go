// Package network is the API's network area: list, inspect, create,
// remove, connect, disconnect and prune (bridge networks, and the host
// and none ones).
package network

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"

	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
)

// Backend is what the network routes need from the daemon.
type Backend interface {
	NetworkList(ctx context.Context, f filters.Args) ([]nettypes.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error)
	NetworkCreate(ctx context.Context, req nettypes.CreateRequest) (*nettypes.CreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkConnect(ctx context.Context, ref, container string, es *nettypes.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, ref, container string, force bool) error
	NetworksPrune(ctx context.Context, f filters.Args) (*nettypes.PruneReport, error)
}

// Router serves the network routes.
type Router struct{ b Backend }

// New returns the network router over b.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodGet, Path: "/networks", Handler: r.list},
		{Method: http.MethodGet, Path: "/networks/", Handler: r.list},
		{Method: http.MethodPost, Path: "/networks/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/networks/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/networks/{id:.+}", Handler: r.inspect},
		{Method: http.MethodDelete, Path: "/networks/{id:.+}", Handler: r.remove},
		{Method: http.MethodPost, Path: "/networks/{id:.+}/connect", Handler: r.connect},
		{Method: http.MethodPost, Path: "/networks/{id:.+}/disconnect", Handler: r.disconnect},
	}
}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	nets, err := r.b.NetworkList(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, nets)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if s := req.Form.Get("scope"); s != "" && s != "local" {
		return errdefs.NotFound("network %s not found", vars["id"])
	}
	n, err := r.b.NetworkInspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, n)
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var raw rawCreate
	if err := httputils.DecodeJSON(req, &raw.body); err != nil {
		return err
	}
	if err := raw.check(); err != nil {
		return err
	}
	var cr nettypes.CreateRequest
	if err := json.Unmarshal(raw.body, &cr); err != nil {
		return errdefs.Invalid("invalid JSON in request body: %v", err)
	}
	resp, err := r.b.NetworkCreate(ctx, cr)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, resp)
}

// rawCreate is a create request's addresses as sent, so that a bad one is
// named as dockerd names it rather than as a JSON decoding error.
type rawCreate struct {
	body json.RawMessage
}

func (rc rawCreate) check() error {
	var raw struct {
		IPAM *struct {
			Config []struct {
				Subnet, IPRange, Gateway string
				AuxiliaryAddresses       map[string]string
			}
		}
	}
	if err := json.Unmarshal(rc.body, &raw); err != nil || raw.IPAM == nil {
		return nil // the typed decode says what is wrong
	}
	for _, c := range raw.IPAM.Config {
		for _, p := range []struct{ what, v string }{{"subnet", c.Subnet}, {"ip range", c.IPRange}} {
			if _, err := netip.ParsePrefix(p.v); p.v != "" && err != nil {
				return errdefs.Invalid("Invalid %s %s : invalid CIDR address: %s", p.what, p.v, p.v)
			}
		}
		if _, err := netip.ParseAddr(c.Gateway); c.Gateway != "" && err != nil {
			return errdefs.Invalid("Invalid gateway %s : invalid address", c.Gateway)
		}
		for name, a := range c.AuxiliaryAddresses {
			if _, err := netip.ParseAddr(a); err != nil {
				return errdefs.Invalid("Invalid auxiliary address %s=%s : invalid address", name, a)
			}
		}
	}
	return nil
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	return httputils.NoContent(w, r.b.NetworkRemove(ctx, vars["id"]))
}

func (r *Router) connect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var cr nettypes.ConnectRequest
	if err := httputils.DecodeJSON(req, &cr); err != nil {
		return err
	}
	if cr.Container == "" {
		return errdefs.Invalid("no container given to connect")
	}
	if err := r.b.NetworkConnect(ctx, vars["id"], cr.Container, cr.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) disconnect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var dr nettypes.DisconnectRequest
	if err := httputils.DecodeJSON(req, &dr); err != nil {
		return err
	}
	if dr.Container == "" {
		return errdefs.Invalid("no container given to disconnect")
	}
	if err := r.b.NetworkDisconnect(ctx, vars["id"], dr.Container, dr.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	rep, err := r.b.NetworksPrune(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

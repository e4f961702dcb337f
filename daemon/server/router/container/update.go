package container

import (
	"context"
	"net/http"

	"berth.dev/berth/daemon/server/httputils"
	containertypes "github.com/moby/moby/api/types/container"
)

// update is POST /containers/{id}/update. Before API 1.40 a pids limit is
// not the client's to change; from then on 0 and any negative mean
// unlimited, as dockerd takes them.
func (r *Router) update(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var u containertypes.UpdateConfig
	if err := httputils.DecodeJSON(req, &u); err != nil {
		return err
	}
	if httputils.VersionLess(ctx, "1.40") {
		u.PidsLimit = nil
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		var unlimited int64
		u.PidsLimit = &unlimited
	}
	out, err := r.b.ContainerUpdate(ctx, vars["name"], &u)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

package container

import (
	"context"
	"encoding/json"
	"net/http"

	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// stats is GET /containers/{name}/stats: `stream` (default true), and
// `one-shot` (1.41+) with stream=false for one sample without precpu.
// The status is sent with the first sample, so a missing container is
// still a 404; each streamed sample is flushed.
func (r *Router) stats(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	stream := !req.Form.Has("stream") || httputils.BoolValue(req, "stream")
	oneShot := !httputils.VersionLess(ctx, "1.41") && httputils.BoolValue(req, "one-shot")
	if stream && oneShot {
		return errdefs.Invalid("cannot have stream=true and one-shot=true")
	}
	osType := ""
	if !httputils.VersionLess(ctx, "1.52") {
		osType = "linux" // os_type came with API 1.52
	}
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started := false
	return r.b.ContainerStats(ctx, vars["name"], stream, oneShot, func(s *containertypes.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		s.OSType = osType
		if err := enc.Encode(s); err != nil {
			return err
		}
		if stream {
			return rc.Flush()
		}
		return nil
	})
}

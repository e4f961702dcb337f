package daemon

import (
	"maps"
	"slices"
	"strings"

	"berth.dev/berth/image"
	containertypes "github.com/moby/moby/api/types/container"
)

// commitConfig is the run configuration of a committed image, as dockerd
// makes it: the request's configuration (the docker CLI sends none) with
// what it leaves empty taken from the container's; the environment,
// labels, exposed ports and volumes are the union of both, the request's
// winning a key. The --change instructions are applied after.
func commitConfig(req, ctr *containertypes.Config) *image.ContainerConfig {
	if req == nil {
		req = &containertypes.Config{}
	}
	out := &image.ContainerConfig{}
	out.User = first(req.User, ctr.User)
	out.WorkingDir = first(req.WorkingDir, ctr.WorkingDir)
	out.StopSignal = first(req.StopSignal, ctr.StopSignal)
	out.Env = slices.Clone(req.Env)
	for _, kv := range ctr.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(out.Env, func(e string) bool { return e == k || strings.HasPrefix(e, k+"=") }) {
			out.Env = append(out.Env, kv)
		}
	}
	out.Labels = union(ctr.Labels, req.Labels)
	out.Volumes = union(ctr.Volumes, req.Volumes)
	for _, ports := range []map[string]struct{}{portSet(ctr), portSet(req)} {
		for p := range ports {
			if out.ExposedPorts == nil {
				out.ExposedPorts = map[string]struct{}{}
			}
			out.ExposedPorts[p] = struct{}{}
		}
	}
	// The command: the request's entrypoint and command; with neither,
	// the container's (a request's command alone keeps its entrypoint).
	out.Entrypoint, out.Cmd = slices.Clone(req.Entrypoint), slices.Clone(req.Cmd)
	if len(out.Entrypoint) == 0 {
		if len(out.Cmd) == 0 {
			out.Cmd = slices.Clone(ctr.Cmd)
		}
		out.Entrypoint = slices.Clone(ctr.Entrypoint)
	}
	out.Shell = slices.Clone(first2(req.Shell, ctr.Shell))
	out.OnBuild = slices.Clone(first2(req.OnBuild, ctr.OnBuild))
	h := req.Healthcheck
	if h == nil {
		h = ctr.Healthcheck
	}
	if h != nil {
		out.Healthcheck = &image.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return out
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func first2(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// union is a's keys and b's, b winning; nil when both are empty.
func union[V any](a, b map[string]V) map[string]V {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := maps.Clone(a)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, b)
	return out
}

func portSet(c *containertypes.Config) map[string]struct{} {
	out := map[string]struct{}{}
	for p := range c.ExposedPorts {
		out[p.String()] = struct{}{}
	}
	return out
}

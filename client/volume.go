package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/moby/moby/api/types/volume"
)

// VolumeCreateOptions is the new volume.
type VolumeCreateOptions struct {
	Name              string
	Driver            string
	DriverOpts        map[string]string
	Labels            map[string]string
	ClusterVolumeSpec *volume.ClusterVolumeSpec
}

// VolumeCreateResult is the volume made.
type VolumeCreateResult struct{ Volume volume.Volume }

// VolumeCreate creates a volume.
func (c *Client) VolumeCreate(ctx context.Context, o VolumeCreateOptions) (VolumeCreateResult, error) {
	v, err := answer[volume.Volume](c.post(ctx, "/volumes/create", nil, nil, volume.CreateRequest{Name: o.Name, Driver: o.Driver,
		DriverOpts: o.DriverOpts, Labels: o.Labels, ClusterVolumeSpec: o.ClusterVolumeSpec}))
	return VolumeCreateResult{Volume: v}, err
}

// VolumeListOptions selects volumes.
type VolumeListOptions struct{ Filters Filters }

// VolumeListResult is the volumes listed.
type VolumeListResult struct {
	Items    []volume.Volume
	Warnings []string
}

// VolumeList lists volumes.
func (c *Client) VolumeList(ctx context.Context, o VolumeListOptions) (VolumeListResult, error) {
	q := url.Values{}
	o.Filters.set(q)
	r, err := answer[volume.ListResponse](c.get(ctx, "/volumes", q))
	return VolumeListResult{Items: r.Volumes, Warnings: r.Warnings}, err
}

// VolumeInspectOptions is empty.
type VolumeInspectOptions struct{}

// VolumeInspectResult is the decoded volume and its raw JSON.
type VolumeInspectResult struct {
	Volume volume.Volume
	Raw    json.RawMessage
}

// VolumeInspect inspects a volume.
func (c *Client) VolumeInspect(ctx context.Context, name string, _ VolumeInspectOptions) (VolumeInspectResult, error) {
	name, err := trimID("volume", name)
	if err != nil {
		return VolumeInspectResult{}, err
	}
	resp, err := c.get(ctx, "/volumes/"+name, nil)
	if err != nil {
		return VolumeInspectResult{}, err
	}
	var r VolumeInspectResult
	r.Raw, err = decodeRaw(resp, &r.Volume)
	return r, err
}

// VolumeRemoveOptions: remove even if in use.
type VolumeRemoveOptions struct{ Force bool }

// VolumeRemoveResult is empty.
type VolumeRemoveResult struct{}

// VolumeRemove removes a volume.
func (c *Client) VolumeRemove(ctx context.Context, name string, o VolumeRemoveOptions) (VolumeRemoveResult, error) {
	name, err := trimID("volume", name)
	if err != nil {
		return VolumeRemoveResult{}, err
	}
	q := url.Values{}
	if o.Force {
		q.Set("force", "1")
	}
	resp, err := c.delete(ctx, "/volumes/"+name, q)
	if err != nil {
		return VolumeRemoveResult{}, err
	}
	closeBody(resp)
	return VolumeRemoveResult{}, nil
}

// VolumePruneOptions: named volumes too; filters.
type VolumePruneOptions struct {
	All     bool
	Filters Filters
}

// VolumePruneResult is what was removed.
type VolumePruneResult struct{ Report volume.PruneReport }

// VolumePrune removes unused volumes.
func (c *Client) VolumePrune(ctx context.Context, o VolumePruneOptions) (VolumePruneResult, error) {
	f := o.Filters
	if o.All {
		if _, ok := f["all"]; ok {
			return VolumePruneResult{}, errInvalid(`conflicting options: cannot specify both "all" and "all" filter`)
		}
		f = Filters{}
		for k, v := range o.Filters {
			f[k] = v
		}
		f.Add("all", "true")
	}
	rep, err := prune[volume.PruneReport](ctx, c, "/volumes/prune", f, "error retrieving volume prune report")
	return VolumePruneResult{Report: rep}, err
}

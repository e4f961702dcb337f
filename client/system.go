package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"encoding/json"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// ServerVersionOptions is empty.
type ServerVersionOptions struct{}

// PlatformInfo names the server's product.
type PlatformInfo struct{ Name string }

// ServerVersionResult is the daemon's version.
type ServerVersionResult struct {
	Platform      PlatformInfo
	Version       string
	APIVersion    string
	MinAPIVersion string
	Os            string
	Arch          string
	Experimental  bool
	Components    []system.ComponentVersion
}

// ServerVersion asks the daemon's version.
func (c *Client) ServerVersion(ctx context.Context, _ ServerVersionOptions) (ServerVersionResult, error) {
	resp, err := c.get(ctx, "/version", nil)
	if err != nil {
		return ServerVersionResult{}, err
	}
	var v system.VersionResponse
	if err := decode(resp, &v); err != nil {
		return ServerVersionResult{}, err
	}
	return ServerVersionResult{Platform: PlatformInfo{Name: v.Platform.Name}, Version: v.Version, APIVersion: v.APIVersion,
		MinAPIVersion: v.MinAPIVersion, Os: v.Os, Arch: v.Arch,
		Experimental: v.Experimental, //nolint:staticcheck // still sent by daemons
		Components:   v.Components}, nil
}

// InfoOptions is empty.
type InfoOptions struct{}

// SystemInfoResult is the daemon's information.
type SystemInfoResult struct{ Info system.Info }

// Info asks the daemon's system information.
func (c *Client) Info(ctx context.Context, _ InfoOptions) (SystemInfoResult, error) {
	resp, err := c.get(ctx, "/info", nil)
	if err != nil {
		return SystemInfoResult{}, err
	}
	var r SystemInfoResult
	if err := decode(resp, &r.Info); err != nil {
		return SystemInfoResult{}, fmt.Errorf("Error reading remote info: %v", err)
	}
	return r, nil
}

// DiskUsageOptions selects the kinds of objects counted; Verbose lists them.
type DiskUsageOptions struct {
	Containers bool
	Images     bool
	BuildCache bool
	Volumes    bool
	Verbose    bool
}

// DiskUsageResult is the space used per kind.
type DiskUsageResult struct {
	Containers ContainersDiskUsage
	Images     ImagesDiskUsage
	BuildCache BuildCacheDiskUsage
	Volumes    VolumesDiskUsage
}

// ContainersDiskUsage is the containers' usage.
type ContainersDiskUsage struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
	Items                                           []container.Summary
}

// ImagesDiskUsage is the images' usage.
type ImagesDiskUsage struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
	Items                                           []image.Summary
}

// VolumesDiskUsage is the volumes' usage.
type VolumesDiskUsage struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
	Items                                           []volume.Volume
}

// BuildCacheDiskUsage is the build cache's usage.
type BuildCacheDiskUsage struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
	Items                                           []build.CacheRecord
}

// DiskUsage asks the space used (API 1.52's format: berth's daemon).
func (c *Client) DiskUsage(ctx context.Context, o DiskUsageOptions) (DiskUsageResult, error) {
	q := url.Values{}
	for _, t := range []struct {
		on  bool
		obj system.DiskUsageObject
	}{{o.Containers, system.ContainerObject}, {o.Images, system.ImageObject}, {o.Volumes, system.VolumeObject}, {o.BuildCache, system.BuildCacheObject}} {
		if t.on {
			q.Add("type", string(t.obj))
		}
	}
	if o.Verbose {
		q.Set("verbose", "1")
	}
	resp, err := c.get(ctx, "/system/df", q)
	if err != nil {
		return DiskUsageResult{}, err
	}
	if versionLess(c.ClientVersion(), "1.52") {
		var old legacyDiskUsage
		if err := decode(resp, &old); err != nil {
			return DiskUsageResult{}, fmt.Errorf("retrieving disk usage: %v", err)
		}
		return old.result(), nil
	}
	var du system.DiskUsage
	if err := decode(resp, &du); err != nil {
		return DiskUsageResult{}, fmt.Errorf("retrieving disk usage: %v", err)
	}
	var r DiskUsageResult
	if u := du.ImageUsage; u != nil {
		r.Images = ImagesDiskUsage{u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, nil}
		if o.Verbose {
			r.Images.Items = slices.Clone(u.Items)
		}
	}
	if u := du.ContainerUsage; u != nil {
		r.Containers = ContainersDiskUsage{u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, nil}
		if o.Verbose {
			r.Containers.Items = slices.Clone(u.Items)
		}
	}
	if u := du.BuildCacheUsage; u != nil {
		r.BuildCache = BuildCacheDiskUsage{u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, nil}
		if o.Verbose {
			r.BuildCache.Items = slices.Clone(u.Items)
		}
	}
	if u := du.VolumeUsage; u != nil {
		r.Volumes = VolumesDiskUsage{u.ActiveCount, u.TotalCount, u.Reclaimable, u.TotalSize, nil}
		if o.Verbose {
			r.Volumes.Items = slices.Clone(u.Items)
		}
	}
	return r, nil
}

// EventsListOptions selects events: a time window and filters.
type EventsListOptions struct {
	Since   string
	Until   string
	Filters Filters
}

// EventsResult delivers events until an error (io.EOF at the stream's end).
type EventsResult struct {
	Messages <-chan events.Message
	Err      <-chan error
}

// Events streams the daemon's events. The request has been answered
// (the subscription made) when it returns.
func (c *Client) Events(ctx context.Context, o EventsListOptions) EventsResult {
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	res := EventsResult{Messages: msgs, Err: errs}
	q := url.Values{}
	now := time.Now()
	for k, v := range map[string]string{"since": o.Since, "until": o.Until} {
		if v == "" {
			continue
		}
		ts, err := Timestamp(v, now)
		if err != nil {
			errs <- err
			close(errs)
			return res
		}
		q.Set(k, ts)
	}
	o.Filters.set(q)
	h := http.Header{"Accept": {"application/jsonl", "application/x-ndjson;q=0.9", "application/json-seq;q=0.5"}}
	resp, err := c.send(ctx, http.MethodGet, "/events", q, h, nil)
	if err != nil {
		errs <- err
		close(errs)
		return res
	}
	go func() {
		defer close(errs)
		defer resp.Body.Close()
		dec := json.NewDecoder(noRecordSeparators{bufio.NewReader(resp.Body)})
		for {
			var ev events.Message
			if err := dec.Decode(&ev); err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				errs <- err
				return
			}
			select {
			case msgs <- ev:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return res
}

// noRecordSeparators drops json-seq's RS (0x1E) bytes, which JSON text
// never holds unescaped, so one decoder reads ndjson and json-seq alike.
type noRecordSeparators struct{ r io.ByteReader }

func (n noRecordSeparators) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		b, err := n.r.ReadByte()
		if err != nil {
			if i > 0 {
				return i, nil
			}
			return 0, err
		}
		if b == 0x1e {
			continue
		}
		p[i] = b
		i++
		if b == '\n' {
			break // hand a whole line over without waiting for more
		}
	}
	return i, nil
}

// legacyDiskUsage is /system/df before API 1.52 (dockerd 20.10 among
// them): lists only; the counts are summed here by docker's rules.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

func (du *legacyDiskUsage) result() DiskUsageResult {
	r := DiskUsageResult{
		Images:     ImagesDiskUsage{TotalSize: du.LayersSize, TotalCount: int64(len(du.Images)), Items: du.Images},
		Containers: ContainersDiskUsage{TotalCount: int64(len(du.Containers)), Items: du.Containers},
		Volumes:    VolumesDiskUsage{TotalCount: int64(len(du.Volumes)), Items: du.Volumes},
		BuildCache: BuildCacheDiskUsage{TotalCount: int64(len(du.BuildCache)), Items: du.BuildCache},
	}
	for _, img := range du.Images {
		if img.Containers > 0 {
			r.Images.ActiveCount++
		} else if img.Containers == 0 && img.Size != -1 && img.SharedSize != -1 {
			r.Images.Reclaimable += img.Size - img.SharedSize
		}
	}
	var used int64
	for _, ct := range du.Containers {
		r.Containers.TotalSize += ct.SizeRw
		if ct.State == container.StateRunning || ct.State == container.StatePaused || ct.State == container.StateRestarting {
			r.Containers.ActiveCount++
			used += ct.SizeRw
		}
	}
	r.Containers.Reclaimable = r.Containers.TotalSize - used
	used = 0
	for _, v := range du.Volumes {
		if u := v.UsageData; u != nil {
			if u.RefCount > 0 {
				r.Volumes.ActiveCount++
				used += u.Size
			}
			if u.Size > 0 {
				r.Volumes.TotalSize += u.Size
			}
		}
	}
	r.Volumes.Reclaimable = r.Volumes.TotalSize - used
	used = 0
	for _, b := range du.BuildCache {
		if !b.Shared {
			r.BuildCache.TotalSize += b.Size
		}
		if b.InUse {
			r.BuildCache.ActiveCount++
			if !b.Shared {
				used += b.Size
			}
		}
	}
	r.BuildCache.Reclaimable = r.BuildCache.TotalSize - used
	return r
}

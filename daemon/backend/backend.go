// Package backend holds the option and result types that pass between the
// API routers and the daemon, where the moby API module has none: what a
// request asked for, already parsed out of HTTP.
package backend

import (
	"berth.dev/berth/daemon/filters"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/volume"
)

// ImageListOptions is GET /images/json.
type ImageListOptions struct {
	All        bool // intermediate images too
	Filters    filters.Args
	SharedSize bool
	Manifests  bool
}

// ImportOptions is POST /images/create?fromSrc=-.
type ImportOptions struct {
	Repo, Tag string
	Message   string
	Changes   []string
	Platform  string
}

// LoadedImage is one image a load stored: its ID and the references now
// pointing at it.
type LoadedImage struct {
	ID   string
	Refs []string
}

// DiskUsage is GET /system/df in both shapes: the legacy lists (API < 1.53)
// and the per-type summaries (API >= 1.52).
type DiskUsage struct {
	LayersSize int64                `json:"LayersSize,omitempty"`
	Images     []image.Summary      `json:"Images,omitempty"`
	Containers []container.Summary  `json:"Containers,omitempty"`
	Volumes    []volume.Volume      `json:"Volumes,omitempty"`
	BuildCache []build.CacheRecord  `json:"BuildCache,omitempty"`
	ImageUsage *image.DiskUsage     `json:"ImageUsage,omitempty"`
	Container  *container.DiskUsage `json:"ContainerUsage,omitempty"`
	Volume     *volume.DiskUsage    `json:"VolumeUsage,omitempty"`
	Build      *build.DiskUsage     `json:"BuildCacheUsage,omitempty"`
}

// ProgressEvent is one message of a pull's or push's progress stream, as
// docker words them: ID names a layer (or a tag), Total > 0 gives a bar.
type ProgressEvent struct {
	ID             string
	Status         string
	Current, Total int64
	// Aux is sent as the message's aux field (a push's tag, digest and size).
	Aux any
}

// PullOptions is POST /images/create?fromImage=.
type PullOptions struct {
	Ref      string // name[:tag|@digest]
	AllTags  bool   // every tag of Ref, a name without tag
	Platform string // os[/arch[/variant]], "" for the daemon's
	Auth     registry.AuthConfig
	Progress func(ProgressEvent)
}

// PushOptions is POST /images/{name}/push.
type PushOptions struct {
	Ref      string // name[:tag]; without a tag every tag of the repository
	Auth     registry.AuthConfig
	Progress func(ProgressEvent)
}

// SearchOptions is GET /images/search.
type SearchOptions struct {
	Term    string
	Limit   int
	Filters filters.Args
	Auth    registry.AuthConfig
}

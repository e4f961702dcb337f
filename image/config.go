package image

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"berth.dev/berth/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxJSON bounds the JSON documents berth reads (configs, manifests,
// indexes): real ones are kilobytes; a hostile one must not eat memory.
const maxJSON = 16 << 20

// HealthConfig is docker's HEALTHCHECK in an image config.
type HealthConfig struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// ContainerConfig is an image's run configuration: the OCI fields plus the
// ones docker adds.
type ContainerConfig struct {
	ocispec.ImageConfig
	Healthcheck *HealthConfig `json:",omitempty"`
	OnBuild     []string      `json:",omitempty"`
	Shell       []string      `json:",omitempty"`
}

// Config is an image config as docker writes it. Loaded configs are kept as
// their original bytes (the image ID is their digest); this type is for
// reading them and for writing new ones (import, commit).
type Config struct {
	Created *time.Time `json:"created,omitempty"`
	Author  string     `json:"author,omitempty"`
	ocispec.Platform
	Config        ContainerConfig   `json:"config"`
	RootFS        ocispec.RootFS    `json:"rootfs"`
	History       []ocispec.History `json:"history,omitempty"`
	Comment       string            `json:"comment,omitempty"`
	DockerVersion string            `json:"docker_version,omitempty"`
	// Container is the ID of the container a commit was made from.
	Container string `json:"container,omitempty"`
}

func parseConfig(raw []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errdefs.Invalid("image config: %v", err)
	}
	if c.RootFS.Type != "layers" {
		return nil, errdefs.Invalid("image config: rootfs type %q, want \"layers\"", c.RootFS.Type)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errdefs.Invalid("image config: diff ID %q: %v", d, err)
		}
	}
	return &c, nil
}

func readAllLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxJSON {
		return nil, errdefs.Invalid("%s is larger than %d bytes", what, maxJSON)
	}
	return b, nil
}

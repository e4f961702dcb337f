package metadata

import (
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image as the store knows it. Its ID is the digest of its
// config blob, as docker's. The config itself lives in the content store.
type Image struct {
	ID digest.Digest `json:"id"`
	// ChainIDs of its layers, bottom first: the keys of its committed
	// snapshots and of its Layer records.
	ChainIDs []digest.Digest `json:"chainIDs,omitempty"`
	// Manifests known to describe this image, the preferred one first
	// (save writes it; a pull adds the registry's).
	Manifests []ocispec.Descriptor `json:"manifests,omitempty"`
	// Parent is the image this one was committed or built on, if local.
	Parent  digest.Digest     `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
	// LastTagTime is when a reference last pointed here (docker's
	// Metadata.LastTagTime).
	LastTagTime time.Time `json:"lastTagTime,omitempty"`
}

// Layer is one layer of the layer store: a committed snapshot whose key is
// its chain ID.
type Layer struct {
	ChainID digest.Digest `json:"chainID"`
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"` // chain ID
	// Size is the layer's uncompressed tar size; UnpackedSize what its
	// snapshot adds on disk (docker's layer size).
	Size         int64 `json:"size"`
	UnpackedSize int64 `json:"unpackedSize"`
	// Blobs are content-store blobs known to hold this layer (compressed
	// or not): save and push copy one rather than write it anew.
	Blobs []ocispec.Descriptor `json:"blobs,omitempty"`
}

// Container is what the image side needs to know of a container: which
// image it came from and which snapshot is its writable layer.
type Container struct {
	ID       string        `json:"id"`
	Image    digest.Digest `json:"image"`
	Snapshot string        `json:"snapshot"`
	Created  time.Time     `json:"created"`
}

// Lease keeps resources from the garbage collector while an operation
// (a load, a pull, a commit) has made them but not yet referenced them.
type Lease struct {
	ID string `json:"id"`
	// Temporary leases belong to the process that made them; the next
	// Open, which has the database to itself, knows that process is gone
	// and drops them.
	Temporary bool      `json:"temporary"`
	Created   time.Time `json:"created"`
	// Expires, if set, ends a non-temporary lease (resumable pulls).
	Expires   time.Time       `json:"expires,omitempty"`
	Content   []digest.Digest `json:"content,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
	Ingests   []string        `json:"ingests,omitempty"`
}

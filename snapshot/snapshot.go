// Package snapshot defines berth's graph drivers: how an image's layers
// become directories a container can mount. A driver keeps snapshots, each
// either active (writable, made by Prepare on a committed parent) or
// committed (read-only, a parent for others). It returns mounts; the caller
// mounts them with MountAll and undoes them with UnmountAll. Drivers live in
// the subpackages overlay, vfs and btrfs and all pass the shared suite in
// snapshot/testsuite; package drivers picks one for a data root.
package snapshot

import (
	"context"
	"io"
	"time"

	"berth.dev/berth/archive"
)

// Kind says whether a snapshot can still change.
type Kind int

// Snapshot kinds.
const (
	KindActive    Kind = iota + 1 // writable, made by Prepare
	KindCommitted                 // read-only, made by Commit
)

func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Key     string
	Parent  string // key of the committed parent, "" for a base
	Kind    Kind
	Created time.Time
}

// Usage is what a snapshot adds on top of its parent.
type Usage struct {
	Size   int64 // bytes
	Inodes int64
}

// MountSpec is one mount to make, in mount(2) terms. Options may hold more
// than fits in one page (overlay with hundreds of layers): MountAll knows how
// to make such mounts.
type MountSpec struct {
	Type    string
	Source  string
	Options []string
}

// Driver is a graph driver. Keys are chosen by the caller; a key names one
// snapshot whether active or committed. All methods are safe for concurrent
// use on different keys.
type Driver interface {
	// Name is the driver's name as --storage-driver takes it.
	Name() string
	// Prepare makes an active snapshot key on the committed snapshot
	// parent ("" for an empty base) and returns its mounts.
	Prepare(ctx context.Context, key, parent string) ([]MountSpec, error)
	// Mounts returns the mounts of an active snapshot (or, read-only, of a
	// committed one).
	Mounts(ctx context.Context, key string) ([]MountSpec, error)
	// Commit turns active snapshot key into committed snapshot name. key no
	// longer exists afterwards.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot. A committed snapshot with children cannot
	// be removed (errdefs conflict).
	Remove(ctx context.Context, key string) error
	// Stat describes a snapshot (errdefs not found when there is none).
	Stat(ctx context.Context, key string) (Info, error)
	// Walk calls fn for every snapshot.
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage measures what key adds on top of its parent.
	Usage(ctx context.Context, key string) (Usage, error)
	// Apply extracts a layer tar (any compression) onto active snapshot key
	// without mounting it, and reports what it wrote.
	Apply(ctx context.Context, key string, layer io.Reader, opts archive.ApplyOptions) (archive.Result, error)
	// Diff writes the changes of snapshot key against its parent as an
	// uncompressed layer tar.
	Diff(ctx context.Context, key string, w io.Writer) error
	// Close releases the driver's resources; snapshots stay on disk.
	Close() error
}

// Rebaser is a Driver whose snapshots hold only their own changes, never a
// copy of their parent's files (overlay2): a layer can then be extracted
// before its parent exists, and a pull extracts an image's layers at once.
type Rebaser interface {
	// PrepareDetached makes active snapshot key on no parent, for
	// CommitOnto: what Apply deletes in it is kept as whiteouts.
	PrepareDetached(ctx context.Context, key string) error
	// CommitOnto commits active snapshot key, made by PrepareDetached, as
	// name on committed snapshot parent ("" for a base).
	CommitOnto(ctx context.Context, name, key, parent string) error
}

// Changer is a Driver that can list a snapshot's changes against its
// parent without writing a layer (docker diff, GET /containers/{id}/changes).
// All of berth's drivers are Changers.
type Changer interface {
	Changes(ctx context.Context, key string) ([]archive.Change, error)
}

// Package plain is the common half of the drivers whose snapshot
// directory is the whole file tree (vfs, btrfs): mounts are binds of that
// directory, layers are applied with plain deletes, and diffs compare the
// tree with its parent's.
package plain

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"berth.dev/berth/archive"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/fsutil"
	"berth.dev/berth/snapshot/internal/store"
)

// Driver is a full-tree driver over a store.
type Driver struct {
	*store.Store
	name string
}

var _ snapshot.Driver = (*Driver)(nil)

// New opens root with backend b, which keeps each tree in <dir>/fs.
func New(name, root string, b store.Backend) (snapshot.Driver, error) {
	s, err := store.Open(root, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Driver{Store: s, name: name}, nil
}

// Name is the driver's name.
func (d *Driver) Name() string { return d.name }

// FS is the file tree of a snapshot directory.
func FS(dir string) string { return filepath.Join(dir, "fs") }

// Prepare makes active snapshot key on committed parent.
func (d *Driver) Prepare(ctx context.Context, key, parent string) ([]snapshot.MountSpec, error) {
	if _, err := d.Create(ctx, key, parent); err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	return d.Mounts(ctx, key)
}

// Mounts is a bind of the snapshot's tree, read-only once committed.
func (d *Driver) Mounts(ctx context.Context, key string) ([]snapshot.MountSpec, error) {
	r, _, err := d.Get(key)
	if err != nil {
		return nil, fmt.Errorf("%s: mounts: %w", d.name, err)
	}
	mode := "rw"
	if r.Info.Kind == snapshot.KindCommitted {
		mode = "ro"
	}
	return []snapshot.MountSpec{{Type: "bind", Source: FS(d.Dir(r.ID)), Options: []string{"rbind", mode}}}, nil
}

// Usage is the disk usage of the inodes that are new or changed against
// the parent's tree (all of them for a base).
func (d *Driver) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	r, chain, err := d.Get(key)
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("%s: usage: %w", d.name, err)
	}
	var u fsutil.Usage
	if len(chain) == 0 {
		u, err = fsutil.TreeUsage(ctx, FS(d.Dir(r.ID)))
	} else {
		u, err = fsutil.ChangedUsage(ctx, FS(d.Dir(chain[0].ID)), FS(d.Dir(r.ID)))
	}
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("%s: %w", d.name, err)
	}
	return snapshot.Usage{Size: u.Size, Inodes: u.Inodes}, nil
}

// Apply extracts a layer straight into an active snapshot's tree.
func (d *Driver) Apply(ctx context.Context, key string, layer io.Reader, opts archive.ApplyOptions) (archive.Result, error) {
	r, _, err := d.Get(key)
	if err != nil {
		return archive.Result{}, fmt.Errorf("%s: apply: %w", d.name, err)
	}
	if r.Info.Kind != snapshot.KindActive {
		return archive.Result{}, errdefs.Invalid("%s: apply onto %q: snapshot is committed", d.name, key)
	}
	opts.Whiteouts = archive.WhiteoutDelete
	res, err := archive.Apply(ctx, FS(d.Dir(r.ID)), layer, opts)
	if err != nil {
		return res, fmt.Errorf("%s: apply onto %q: %w", d.name, key, err)
	}
	return res, nil
}

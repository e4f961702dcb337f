package overlay

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"

	"berth.dev/berth/archive"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
)

// Apply extracts a layer into an active snapshot's upper directory,
// recording deletions as overlayfs whiteouts. A base snapshot has nothing
// below it, so there whiteouts just delete.
func (d *Driver) Apply(ctx context.Context, key string, layer io.Reader, opts archive.ApplyOptions) (archive.Result, error) {
	r, _, err := d.Get(key)
	if err != nil {
		return archive.Result{}, fmt.Errorf("overlay2: apply: %w", err)
	}
	if r.Info.Kind != snapshot.KindActive {
		return archive.Result{}, errdefs.Invalid("overlay2: apply onto %q: snapshot is committed", key)
	}
	opts.Whiteouts = archive.WhiteoutOverlay
	if _, detached := d.detached.Load(key); r.Info.Parent == "" && !detached {
		opts.Whiteouts = archive.WhiteoutDelete
	}
	if opts.Parallel == 0 {
		// An upper directory is made empty for its layer: small files may
		// be created by several goroutines (archive applies sequentially
		// if it is not empty after all).
		opts.Parallel = applyParallel()
	}
	res, err := archive.Apply(ctx, filepath.Join(d.Dir(r.ID), "fs"), layer, opts)
	if err != nil {
		return res, fmt.Errorf("overlay2: apply onto %q: %w", key, err)
	}
	return res, nil
}

// applyParallel is how many goroutines create a layer's files: two per
// core keep several directories going (creates in one directory serialize
// in the kernel); on 2 cores, 8 measured slower than 3 or 4 (more creates
// racing for the same free inodes).
func applyParallel() int {
	return min(2*runtime.NumCPU(), 4)
}

// PrepareDetached makes active snapshot key on no parent. An overlay layer
// is only its own upper directory, so it may be extracted before its
// parent exists; its deletions stay whiteouts for the parent it gets.
func (d *Driver) PrepareDetached(ctx context.Context, key string) error {
	if _, err := d.Create(ctx, key, ""); err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	d.detached.Store(key, true)
	return nil
}

// CommitOnto commits key, made by PrepareDetached, as name on parent.
func (d *Driver) CommitOnto(ctx context.Context, name, key, parent string) error {
	if parent != "" {
		if _, chain, err := d.Get(parent); err == nil && len(chain)+1 > maxLowers {
			return errdefs.Invalid("overlay2: commit %q: parent %q has %d layers, overlayfs stacks at most %d",
				key, parent, len(chain)+1, maxLowers)
		}
	}
	if err := d.Store.CommitOnto(ctx, name, key, parent); err != nil {
		return fmt.Errorf("overlay2: %w", err)
	}
	d.detached.Delete(key)
	return nil
}

// Remove deletes a snapshot.
func (d *Driver) Remove(ctx context.Context, key string) error {
	err := d.Store.Remove(ctx, key)
	if err == nil {
		d.detached.Delete(key)
	}
	return err
}

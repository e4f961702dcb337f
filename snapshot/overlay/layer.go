package overlay

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

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
	if r.Info.Parent == "" {
		opts.Whiteouts = archive.WhiteoutDelete
	}
	res, err := archive.Apply(ctx, filepath.Join(d.Dir(r.ID), "fs"), layer, opts)
	if err != nil {
		return res, fmt.Errorf("overlay2: apply onto %q: %w", key, err)
	}
	return res, nil
}

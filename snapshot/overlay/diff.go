package overlay

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"berth.dev/berth/archive"
)

// Diff writes the snapshot's upper directory as a layer: overlayfs has
// already recorded every change there.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	r, chain, err := d.Get(key)
	if err != nil {
		return fmt.Errorf("overlay2: diff: %w", err)
	}
	upper := filepath.Join(d.Dir(r.ID), "fs")
	lowers := make([]string, len(chain))
	for i, p := range chain {
		lowers[i] = filepath.Join(d.Dir(p.ID), "fs")
	}
	changes, err := archive.OverlayChanges(upper, lowers)
	if err != nil {
		return fmt.Errorf("overlay2: diff %q: %w", key, err)
	}
	if err := archive.WriteLayer(w, upper, changes, archive.WriteOptions{}); err != nil {
		return fmt.Errorf("overlay2: diff %q: %w", key, err)
	}
	return nil
}

package overlay

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"berth.dev/berth/archive"
)

// Changes lists what the snapshot changed: overlayfs recorded all of it
// in the upper directory.
func (d *Driver) Changes(ctx context.Context, key string) ([]archive.Change, error) {
	r, chain, err := d.Get(key)
	if err != nil {
		return nil, fmt.Errorf("overlay2: changes: %w", err)
	}
	lowers := make([]string, len(chain))
	for i, p := range chain {
		lowers[i] = filepath.Join(d.Dir(p.ID), "fs")
	}
	changes, err := archive.OverlayChanges(filepath.Join(d.Dir(r.ID), "fs"), lowers)
	if err != nil {
		return nil, fmt.Errorf("overlay2: changes of %q: %w", key, err)
	}
	return changes, nil
}

// Diff writes the snapshot's upper directory as a layer.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	r, _, err := d.Get(key)
	if err != nil {
		return fmt.Errorf("overlay2: diff: %w", err)
	}
	changes, err := d.Changes(ctx, key)
	if err != nil {
		return err
	}
	if err := archive.WriteLayer(w, filepath.Join(d.Dir(r.ID), "fs"), changes, archive.WriteOptions{}); err != nil {
		return fmt.Errorf("overlay2: diff %q: %w", key, err)
	}
	return nil
}

package plain

import (
	"context"
	"fmt"
	"io"

	"berth.dev/berth/archive"
)

// Changes compares the snapshot's tree with its parent's (an empty tree
// for a base).
func (d *Driver) Changes(ctx context.Context, key string) ([]archive.Change, error) {
	r, chain, err := d.Get(key)
	if err != nil {
		return nil, fmt.Errorf("%s: changes: %w", d.name, err)
	}
	lower := ""
	if len(chain) > 0 {
		lower = FS(d.Dir(chain[0].ID))
	}
	changes, err := archive.TreeChanges(lower, FS(d.Dir(r.ID)))
	if err != nil {
		return nil, fmt.Errorf("%s: changes of %q: %w", d.name, key, err)
	}
	return changes, nil
}

// Diff writes the snapshot's changes against its parent as a layer.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	r, _, err := d.Get(key)
	if err != nil {
		return fmt.Errorf("%s: diff: %w", d.name, err)
	}
	changes, err := d.Changes(ctx, key)
	if err != nil {
		return err
	}
	if err := archive.WriteLayer(w, FS(d.Dir(r.ID)), changes, archive.WriteOptions{}); err != nil {
		return fmt.Errorf("%s: diff %q: %w", d.name, key, err)
	}
	return nil
}

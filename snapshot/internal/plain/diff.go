package plain

import (
	"context"
	"fmt"
	"io"

	"berth.dev/berth/archive"
)

// Diff compares the snapshot's tree with its parent's (an empty tree for a
// base) and writes the differences as a layer.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	r, chain, err := d.Get(key)
	if err != nil {
		return fmt.Errorf("%s: diff: %w", d.name, err)
	}
	lower := ""
	if len(chain) > 0 {
		lower = FS(d.Dir(chain[0].ID))
	}
	dir := FS(d.Dir(r.ID))
	changes, err := archive.TreeChanges(lower, dir)
	if err != nil {
		return fmt.Errorf("%s: diff %q: %w", d.name, key, err)
	}
	if err := archive.WriteLayer(w, dir, changes, archive.WriteOptions{}); err != nil {
		return fmt.Errorf("%s: diff %q: %w", d.name, key, err)
	}
	return nil
}

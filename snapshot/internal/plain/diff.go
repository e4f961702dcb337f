package plain

import (
	"context"
	"fmt"
	"io"

	"berth.dev/berth/errdefs"
)

// Diff is waiting for archive.TreeChanges and archive.WriteLayer.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	if _, _, err := d.Get(key); err != nil {
		return fmt.Errorf("%s: diff: %w", d.name, err)
	}
	return errdefs.NotImplemented("%s: diff %q: archive.WriteLayer has not landed yet", d.name, key)
}

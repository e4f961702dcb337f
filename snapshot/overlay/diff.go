package overlay

import (
	"context"
	"fmt"
	"io"

	"berth.dev/berth/errdefs"
)

// Diff is waiting for archive.OverlayChanges and archive.WriteLayer.
func (d *Driver) Diff(ctx context.Context, key string, w io.Writer) error {
	if _, _, err := d.Get(key); err != nil {
		return fmt.Errorf("overlay2: diff: %w", err)
	}
	return errdefs.NotImplemented("overlay2: diff %q: archive.WriteLayer has not landed yet", key)
}

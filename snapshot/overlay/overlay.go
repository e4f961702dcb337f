// Package overlay is the "overlay2" graph driver: each snapshot is an
// overlayfs upper directory, and an active snapshot is mounted as an
// overlay of its own directory on its ancestors' directories.
//
// Layout under the driver root (see snapshot/internal/store):
//
//	snapshots/<id>/fs     the layer's files (the upper directory)
//	snapshots/<id>/work   overlayfs' work directory
//	snapshots/<id>/meta.json
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/fsutil"
	"berth.dev/berth/snapshot/internal/store"
)

// Name is the driver's name.
const Name = "overlay2"

// Driver is the overlay2 driver.
type Driver struct {
	*store.Store
	detached sync.Map // keys made by PrepareDetached
}

var (
	_ snapshot.Driver  = (*Driver)(nil)
	_ snapshot.Rebaser = (*Driver)(nil)
)

// New opens (or makes) an overlay2 driver root, deleting what a crash left
// half made there.
func New(root string) (*Driver, error) {
	s, err := store.Open(root, backend{})
	if err != nil {
		return nil, fmt.Errorf("overlay2: %w", err)
	}
	return &Driver{Store: s}, nil
}

// Name returns "overlay2".
func (d *Driver) Name() string { return Name }

type backend struct{}

func (backend) Make(ctx context.Context, dir, parentDir string) error {
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(dir, "work"), 0o700)
}

// Committed keeps the work directory: a committed snapshot may still be
// mounted (docker commit of a paused container).
func (backend) Committed(dir string) error { return nil }

func (backend) Destroy(dir string) error { return os.RemoveAll(dir) }

// maxLowers is how many lower layers overlayfs stacks (OVL_MAX_STACK).
var maxLowers = 500

// Prepare makes active snapshot key on committed parent.
func (d *Driver) Prepare(ctx context.Context, key, parent string) ([]snapshot.MountSpec, error) {
	if parent != "" {
		// A chain overlayfs cannot mount is refused now, not at mount time.
		if _, chain, err := d.Get(parent); err == nil && len(chain)+1 > maxLowers {
			return nil, errdefs.Invalid("overlay2: prepare %q: parent %q has %d layers, overlayfs stacks at most %d",
				key, parent, len(chain)+1, maxLowers)
		}
	}
	if _, err := d.Create(ctx, key, parent); err != nil {
		return nil, fmt.Errorf("overlay2: %w", err)
	}
	return d.Mounts(ctx, key)
}

// Mounts: an active base is a read-write bind of its directory; an active
// snapshot on a parent is an overlay (upper = its directory, lowers = its
// ancestors', nearest first); a committed snapshot is a read-only bind or
// an overlay of lowers only.
func (d *Driver) Mounts(ctx context.Context, key string) ([]snapshot.MountSpec, error) {
	r, chain, err := d.Get(key)
	if err != nil {
		return nil, fmt.Errorf("overlay2: mounts: %w", err)
	}
	dir := d.Dir(r.ID)
	var lowers []string
	if r.Info.Kind == snapshot.KindCommitted {
		lowers = append(lowers, filepath.Join(dir, "fs"))
	}
	for _, p := range chain {
		lowers = append(lowers, filepath.Join(d.Dir(p.ID), "fs"))
	}
	switch {
	case r.Info.Kind == snapshot.KindActive && len(lowers) == 0:
		return []snapshot.MountSpec{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{"rbind", "rw"}}}, nil
	case r.Info.Kind == snapshot.KindCommitted && len(lowers) == 1:
		return []snapshot.MountSpec{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}, nil
	}
	opts := append([]string(nil), fixedOptions()...)
	opts = append(opts, "lowerdir="+joinLowers(lowers))
	if r.Info.Kind == snapshot.KindActive {
		opts = append(opts, "upperdir="+filepath.Join(dir, "fs"), "workdir="+filepath.Join(dir, "work"))
	} else {
		opts = append(opts, "ro")
	}
	return []snapshot.MountSpec{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

// joinLowers joins layer paths as overlay's lowerdir wants them, escaping
// the separator.
func joinLowers(lowers []string) string {
	esc := make([]string, len(lowers))
	for i, l := range lowers {
		esc[i] = strings.ReplaceAll(strings.ReplaceAll(l, `\`, `\\`), ":", `\:`)
	}
	return strings.Join(esc, ":")
}

// fixedOptions turn off the overlayfs features that make an upper
// directory more than "the files that changed" (redirects, metadata-only
// copy-ups, the inode index), so that Diff can read it as a layer. Only
// those the kernel knows are passed.
// The answer is kept once the module is loaded (its first mount loads it).
func fixedOptions() []string {
	fixedOpts.Lock()
	defer fixedOpts.Unlock()
	if fixedOpts.known {
		return fixedOpts.opts
	}
	const params = "/sys/module/overlay/parameters/"
	if _, err := os.Stat(params); err != nil {
		return nil
	}
	for _, o := range []string{"index", "redirect_dir", "metacopy"} {
		if _, err := os.Stat(params + o); err == nil {
			fixedOpts.opts = append(fixedOpts.opts, o+"=off")
		}
	}
	fixedOpts.known = true
	return fixedOpts.opts
}

var fixedOpts struct {
	sync.Mutex
	known bool
	opts  []string
}

// Usage is the disk usage of the snapshot's upper directory: exactly what
// it adds to its parents.
func (d *Driver) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	r, _, err := d.Get(key)
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("overlay2: usage: %w", err)
	}
	u, err := fsutil.TreeUsage(ctx, filepath.Join(d.Dir(r.ID), "fs"))
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("overlay2: %w", err)
	}
	return snapshot.Usage{Size: u.Size, Inodes: u.Inodes}, nil
}

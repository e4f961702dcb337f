package drivers

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/btrfs"
	"berth.dev/berth/snapshot/internal/btrfstest"
	"berth.dev/berth/snapshot/internal/fsutil"
	"berth.dev/berth/snapshot/overlay"
	"berth.dev/berth/snapshot/vfs"
)

// BenchmarkDrivers measures, on a Debian minbase base layer (about 200
// MB, 6000 inodes), what a container start and commit cost each driver:
// Prepare+mount+unmount+Remove, and Diff of a small change.
func BenchmarkDrivers(b *testing.B) {
	testutil.RequireRoot(b)
	tmpl, err := testutil.DebianTemplate()
	if err != nil {
		b.Skipf("no Debian rootfs: %v", err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		open func(b *testing.B) (snapshot.Driver, error)
	}{
		{"overlay2", func(b *testing.B) (snapshot.Driver, error) { return overlayDriver(b.TempDir()) }},
		{"vfs-ext4", func(b *testing.B) (snapshot.Driver, error) { return vfs.New(b.TempDir()) }},
		{"vfs-btrfs-reflink", func(b *testing.B) (snapshot.Driver, error) {
			return vfs.New(filepath.Join(btrfstest.Mount(b, 2<<30), "vfs"))
		}},
		{"btrfs", func(b *testing.B) (snapshot.Driver, error) {
			return btrfs.New(filepath.Join(btrfstest.Mount(b, 2<<30), "btrfs"))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d, err := c.open(b)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			mounts, err := d.Prepare(ctx, "base-a", "")
			if err != nil {
				b.Fatal(err)
			}
			if err := fsutil.CopyTree(tmpl, mounts[0].Source+"/rootfs"); err != nil {
				b.Fatal(err)
			}
			if err := d.Commit(ctx, "base", "base-a"); err != nil {
				b.Fatal(err)
			}
			target := b.TempDir()
			b.Run("prepare-mount-remove", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					key := fmt.Sprint("c", i)
					m, err := d.Prepare(ctx, key, "base")
					if err != nil {
						b.Fatal(err)
					}
					if err := snapshot.MountAll(m, target); err != nil {
						b.Fatal(err)
					}
					if err := snapshot.UnmountAll(target); err != nil {
						b.Fatal(err)
					}
					if err := d.Remove(ctx, key); err != nil {
						b.Fatal(err)
					}
				}
			})
			m, err := d.Prepare(ctx, "c", "base")
			if err != nil {
				b.Fatal(err)
			}
			if err := snapshot.MountAll(m, target); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(target, "rootfs/etc/hostname"), []byte("changed\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(target, "rootfs/usr/share/doc")); err != nil {
				b.Fatal(err)
			}
			if err := snapshot.UnmountAll(target); err != nil {
				b.Fatal(err)
			}
			b.Run("diff-small-change", func(b *testing.B) {
				for b.Loop() {
					if err := d.Diff(ctx, "c", io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("usage", func(b *testing.B) {
				for b.Loop() {
					if _, err := d.Usage(ctx, "c"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func overlayDriver(root string) (snapshot.Driver, error) {
	d, err := overlay.New(root)
	if err != nil {
		return nil, err
	}
	return d, nil
}

package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
)

// debianLayers writes the Debian minbase rootfs as a layer tar (WriteTree)
// and its gzip and zstd forms into a temporary directory of b.
func debianLayers(b *testing.B) string {
	testutil.RequireRoot(b)
	tmpl, err := testutil.DebianTemplate()
	if err != nil {
		b.Skipf("no Debian rootfs: %v", err)
	}
	dir := b.TempDir()
	var buf bytes.Buffer
	if err := WriteTree(&buf, tmpl); err != nil {
		b.Fatal(err)
	}
	plain := filepath.Join(dir, "debian.tar")
	if err := os.WriteFile(plain, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range [][]string{{"gzip", "-k", plain}, {"zstd", "-q", "-k", plain}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", c, err, out)
		}
	}
	return dir
}

// BenchmarkApply applies the Debian rootfs layer (about 200 MB) in each
// compression, sequentially and with 4 file workers, and runs GNU tar -x on the same tar for comparison. MB/s is
// of the uncompressed tar. BERTH_BENCH_TMPFS=1 extracts onto a tmpfs.
// Run with -count to alternate them:
//
//	go test -run '^$' -bench Apply -benchtime 3x -count 3 ./archive/
func BenchmarkApply(b *testing.B) {
	dir := debianLayers(b)
	st, err := os.Stat(filepath.Join(dir, "debian.tar"))
	if err != nil {
		b.Fatal(err)
	}
	size := st.Size()
	run := func(b *testing.B, fn func(root string) error) {
		b.SetBytes(size)
		base := b.TempDir()
		if os.Getenv("BERTH_BENCH_TMPFS") == "1" {
			// The disk of a shared VM is noisy; tmpfs measures our own cost.
			if err := unix.Mount("tmpfs", base, "tmpfs", 0, "size=2g"); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { unix.Unmount(base, unix.MNT_DETACH) })
		}
		for i := 0; b.Loop(); i++ {
			// A fresh directory each time, nothing removed until the end:
			// ext4 is slow to allocate inodes just freed, which would
			// measure the removal of the previous tree.
			b.StopTimer()
			root := filepath.Join(base, fmt.Sprint("root", i))
			if err := os.Mkdir(root, 0o755); err != nil {
				b.Fatal(err)
			}
			exec.Command("sync").Run()
			b.StartTimer()
			if err := fn(root); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
	}
	for _, name := range []string{"debian.tar", "debian.tar.gz", "debian.tar.zst"} {
		for _, par := range []int{0, 4} {
			b.Run(fmt.Sprintf("berth/parallel=%d/%s", par, name), func(b *testing.B) {
				run(b, func(root string) error {
					f, err := os.Open(filepath.Join(dir, name))
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = Apply(context.Background(), root, f, ApplyOptions{Parallel: par})
					return err
				})
			})
		}
	}
	for _, name := range []string{"debian.tar", "debian.tar.gz", "debian.tar.zst"} {
		b.Run("gnutar/"+name, func(b *testing.B) {
			run(b, func(root string) error {
				args := []string{"--numeric-owner", "-p", "--xattrs", "--xattrs-include=*", "-C", root, "-xf", filepath.Join(dir, name)}
				if filepath.Ext(name) == ".zst" {
					args = append([]string{"--zstd"}, args...)
				}
				out, err := exec.Command("tar", args...).CombinedOutput()
				if err != nil {
					b.Logf("%s", out)
				}
				return err
			})
		})
	}
}

package overlay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"berth.dev/berth/snapshot"
)

// BenchmarkPrepareRemove measures the store's bookkeeping with the
// cheapest backend: Prepare and Remove of a base snapshot, each reported.
func BenchmarkPrepareRemove(b *testing.B) {
	ctx := context.Background()
	d, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var tp, tr time.Duration
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprint("c", i)
		t0 := time.Now()
		if _, err := d.Prepare(ctx, key, ""); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := d.Remove(ctx, key); err != nil {
			b.Fatal(err)
		}
		tp += t1.Sub(t0)
		tr += time.Since(t1)
	}
	b.ReportMetric(float64(tp.Microseconds())/float64(b.N), "prepare-µs/op")
	b.ReportMetric(float64(tr.Microseconds())/float64(b.N), "remove-µs/op")
}

// BenchmarkMount measures MountAll and UnmountAll of a container on one
// layer, apart: overlayfs syncs its upper file system at unmount.
func BenchmarkMount(b *testing.B) {
	ctx := context.Background()
	d, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Prepare(ctx, "a", ""); err != nil {
		b.Fatal(err)
	}
	if err := d.Commit(ctx, "base", "a"); err != nil {
		b.Fatal(err)
	}
	m, err := d.Prepare(ctx, "c", "base")
	if err != nil {
		b.Fatal(err)
	}
	target := b.TempDir()
	var tm, tu time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := snapshot.MountAll(m, target); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := snapshot.UnmountAll(target); err != nil {
			b.Fatal(err)
		}
		tm += t1.Sub(t0)
		tu += time.Since(t1)
	}
	b.ReportMetric(float64(tm.Microseconds())/float64(b.N), "mount-µs/op")
	b.ReportMetric(float64(tu.Microseconds())/float64(b.N), "unmount-µs/op")
}

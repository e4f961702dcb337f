package overlay

import (
	"context"
	"fmt"
	"testing"
	"time"
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

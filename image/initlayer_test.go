package image_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// The first containers of an image, created at once, share one init
// layer: the makers of it wait for each other (a second commit of the
// same name failed while the first was under way).
func TestCreateContainersAtOnce(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEnv(t, "overlay2")
	path, _ := twoLayerArchive(t, "busybox")
	load(t, e.store, path)
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = e.store.CreateContainer(ctx, fmt.Sprintf("c%d", i), "busybox")
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: create c%d: %v", round, i, err)
			}
		}
		if _, snaps, _, _ := e.counts(t); snaps != 11 {
			t.Fatalf("round %d: %d snapshots, want the two layers, one init layer and eight containers'", round, snaps)
		}
		for i := range errs {
			if err := e.store.RemoveContainer(ctx, fmt.Sprintf("c%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		// The init layer goes with its last user: the next round makes it anew.
		if _, err := e.db.GC(); err != nil {
			t.Fatal(err)
		}
		if _, snaps, _, _ := e.counts(t); snaps != 2 {
			t.Fatalf("round %d: %d snapshots after the removals, want the two layers", round, snaps)
		}
	}
}

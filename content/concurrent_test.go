package content

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

// Writers, walkers, deleters and readers on one store at once: nobody sees
// an error that is not "not found", and every blob seen is whole.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	smallCheckpoints(t, 64<<10)
	s := newStore(t)
	const blobs = 12
	datas := make(map[digest.Digest][]byte)
	var order []digest.Digest
	for i := range blobs {
		d, dg := testData(uint64(500+i), 50_000+i*20_000)
		datas[dg] = d
		order = append(order, dg)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	for w := range 3 { // several writers per blob, different refs
		wg.Go(func() {
			for _, dg := range order {
				if _, err := s.Ingest(ctx, "w"+itoa(int64(w))+dg.String(), bytes.NewReader(datas[dg]), dg, int64(len(datas[dg]))); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Go(func() { // delete the first half as soon as they appear
		for _, dg := range order[:blobs/2] {
			for {
				err := s.Delete(ctx, dg)
				if err == nil {
					break
				}
				if !errdefs.Is(err, errdefs.KindNotFound) {
					errc <- err
					return
				}
				runtime.Gosched()
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 50 {
				err := s.Walk(ctx, func(i Info) error {
					ra, err := s.ReaderAt(ctx, i.Digest)
					if errdefs.Is(err, errdefs.KindNotFound) {
						return nil // deleted meanwhile
					}
					if err != nil {
						return err
					}
					defer ra.Close()
					if ra.Size() != int64(len(datas[i.Digest])) {
						t.Errorf("blob %s seen with %d bytes, want %d", i.Digest, ra.Size(), len(datas[i.Digest]))
					}
					return nil
				})
				if err != nil {
					errc <- err
				}
				if _, err := s.ListIngests(ctx); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for _, dg := range order[blobs/2:] {
		checkBlob(t, s, dg, datas[dg])
	}
	noIngests(t, s)
}

package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"berth.dev/berth/content"
	"berth.dev/berth/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// LeaseHandle is a lease held by this process. Add a resource to it before
// making the resource, so the collector never sees the resource unowned.
type LeaseHandle struct {
	db *DB
	id string
}

// NewLease starts a temporary lease: it ends with Release, or with this
// process (the next Open drops it).
func (db *DB) NewLease() (*LeaseHandle, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	l := Lease{ID: hex.EncodeToString(b[:]), Temporary: true, Created: time.Now()}
	if err := db.Update(func(tx *Tx) error { return put(tx, bucketLeases, l.ID, l) }); err != nil {
		return nil, fmt.Errorf("new lease: %w", err)
	}
	return &LeaseHandle{db: db, id: l.ID}, nil
}

// ID names the lease.
func (h *LeaseHandle) ID() string { return h.id }

func (h *LeaseHandle) add(fn func(*Lease)) error {
	// Not while a collection runs: it might have marked already.
	h.db.gcMu.RLock()
	defer h.db.gcMu.RUnlock()
	return h.db.Update(func(tx *Tx) error {
		l, err := get[Lease](tx, bucketLeases, h.id, "lease")
		if err != nil {
			return err
		}
		fn(&l)
		return put(tx, bucketLeases, h.id, l)
	})
}

// AddContent protects blobs.
func (h *LeaseHandle) AddContent(d ...digest.Digest) error {
	return h.add(func(l *Lease) { l.Content = append(l.Content, d...) })
}

// AddSnapshot protects snapshots (and their parents).
func (h *LeaseHandle) AddSnapshot(key ...string) error {
	return h.add(func(l *Lease) { l.Snapshots = append(l.Snapshots, key...) })
}

// AddIngest protects an unfinished content write.
func (h *LeaseHandle) AddIngest(ref ...string) error {
	return h.add(func(l *Lease) { l.Ingests = append(l.Ingests, ref...) })
}

// Release ends the lease; what it alone protected goes at the next GC.
func (h *LeaseHandle) Release() error {
	return h.db.Update(func(tx *Tx) error { return del(tx, bucketLeases, h.id, "lease") })
}

// GCStats says what a collection removed, and what it could not.
type GCStats struct {
	Blobs, Snapshots, Layers, Ingests int
	// Reclaimed is the bytes of blobs removed.
	Reclaimed int64
	Errors    []error
}

// GC removes every blob, snapshot, layer record and ingest that no image,
// container or lease reaches. One failing removal does not stop the rest;
// the failures come back joined in the error (the stats count what went).
func (db *DB) GC() (GCStats, error) {
	db.gcMu.Lock()
	defer db.gcMu.Unlock()
	ctx := context.Background()
	var st GCStats

	// Snapshots first: the graph of parents is needed to mark.
	snaps := map[string]snapshot.Info{}
	if err := db.Snapshots.Walk(ctx, func(i snapshot.Info) error { snaps[i.Key] = i; return nil }); err != nil {
		return st, fmt.Errorf("gc: list snapshots: %w", err)
	}

	liveBlobs := map[digest.Digest]bool{}
	liveSnaps := map[string]bool{}
	liveIngests := map[string]bool{}
	markSnap := func(key string) {
		for key != "" && !liveSnaps[key] {
			liveSnaps[key] = true
			key = snaps[key].Parent
		}
	}
	var deadLayers []digest.Digest
	err := db.View(func(tx *Tx) error {
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			liveBlobs[img.ID] = true
			for _, m := range img.Manifests {
				liveBlobs[m.Digest] = true
			}
			if n := len(img.ChainIDs); n > 0 {
				markSnap(img.ChainIDs[n-1].String())
			}
		}
		ctrs, err := tx.Containers()
		if err != nil {
			return err
		}
		for _, c := range ctrs {
			markSnap(c.Snapshot)
		}
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			for _, d := range l.Content {
				liveBlobs[d] = true
			}
			for _, k := range l.Snapshots {
				markSnap(k)
			}
			for _, r := range l.Ingests {
				liveIngests[r] = true
			}
		}
		layers, err := tx.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			if !liveSnaps[l.ChainID.String()] {
				deadLayers = append(deadLayers, l.ChainID)
				continue
			}
			for _, b := range l.Blobs {
				liveBlobs[b.Digest] = true
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: mark: %w", err)
	}

	if len(deadLayers) > 0 {
		err := db.Update(func(tx *Tx) error {
			for _, c := range deadLayers {
				if err := tx.tx.Bucket(bucketLayers).Delete([]byte(c)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("gc: drop layer records: %w", err)
		}
		st.Layers = len(deadLayers)
	}

	// Children before parents: deepest first.
	depth := func(k string) int {
		n := 0
		for k != "" && n <= len(snaps) {
			k = snaps[k].Parent
			n++
		}
		return n
	}
	var dead []string
	for k := range snaps {
		if !liveSnaps[k] {
			dead = append(dead, k)
		}
	}
	sort.Slice(dead, func(i, j int) bool { return depth(dead[i]) > depth(dead[j]) })
	failed := map[string]bool{}
	for _, k := range dead {
		if failed[k] {
			continue
		}
		if err := db.Snapshots.Remove(ctx, k); err != nil {
			st.Errors = append(st.Errors, fmt.Errorf("gc: remove snapshot %s: %w", k, err))
			// Its parents cannot go either; keep going with the rest.
			for p := snaps[k].Parent; p != ""; p = snaps[p].Parent {
				failed[p] = true
			}
			continue
		}
		st.Snapshots++
	}

	err = db.Content.Walk(ctx, func(i content.Info) error {
		if liveBlobs[i.Digest] {
			return nil
		}
		if err := db.Content.Delete(ctx, i.Digest); err != nil {
			st.Errors = append(st.Errors, fmt.Errorf("gc: remove blob %s: %w", i.Digest, err))
			return nil
		}
		st.Blobs++
		st.Reclaimed += i.Size
		return nil
	})
	if err != nil {
		st.Errors = append(st.Errors, fmt.Errorf("gc: list blobs: %w", err))
	}
	ingests, err := db.Content.ListIngests(ctx)
	if err != nil {
		st.Errors = append(st.Errors, fmt.Errorf("gc: list ingests: %w", err))
	}
	for _, in := range ingests {
		if liveIngests[in.Ref] {
			continue
		}
		if err := db.Content.Abort(ctx, in.Ref); err != nil {
			st.Errors = append(st.Errors, fmt.Errorf("gc: abort ingest %s: %w", in.Ref, err))
			continue
		}
		st.Ingests++
	}
	return st, errors.Join(st.Errors...)
}

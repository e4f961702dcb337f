// Package metadata is berth's image-side database: one bbolt file holding
// images, references, layers, containers and leases, next to the content
// store and the graph driver whose objects it references. It owns garbage
// collection: whatever no image, container or lease reaches is removed.
//
// Every change is one bbolt transaction, so a crash at any moment leaves a
// database that opens and is consistent; objects on disk that a crash left
// unreferenced (blobs, snapshots, ingests) are swept at the next Open.
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"berth.dev/berth/content"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketImages     = []byte("images")
	bucketRefs       = []byte("refs")
	bucketLayers     = []byte("layers")
	bucketContainers = []byte("containers")
	bucketLeases     = []byte("leases")
	allBuckets       = [][]byte{bucketImages, bucketRefs, bucketLayers, bucketContainers, bucketLeases}
)

// DB is the metadata database with the stores it describes.
type DB struct {
	bolt      *bolt.DB
	Content   *content.Store
	Snapshots snapshot.Driver

	// gcMu: GC holds it for writing; operations that make objects before
	// a lease or reference protects them hold it for reading.
	gcMu sync.RWMutex
}

// Open opens (or makes) the database in dir. Only one process may have it
// open; a second gets a clear error rather than waiting. Leases of a process
// that died are dropped and the garbage collector runs once.
func Open(dir string, cs *content.Store, sn snapshot.Driver) (*DB, error) {
	path := filepath.Join(dir, "metadata.db")
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, errdefs.Mark(errdefs.KindConflict, fmt.Errorf("open %s: in use by another berth process", path))
		}
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	db := &DB{bolt: b, Content: cs, Snapshots: sn}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		// We hold the file lock: every temporary lease is a dead process's.
		leases := tx.Bucket(bucketLeases)
		now := time.Now()
		var drop [][]byte
		err := leases.ForEach(func(k, v []byte) error {
			var l Lease
			if err := json.Unmarshal(v, &l); err != nil || l.Temporary || (!l.Expires.IsZero() && now.After(l.Expires)) {
				drop = append(drop, k)
			}
			return nil
		})
		for _, k := range drop {
			if err := leases.Delete(k); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	if _, err := db.GC(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database (not the stores).
func (db *DB) Close() error { return db.bolt.Close() }

// Tx is a transaction on the database.
type Tx struct{ tx *bolt.Tx }

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Update runs fn in a read-write transaction, committed if fn returns nil.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

func get[T any](tx *Tx, bucket []byte, key, what string) (T, error) {
	var v T
	raw := tx.tx.Bucket(bucket).Get([]byte(key))
	if raw == nil {
		return v, errdefs.NotFound("%s %s: not found", what, key)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%s %s: corrupt record: %w", what, key, err)
	}
	return v, nil
}

func put(tx *Tx, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.tx.Bucket(bucket).Put([]byte(key), raw)
}

func del(tx *Tx, bucket []byte, key, what string) error {
	b := tx.tx.Bucket(bucket)
	if b.Get([]byte(key)) == nil {
		return errdefs.NotFound("%s %s: not found", what, key)
	}
	return b.Delete([]byte(key))
}

func list[T any](tx *Tx, bucket []byte) ([]T, error) {
	var out []T
	err := tx.tx.Bucket(bucket).ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s %s: corrupt record: %w", bucket, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Image returns the image with this ID.
func (tx *Tx) Image(id digest.Digest) (Image, error) {
	return get[Image](tx, bucketImages, id.String(), "image")
}

// PutImage stores an image record.
func (tx *Tx) PutImage(img Image) error { return put(tx, bucketImages, img.ID.String(), img) }

// DeleteImage removes an image record (not its references).
func (tx *Tx) DeleteImage(id digest.Digest) error {
	return del(tx, bucketImages, id.String(), "image")
}

// Images lists every image.
func (tx *Tx) Images() ([]Image, error) { return list[Image](tx, bucketImages) }

// Ref returns the image a normalized reference points to.
func (tx *Tx) Ref(ref string) (digest.Digest, error) {
	raw := tx.tx.Bucket(bucketRefs).Get([]byte(ref))
	if raw == nil {
		return "", errdefs.NotFound("reference %s: not found", ref)
	}
	return digest.Digest(raw), nil
}

// PutRef points a normalized reference at an image.
func (tx *Tx) PutRef(ref string, id digest.Digest) error {
	return tx.tx.Bucket(bucketRefs).Put([]byte(ref), []byte(id))
}

// DeleteRef removes a reference.
func (tx *Tx) DeleteRef(ref string) error { return del(tx, bucketRefs, ref, "reference") }

// Refs returns every reference with the image it points to, sorted.
func (tx *Tx) Refs() (map[string]digest.Digest, error) {
	out := map[string]digest.Digest{}
	err := tx.tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		out[string(k)] = digest.Digest(v)
		return nil
	})
	return out, err
}

// RefsOf returns the references that point to image id, sorted.
func (tx *Tx) RefsOf(id digest.Digest) ([]string, error) {
	all, err := tx.Refs()
	var out []string
	for r, to := range all {
		if to == id {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, err
}

// Layer returns the layer with this chain ID.
func (tx *Tx) Layer(chainID digest.Digest) (Layer, error) {
	return get[Layer](tx, bucketLayers, chainID.String(), "layer")
}

// PutLayer stores a layer record.
func (tx *Tx) PutLayer(l Layer) error { return put(tx, bucketLayers, l.ChainID.String(), l) }

// Layers lists every layer.
func (tx *Tx) Layers() ([]Layer, error) { return list[Layer](tx, bucketLayers) }

// Container returns a container record.
func (tx *Tx) Container(id string) (Container, error) {
	return get[Container](tx, bucketContainers, id, "container")
}

// PutContainer stores a container record.
func (tx *Tx) PutContainer(c Container) error { return put(tx, bucketContainers, c.ID, c) }

// DeleteContainer removes a container record.
func (tx *Tx) DeleteContainer(id string) error {
	return del(tx, bucketContainers, id, "container")
}

// Containers lists every container.
func (tx *Tx) Containers() ([]Container, error) { return list[Container](tx, bucketContainers) }

// Leases lists every lease.
func (tx *Tx) Leases() ([]Lease, error) { return list[Lease](tx, bucketLeases) }

package image

import (
	"context"
	"fmt"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/metadata"
	"berth.dev/berth/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CreateContainer gives container id a writable snapshot on the image ref
// names and records that the container uses the image. It returns the
// snapshot's mounts, to be mounted as the container's root.
func (s *Store) CreateContainer(ctx context.Context, id, ref string) (*Image, []snapshot.MountSpec, error) {
	if id == "" {
		return nil, nil, errdefs.Invalid("container ID is empty")
	}
	img, err := s.Get(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	parent := ""
	if n := len(img.ChainIDs); n > 0 {
		parent = img.ChainIDs[n-1].String()
	}
	// The record first: from then on the collector keeps the snapshot.
	err = s.db.Update(func(tx *metadata.Tx) error {
		if _, err := tx.Container(id); err == nil {
			return errdefs.Conflict("container %s already has a file system", id)
		}
		if _, err := tx.Image(img.ID); err != nil {
			return err // removed meanwhile
		}
		return tx.PutContainer(metadata.Container{ID: id, Image: img.ID, Snapshot: id, Created: time.Now().UTC()})
	})
	if err != nil {
		return nil, nil, err
	}
	mounts, err := s.prepareOnInit(ctx, id, parent)
	if err != nil {
		_ = s.db.Update(func(tx *metadata.Tx) error { return tx.DeleteContainer(id) })
		return nil, nil, fmt.Errorf("container %s: %w", id, err)
	}
	return img, mounts, nil
}

// ContainerMounts returns the mounts of a container's file system.
func (s *Store) ContainerMounts(ctx context.Context, id string) ([]snapshot.MountSpec, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, err
	}
	return s.sn.Mounts(ctx, c.Snapshot)
}

// RemoveContainer drops a container's file system and its claim on its
// image. It must be unmounted.
func (s *Store) RemoveContainer(ctx context.Context, id string) error {
	c, err := s.container(id)
	if err != nil {
		return err
	}
	if err := s.sn.Remove(ctx, c.Snapshot); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return s.db.Update(func(tx *metadata.Tx) error { return tx.DeleteContainer(id) })
}

func (s *Store) container(id string) (metadata.Container, error) {
	var c metadata.Container
	err := s.db.View(func(tx *metadata.Tx) error {
		var err error
		c, err = tx.Container(id)
		return err
	})
	return c, err
}

// HistoryItem is one line of docker's image history.
type HistoryItem struct {
	ID        string // the image ID on the top line, "<missing>" below
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
	Tags      []string
}

// History is docker's image history: the config's history, newest first,
// with each layer's size.
func (s *Store) History(ctx context.Context, ref string) ([]HistoryItem, error) {
	img, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var sizes []int64
	err = s.db.View(func(tx *metadata.Tx) error {
		for _, c := range img.ChainIDs {
			l, err := tx.Layer(c)
			if err != nil {
				return err
			}
			sizes = append(sizes, l.UnpackedSize)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	hist := img.Config.History
	if len(hist) == 0 {
		// No history (some importers): one line per layer.
		for range sizes {
			hist = append(hist, ocispec.History{})
		}
	}
	var out []HistoryItem
	layer := 0
	for _, h := range hist {
		it := HistoryItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			it.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(sizes) {
			it.Size = sizes[layer]
			layer++
		}
		out = append(out, it)
	}
	// Newest first; the top line is the image.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = img.RepoTags
	}
	return out, nil
}

// ImageUsage is one image's line in docker system df -v.
type ImageUsage struct {
	ID         string
	RepoTags   []string
	Created    time.Time
	Size       int64 // all its layers
	SharedSize int64 // of layers other images use too
	Containers int
}

// DiskUsage reports every image's size and the part it shares.
func (s *Store) DiskUsage(ctx context.Context) ([]ImageUsage, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	users := map[string]int{}   // chain ID → images using the layer
	sizes := map[string]int64{} // chain ID → unpacked size
	ctrs := map[string]int{}    // image ID → containers
	err = s.db.View(func(tx *metadata.Tx) error {
		for _, img := range imgs {
			for _, c := range img.ChainIDs {
				users[c.String()]++
				if _, ok := sizes[c.String()]; !ok {
					l, err := tx.Layer(c)
					if err != nil {
						return err
					}
					sizes[c.String()] = l.UnpackedSize
				}
			}
		}
		cs, err := tx.Containers()
		for _, c := range cs {
			ctrs[c.Image.String()]++
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []ImageUsage
	for _, img := range imgs {
		u := ImageUsage{ID: img.ID.String(), RepoTags: img.RepoTags, Created: img.Created, Size: img.Size, Containers: ctrs[img.ID.String()]}
		for _, c := range img.ChainIDs {
			if users[c.String()] > 1 {
				u.SharedSize += sizes[c.String()]
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// ContainerIDs lists the containers that have a file system.
func (s *Store) ContainerIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *metadata.Tx) error {
		cs, err := tx.Containers()
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return err
	})
	return ids, err
}

package image

import (
	"context"

	"berth.dev/berth/content"
	"fmt"
	"sort"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/metadata"
	digest "github.com/opencontainers/go-digest"
)

// DeleteItem is one line of docker's rmi output: a reference untagged or
// an image deleted.
type DeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// Remove is docker's rmi. A reference is untagged, and the image goes with
// its last reference. An image ID removes the image with all its
// references, which needs force when they span repositories. An image a
// container uses needs force; with force, a stopped container's image is
// deleted (the container keeps its layers) while a running container's, or
// one with child images, is only untagged when named by reference and
// refused when named by ID. Parents left untagged and unused go too, unless
// noPrune.
func (s *Store) Remove(ctx context.Context, name string, force, noPrune bool) ([]DeleteItem, error) {
	var items []DeleteItem
	err := s.db.Update(func(tx *metadata.Tx) error {
		id, ref, err := resolve(tx, name)
		if err != nil {
			return err
		}
		refs, err := tx.RefsOf(id)
		if err != nil {
			return err
		}
		users, err := s.usersOf(tx, id)
		if err != nil {
			return err
		}
		byRef := ref != ""
		if len(users) > 0 && !force {
			if byRef && len(refs) == 1 {
				return errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, shortCtr(users[0]), ShortID(id))
			}
			if !byRef {
				return errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", ShortID(id), shortCtr(users[0]))
			}
		}
		if !byRef && len(repos(refs)) > 1 && !force {
			return errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", ShortID(id))
		}
		children, err := childrenOf(tx, id)
		if err != nil {
			return err
		}
		// What even force cannot do.
		var hard string
		switch {
		case s.anyRunning(users):
			hard = "image is being used by running container " + shortCtr(users[0])
		case len(children) > 0:
			hard = "image has dependent child images"
		}
		if hard != "" && !byRef {
			return errdefs.Conflict("conflict: unable to delete %s (cannot be forced) - %s", ShortID(id), hard)
		}
		untag := refs
		if byRef {
			untag = sameRepoDigests(ref, refs)
		}
		for _, r := range untag {
			if err := tx.DeleteRef(r); err != nil {
				return err
			}
			items = append(items, DeleteItem{Untagged: Familiar(r)})
		}
		if (byRef && len(refs) > len(untag)) || hard != "" {
			return nil
		}
		del, err := s.deleteChain(tx, id, noPrune)
		items = append(items, del...)
		return err
	})
	if err != nil {
		return nil, err
	}
	_, _ = s.db.GC()
	return items, nil
}

// sameRepoDigests is what untagging ref removes, of an image's refs: ref,
// and when ref was its repository's last tag, the repository's digest
// references (pull records them) too, as docker does.
func sameRepoDigests(ref string, refs []string) []string {
	out := []string{ref}
	if _, isDigest := digestOf(ref); isDigest {
		return out
	}
	name := refRepo(ref)
	var digests []string
	for _, r := range refs {
		if r == ref || refRepo(r) != name {
			continue
		}
		if _, isDigest := digestOf(r); !isDigest {
			return out // another tag of the repository stays
		}
		digests = append(digests, r)
	}
	return append(out, digests...)
}

// deleteChain deletes image id and then, unless noPrune, each parent that
// is left untagged, unused and childless.
func (s *Store) deleteChain(tx *metadata.Tx, id digest.Digest, noPrune bool) ([]DeleteItem, error) {
	var items []DeleteItem
	for id != "" {
		img, err := tx.Image(id)
		if err != nil {
			return items, err
		}
		if err := tx.DeleteImage(id); err != nil {
			return items, err
		}
		items = append(items, DeleteItem{Deleted: id.String()})
		if noPrune || img.Parent == "" {
			break
		}
		id = img.Parent
		if ok, err := s.removable(tx, id); err != nil || !ok {
			return items, err
		}
	}
	return items, nil
}

// removable: no references, no containers, no children.
func (s *Store) removable(tx *metadata.Tx, id digest.Digest) (bool, error) {
	if _, err := tx.Image(id); err != nil {
		return false, nil
	}
	refs, err := tx.RefsOf(id)
	if err != nil || len(refs) > 0 {
		return false, err
	}
	users, err := s.usersOf(tx, id)
	if err != nil || len(users) > 0 {
		return false, err
	}
	children, err := childrenOf(tx, id)
	return len(children) == 0, err
}

func (s *Store) usersOf(tx *metadata.Tx, id digest.Digest) ([]string, error) {
	ctrs, err := tx.Containers()
	var out []string
	for _, c := range ctrs {
		if c.Image == id {
			out = append(out, c.ID)
		}
	}
	sort.Strings(out)
	return out, err
}

func (s *Store) anyRunning(ids []string) bool {
	if s.Running == nil {
		return false
	}
	for _, id := range ids {
		if s.Running(id) {
			return true
		}
	}
	return false
}

func childrenOf(tx *metadata.Tx, id digest.Digest) ([]digest.Digest, error) {
	imgs, err := tx.Images()
	var out []digest.Digest
	for _, img := range imgs {
		if img.Parent == id {
			out = append(out, img.ID)
		}
	}
	return out, err
}

func repos(refs []string) map[string]bool {
	out := map[string]bool{}
	for _, r := range refs {
		out[refRepo(r)] = true
	}
	return out
}

func shortCtr(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// PruneReport is what a prune removed.
type PruneReport struct {
	Deleted        []DeleteItem
	SpaceReclaimed int64
}

// Prune removes dangling images (no references), or with all every image
// no container uses; images with children stay.
func (s *Store) Prune(ctx context.Context, all bool) (PruneReport, error) {
	var rep PruneReport
	err := s.db.Update(func(tx *metadata.Tx) error {
		// Repeat: removing a child can free its parent.
		for changed := true; changed; {
			changed = false
			imgs, err := tx.Images()
			if err != nil {
				return err
			}
			for _, img := range imgs {
				refs, err := tx.RefsOf(img.ID)
				if err != nil {
					return err
				}
				if len(refs) > 0 && !all {
					continue
				}
				users, err := s.usersOf(tx, img.ID)
				if err != nil {
					return err
				}
				children, err := childrenOf(tx, img.ID)
				if err != nil {
					return err
				}
				if len(users) > 0 || len(children) > 0 {
					continue
				}
				for _, r := range refs {
					if err := tx.DeleteRef(r); err != nil {
						return err
					}
					rep.Deleted = append(rep.Deleted, DeleteItem{Untagged: Familiar(r)})
				}
				if err := tx.DeleteImage(img.ID); err != nil {
					return err
				}
				rep.Deleted = append(rep.Deleted, DeleteItem{Deleted: img.ID.String()})
				changed = true
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	before, _ := s.diskBytes(ctx)
	_, gcErr := s.db.GC()
	after, _ := s.diskBytes(ctx)
	rep.SpaceReclaimed = before - after
	return rep, gcErr
}

// diskBytes is the unpacked size of every layer plus every blob.
func (s *Store) diskBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.View(func(tx *metadata.Tx) error {
		layers, err := tx.Layers()
		for _, l := range layers {
			n += l.UnpackedSize
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	err = s.cs.Walk(ctx, func(i content.Info) error { n += i.Size; return nil })
	return n, err
}

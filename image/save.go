package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/image/reference"
	"berth.dev/berth/metadata"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Save writes the images refs name as one tarball that is both a
// docker-archive (manifest.json, repositories) and an OCI image layout
// (oci-layout, index.json, blobs/), as docker 25+ writes it. A reference
// saves that tag; an image ID saves the image with all its tags. Blobs are
// the ones the store holds, so digests and diff IDs do not change.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string) error {
	if len(refs) == 0 {
		return errdefs.Invalid("save: no images named")
	}
	type saved struct {
		img  metadata.Image
		tags []string // normalized name:tag
	}
	var order []digest.Digest
	byID := map[digest.Digest]*saved{}
	err := s.db.View(func(tx *metadata.Tx) error {
		for _, r := range refs {
			id, ref, err := resolve(tx, r)
			if errdefs.Is(err, errdefs.KindNotFound) {
				return errdefs.NotFound("No such image: %s", r) // save names it as given, as dockerd
			}
			if err != nil {
				return err
			}
			sv := byID[id]
			if sv == nil {
				img, err := tx.Image(id)
				if err != nil {
					return err
				}
				sv = &saved{img: img}
				byID[id] = sv
				order = append(order, id)
			}
			var tags []string
			if ref != "" {
				tags = []string{ref}
			} else if tags, err = tx.RefsOf(id); err != nil {
				return err
			}
			for _, t := range tags {
				if _, isDigest := digestOf(t); !isDigest && !contains(sv.tags, t) {
					sv.tags = append(sv.tags, t)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}

	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: saveTime, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	var manifests []dockerManifest
	repositories := map[string]map[string]string{}
	for _, id := range order {
		sv := byID[id]
		if len(sv.img.Manifests) == 0 {
			return fmt.Errorf("save: image %s has no manifest", ShortID(id))
		}
		md := sv.img.Manifests[0]
		var m ocispec.Manifest
		if err := s.readJSON(ctx, md, "manifest", &m); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		for _, d := range append([]ocispec.Descriptor{md, m.Config}, m.Layers...) {
			if err := s.writeBlob(ctx, tw, d.Digest, written); err != nil {
				return fmt.Errorf("save: %w", err)
			}
		}
		dm := dockerManifest{Config: blobPath(m.Config.Digest)}
		for _, l := range m.Layers {
			dm.Layers = append(dm.Layers, blobPath(l.Digest))
		}
		if len(sv.tags) == 0 {
			index.Manifests = append(index.Manifests, md)
		}
		for _, t := range sv.tags {
			named, _ := reference.ParseNormalizedNamed(t)
			d := md
			d.Annotations = map[string]string{annotationImageName: t}
			if named.Tag != "" {
				d.Annotations[ocispec.AnnotationRefName] = named.Tag
				fam := named.FamiliarName()
				if repositories[fam] == nil {
					repositories[fam] = map[string]string{}
				}
				if n := len(m.Layers); n > 0 {
					repositories[fam][named.Tag] = m.Layers[n-1].Digest.Encoded()
				}
			}
			index.Manifests = append(index.Manifests, d)
			dm.RepoTags = append(dm.RepoTags, Familiar(t))
		}
		manifests = append(manifests, dm)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{ocispec.ImageIndexFile, index},
		{"manifest.json", manifests},
		{"repositories", repositories},
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
	} {
		if f.name == "repositories" && len(repositories) == 0 {
			continue
		}
		raw, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, f.name, int64(len(raw)), func(w io.Writer) error {
			_, err := w.Write(raw)
			return err
		}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	return errWrap("save", tw.Close())
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// saveTime stamps the entries of a saved archive: a fixed time keeps two
// saves of the same images byte-identical.
var saveTime = time.Unix(0, 0).UTC()

func (s *Store) writeBlob(ctx context.Context, tw *tar.Writer, d digest.Digest, written map[digest.Digest]bool) error {
	if written[d] {
		return nil
	}
	written[d] = true
	f, err := s.cs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return writeTarFile(tw, blobPath(d), info.Size(), func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

func writeTarFile(tw *tar.Writer, name string, size int64, body func(io.Writer) error) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o444, ModTime: saveTime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	return body(tw)
}

package image

import (
	"fmt"
	"strings"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/image/reference"
	"berth.dev/berth/metadata"
	digest "github.com/opencontainers/go-digest"
)

// ParseRef normalizes a reference as docker does: "busybox" is
// "docker.io/library/busybox:latest"; a digest reference keeps its digest
// and gets no tag.
func ParseRef(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		// The library's words, as dockerd says them; dockerd 20.10's
		// library did not name the repository in the uppercase case.
		msg := err.Error()
		if pre, rest, ok := strings.Cut(msg, "repository name ("); ok {
			if _, post, ok := strings.Cut(rest, ") must be lowercase"); ok {
				msg = pre + "repository name must be lowercase" + post
			}
		}
		return reference.Named{}, errdefs.Invalid("%s", msg)
	}
	return named.TagNameOnly(), nil
}

// Familiar is how docker shows a normalized reference ("busybox:latest").
func Familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return named.FamiliarString()
}

// resolve finds the image s names: a reference, a full image ID
// ("sha256:<hex>" or "<hex>"), or a unique prefix of one. Like docker, a
// string that parses as a reference and has one wins over an ID prefix.
// ref is the normalized reference when s was one.
func resolve(tx *metadata.Tx, s string) (id digest.Digest, ref string, err error) {
	if s == "" {
		return "", "", errdefs.Invalid("empty image reference")
	}
	if named, perr := ParseRef(s); perr == nil {
		ref = named.String()
		if id, err := tx.Ref(ref); err == nil {
			return id, ref, nil
		}
	}
	hex := strings.TrimPrefix(s, "sha256:")
	if len(hex) > 0 && len(hex) <= 64 && isHex(hex) {
		imgs, err := tx.Images()
		if err != nil {
			return "", "", err
		}
		var found []digest.Digest
		for _, img := range imgs {
			if strings.HasPrefix(img.ID.Encoded(), hex) {
				found = append(found, img.ID)
			}
		}
		switch len(found) {
		case 1:
			return found[0], "", nil
		case 0:
		default:
			return "", "", errdefs.Invalid("image ID prefix %q is ambiguous: %d images match", s, len(found))
		}
	}
	if ref == "" {
		if _, perr := ParseRef(s); perr != nil {
			return "", "", perr
		}
	}
	if ref != "" {
		s = Familiar(ref) // dockerd names what it looked for: "nosuch:latest"
	}
	return "", "", errdefs.NotFound("No such image: %s", s)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ShortID is docker's 12-hex form of an image ID.
func ShortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

func refRepo(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return named.Name()
}

func errWrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

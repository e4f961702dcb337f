package content

import (
	"errors"
	"strings"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

// ErrUnsupportedAlgorithm is wrapped by the error for a well-formed digest of
// an algorithm the store does not keep (only sha256 is written).
var ErrUnsupportedAlgorithm = errors.New("unsupported digest algorithm")

// checkDigest accepts only canonical sha256 digests: "sha256:" and 64
// lowercase hex characters. Everything a digest becomes on disk is that hex,
// so nothing else (separators, dots, other algorithms) can reach a path.
func checkDigest(dgst digest.Digest) error {
	alg, hex, ok := strings.Cut(string(dgst), ":")
	if !ok {
		return errdefs.Invalid("malformed digest %q: no algorithm", string(dgst))
	}
	if alg != string(digest.SHA256) {
		// A well-formed digest of another algorithm (a sha512 one, or one
		// go-digest does not know but whose grammar it accepts) is
		// "unsupported"; anything else is malformed.
		err := digest.Algorithm(alg).Validate(hex)
		if err == nil || (errors.Is(err, digest.ErrDigestUnsupported) && digest.DigestRegexpAnchored.MatchString(string(dgst))) {
			return errdefs.Invalid("digest %q: %w %q (only sha256)", string(dgst), ErrUnsupportedAlgorithm, alg)
		}
		return errdefs.Invalid("malformed digest %q: %w", string(dgst), err)
	}
	if err := dgst.Validate(); err != nil {
		return errdefs.Invalid("malformed digest %q: %w", string(dgst), err)
	}
	if len(hex) != 64 {
		return errdefs.Invalid("malformed digest %q: want 64 hex characters", string(dgst))
	}
	return nil
}

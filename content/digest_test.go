package content

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

var canonical = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Whatever the string, checkDigest accepts exactly the canonical sha256
// form, so an accepted digest is always one plain file name in blobs/.
func FuzzCheckDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:" + strings.Repeat("0", 64), "sha256:../../etc", "sha512:" + strings.Repeat("a", 128),
		"sha256:" + strings.Repeat("A", 64), "", ":", "sha256:" + strings.Repeat("a", 63) + "/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkDigest(digest.Digest(s))
		if (err == nil) != canonical.MatchString(s) {
			t.Fatalf("%q: accepted=%v", s, err == nil)
		}
		if err != nil {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("%q: %v is not invalid", s, err)
			}
			return
		}
		p := filepath.Join("/store/blobs/sha256", digest.Digest(s).Encoded())
		if filepath.Dir(p) != "/store/blobs/sha256" {
			t.Fatalf("%q escapes to %s", s, p)
		}
	})
}

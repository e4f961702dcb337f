package reference

import (
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	distref "github.com/distribution/reference"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// corpus: names docker accepts and ones it refuses, each for a reason.
var corpus = []string{
	"", "busybox", "busybox:latest", "busybox:1.36", "library/busybox", "docker.io/busybox",
	"docker.io/library/busybox:latest", "index.docker.io/busybox", "index.docker.io/foo/bar",
	"user/repo", "user/repo:tag", "a/b/c/d", "localhost/foo", "localhost:5000/foo:bar",
	"registry.example.com/x/y:v1.2.3", "registry.example.com:443/x", "Registry.Example.com/x",
	"Foo/bar", "foo/Bar", "FOO", "foo:TAG", "foo:Tag_1.0-rc", "foo:" + strings.Repeat("t", 128),
	"foo:" + strings.Repeat("t", 129), "foo:", ":tag", "foo::tag", "foo:-tag", "foo:.tag", "foo:_tag",
	"a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b", "a---b", "a._b", "-a", "a-", "_a", "a_", ".a",
	"a.b.c/d", "a_b.com/foo", "a_b:5000/foo", "a-b.com/foo", "-a.com/foo", "a-.com/foo", "a.com-/x",
	"[::1]/foo", "[::1]:5000/foo:tag", "[fe80::1%25eth0]/foo", "[]/foo", "[::1]:/foo", "[::g]/foo",
	"foo:5000", "host:port/foo", "host:123:456/foo", "host/", "/foo", "foo//bar", "foo/", "foo bar",
	"foo@sha256:" + strings.Repeat("a", 64), "foo:tag@sha256:" + strings.Repeat("b", 64),
	"foo@sha256:" + strings.Repeat("A", 64), "foo@sha256:" + strings.Repeat("a", 63),
	"foo@sha256:" + strings.Repeat("a", 31), "foo@md5:" + strings.Repeat("a", 32),
	"foo@sha512:" + strings.Repeat("c", 128), "foo@sha256+b64u:" + strings.Repeat("a", 40),
	"foo@a.b-c_d+e:" + strings.Repeat("f", 32), "foo@1sha:" + strings.Repeat("f", 32), "foo@sha-:" + strings.Repeat("f", 32),
	"foo@", "foo@bar", "@sha256:" + strings.Repeat("a", 64),
	strings.Repeat("a", 64), strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 65),
	"sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 10),
	"docker.io/" + strings.Repeat("a", 255), "docker.io/a/" + strings.Repeat("a", 254), strings.Repeat("a", 250),
	"Ünïcode", "foo/bär", "foo\x00bar", "foo/bar:tag/x", "foo@sha256:abc:def",
}

// TestSameAsDistribution compares every corpus entry with the parser docker
// itself uses: same error text, or the same parts and strings.
func TestSameAsDistribution(t *testing.T) {
	for _, s := range corpus {
		compareNormalized(t, s)
		compareAny(t, s)
	}
}

func compareNormalized(t *testing.T, s string) {
	t.Helper()
	got, err := ParseNormalizedNamed(s)
	want, werr := distref.ParseNormalizedNamed(s)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Errorf("ParseNormalizedNamed(%q): error %v, distribution's %v", s, err, werr)
		return
	}
	if err != nil {
		return
	}
	var tag, dg string
	if tg, ok := want.(distref.Tagged); ok {
		tag = tg.Tag()
	}
	if d, ok := want.(distref.Digested); ok {
		dg = d.Digest().String()
	}
	if got.Domain != distref.Domain(want) || got.Path != distref.Path(want) || got.Tag != tag || got.Digest.String() != dg {
		t.Errorf("ParseNormalizedNamed(%q) = %+v, distribution's %q %q %q %q", s, got, distref.Domain(want), distref.Path(want), tag, dg)
	}
	if got.String() != want.String() || got.Name() != want.Name() || got.FamiliarName() != distref.FamiliarName(want) ||
		got.FamiliarString() != distref.FamiliarString(want) ||
		got.TagNameOnly().String() != distref.TagNameOnly(want).String() {
		t.Errorf("%q: strings %q %q %q %q, distribution's %q %q %q %q", s, got.String(), got.Name(), got.FamiliarName(), got.FamiliarString(),
			want.String(), want.Name(), distref.FamiliarName(want), distref.FamiliarString(want))
	}
}

func compareAny(t *testing.T, s string) {
	t.Helper()
	got, err := ParseAny(s)
	want, werr := distref.ParseAnyReference(s)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Errorf("ParseAny(%q): error %v, distribution's %v", s, err, werr)
		return
	}
	if err == nil && (got.String() != want.String() || got.FamiliarString() != distref.FamiliarString(want)) {
		t.Errorf("ParseAny(%q) = %q (%q), distribution's %q (%q)", s, got.String(), got.FamiliarString(), want.String(), distref.FamiliarString(want))
	}
}

// FuzzSameAsDistribution: go test -fuzz=FuzzSameAsDistribution ./image/reference
func FuzzSameAsDistribution(f *testing.F) {
	for _, s := range corpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		compareNormalized(t, s)
		compareAny(t, s)
	})
}

package lazyregexp

import (
	"slices"
	"testing"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestLazy(t *testing.T) {
	r := New(`^/v([0-9.]+)(/.*)$`)
	if !r.MatchString("/v1.41/info") || r.MatchString("/info") {
		t.Error("MatchString")
	}
	if m := r.FindStringSubmatch("/v1.41/info"); !slices.Equal(m, []string{"/v1.41/info", "1.41", "/info"}) {
		t.Errorf("FindStringSubmatch = %q", m)
	}
	if m := New(`a(b)?`).FindAllStringSubmatchIndex("ab a", -1); len(m) != 2 || m[0][3] != 2 || m[1][2] != -1 {
		t.Errorf("FindAllStringSubmatchIndex = %v", m)
	}
	if first, again := r.Regexp(), r.Regexp(); first != again {
		t.Error("compiled twice")
	}
}

func TestBadPatternPanicsOnUse(t *testing.T) {
	r := New(`(`) // no panic here: nothing is compiled yet
	defer func() {
		if recover() == nil {
			t.Error("a bad pattern did not panic on first use")
		}
	}()
	r.MatchString("x")
}

package filters

import (
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestParseBothForms(t *testing.T) {
	for _, s := range []string{`{"dangling":{"true":true},"label":{"a=b":true}}`, `{"dangling":["true"],"label":["a=b"]}`} {
		a, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if v, set, err := a.Bool("dangling"); !v || !set || err != nil {
			t.Fatalf("%s: dangling %v %v %v", s, v, set, err)
		}
		if !a.MatchLabels("label", map[string]string{"a": "b"}) || a.MatchLabels("label", map[string]string{"a": "c"}) {
			t.Fatalf("%s: labels", s)
		}
	}
	if _, err := Parse(`{"dangling":`); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("malformed: %v", err)
	}
	a, _ := Parse(`{"nosuch":{"x":true}}`)
	if err := a.Validate("dangling"); !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != "invalid filter 'nosuch'" {
		t.Fatalf("validate: %v", err)
	}
	a, _ = Parse(`{"dangling":{"maybe":true}}`)
	if _, _, err := a.Bool("dangling"); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("bad bool: %v", err)
	}
}

func TestMatchPattern(t *testing.T) {
	a, _ := Parse(`{"reference":{"example.com/*/*":true}}`)
	if !a.MatchPattern("reference", "example.com/team/bb") || a.MatchPattern("reference", "example.com/bb") {
		t.Fatal("pattern")
	}
	if !a.Match("absent", "x") || a.Match("reference", "x") {
		t.Fatal("Match")
	}
}

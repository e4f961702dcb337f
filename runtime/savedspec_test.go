package runtime

import (
	"testing"
)

// TestSavedSpecRelativeRoot checks that the state keeps config.json's own
// bytes and that a later process reading them gets the root made absolute
// against the bundle, as create used it.
func TestSavedSpecRelativeRoot(t *testing.T) {
	raw := []byte(`{"ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": true}, "linux": {}}`)
	got, err := savedSpec(nil, &SpecFile{raw: raw})
	if err != nil || string(got) != string(raw) {
		t.Fatalf("savedSpec = %q, %v; want config.json's bytes", got, err)
	}
	c := &Container{Saved: Saved{Bundle: "/srv/bundle", Spec: got}}
	s, err := c.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/srv/bundle/rootfs" || !s.Root.Readonly {
		t.Fatalf("root = %+v, want /srv/bundle/rootfs, read-only", s.Root)
	}
	// An absolute root stays as given.
	c = &Container{Saved: Saved{Bundle: "/srv/bundle", Spec: []byte(`{"root":{"path":"/elsewhere/r"}}`)}}
	if s, err = c.Spec(); err != nil || s.Root.Path != "/elsewhere/r" {
		t.Fatalf("absolute root = %+v, %v", s.Root, err)
	}
}

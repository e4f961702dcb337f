package container

import (
	"testing"
	"time"
)

// TestStoreSharedNameNewerWins: two records with one name (a daemon died
// while an --rm container's files were going and a new container had
// taken its name) load with the name on the newer, whichever is read
// first; the older's removal leaves the name to the newer.
func TestStoreSharedNameNewerWins(t *testing.T) {
	for _, ids := range [][2]string{{"aaaa", "bbbb"}, {"bbbb", "aaaa"}} { // [older, newer], both read orders
		root := t.TempDir()
		s, _, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		old, err := s.New(ids[0], "shared")
		if err != nil {
			t.Fatal(err)
		}
		old.Created = time.Now().Add(-time.Minute)
		if err := old.Save(); err != nil {
			t.Fatal(err)
		}
		s.Forget(old) // gone for the API, its record still on disk
		if _, err := s.Get("shared"); err == nil {
			t.Fatal("name still taken after Forget")
		}
		newer, err := s.New(ids[1], "shared")
		if err != nil {
			t.Fatalf("name not free after Forget: %v", err)
		}
		newer.Created = time.Now()
		if err := newer.Save(); err != nil {
			t.Fatal(err)
		}

		s, bad, err := Open(root)
		if err != nil || len(bad) > 0 {
			t.Fatal(err, bad)
		}
		if c, err := s.Get("shared"); err != nil || c.ID != ids[1] {
			t.Fatalf("%v: shared is %v (%v), want the newer %s", ids, c, err, ids[1])
		}
		o, _ := s.Get(ids[0])
		if err := s.Delete(o); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Get("shared"); err != nil || c.ID != ids[1] {
			t.Fatalf("%v: after the older's removal shared is %v (%v)", ids, c, err)
		}
	}
}

package events

import (
	"testing"
	"time"

	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/internal/leakcheck"
	"github.com/moby/moby/api/types/events"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestBusSinceAndLive(t *testing.T) {
	b := New()
	b.Publish(events.ImageEventType, events.ActionLoad, "sha256:aa", map[string]string{"name": "busybox:latest"})
	mid := time.Now()
	time.Sleep(time.Millisecond)
	b.Publish(events.ImageEventType, events.ActionTag, "sha256:aa", map[string]string{"name": "bb:1"})
	past, ch, cancel := b.Subscribe(mid)
	if len(past) != 1 || past[0].Action != events.ActionTag {
		t.Fatalf("since: %+v", past)
	}
	if b.Listeners() != 1 {
		t.Fatalf("listeners %d", b.Listeners())
	}
	b.Publish(events.ImageEventType, events.ActionUnTag, "sha256:aa", map[string]string{"name": "bb:1"})
	if m := <-ch; m.Action != events.ActionUnTag || m.Scope != "local" || m.TimeNano == 0 {
		t.Fatalf("live: %+v", m)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	_, ch, _ = b.Subscribe(time.Time{})
	b.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
}

func TestRingKeepsNewest(t *testing.T) {
	b := New()
	for i := 0; i < ringSize+10; i++ {
		b.Publish(events.ImageEventType, events.ActionTag, "x", map[string]string{"i": string(rune('a' + i%26))})
	}
	past, _, cancel := b.Subscribe(time.Unix(1, 0))
	defer cancel()
	if len(past) != ringSize {
		t.Fatalf("ring holds %d", len(past))
	}
	for i := 1; i < len(past); i++ {
		if past[i].TimeNano < past[i-1].TimeNano {
			t.Fatal("ring out of order")
		}
	}
}

func TestMatch(t *testing.T) {
	tag := events.Message{Type: events.ImageEventType, Action: events.ActionTag,
		Actor: events.Actor{ID: "sha256:abcdef0123", Attributes: map[string]string{"name": "busybox:latest", "team": "blue"}}}
	for f, want := range map[string]bool{
		``:                                  true,
		`{"type":{"image":true}}`:           true,
		`{"type":{"container":true}}`:       false,
		`{"event":{"tag":true}}`:            true,
		`{"action":{"untag":true}}`:         false,
		`{"image":{"busybox":true}}`:        true,
		`{"image":{"busybox:latest":true}}`: true,
		`{"image":{"abcdef":true}}`:         true,
		`{"image":{"alpine":true}}`:         false,
		`{"label":{"team=blue":true}}`:      true,
		`{"label":{"team=red":true}}`:       false,
		`{"container":{"x":true}}`:          false,
	} {
		args, err := filters.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := Match(args, tag); got != want {
			t.Errorf("Match(%s) = %v, want %v", f, got, want)
		}
	}
}

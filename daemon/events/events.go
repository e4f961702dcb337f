// Package events is the daemon's event bus: every published event goes to
// the current subscribers and into a ring of recent events, so that a
// client asking for events since a past time gets them too.
package events

import (
	"strings"
	"sync"
	"time"

	"berth.dev/berth/daemon/filters"
	"github.com/moby/moby/api/types/events"
)

// ringSize is how many past events `since` can reach (dockerd keeps 256).
const ringSize = 1024

// Bus fans events out to subscribers.
type Bus struct {
	mu     sync.Mutex
	ring   []events.Message
	next   int // where the next event goes in ring once it is full
	subs   map[chan events.Message]struct{}
	closed bool
	done   chan struct{} // closed by Close
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[chan events.Message]struct{}{}, done: make(chan struct{})} }

// Done is closed when the bus is (the daemon's shutdown): other streams
// (stats) end with it too.
func (b *Bus) Done() <-chan struct{} { return b.done }

// Publish records an event of type typ for actor id.
func (b *Bus) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < ringSize {
		b.ring = append(b.ring, m)
	} else {
		b.ring[b.next] = m
		b.next = (b.next + 1) % ringSize
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default: // a subscriber that does not read loses events rather than stalling the daemon
		}
	}
}

// Subscribe returns the recorded events at or after since (zero: none) and
// a channel of the ones to come, closed by cancel or Close.
func (b *Bus) Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func()) {
	c := make(chan events.Message, 256)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !since.IsZero() {
		for i := range b.ring {
			m := b.ring[(b.next+i)%len(b.ring)]
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	if b.closed {
		close(c)
		return past, c, func() {}
	}
	b.subs[c] = struct{}{}
	var once sync.Once
	return past, c, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[c]; ok {
				delete(b.subs, c)
				close(c)
			}
		})
	}
}

// Listeners is the number of current subscribers (docker info's NEventsListener).
func (b *Bus) Listeners() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription (at shutdown, so streams finish).
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		close(b.done)
	}
	b.closed = true
	for c := range b.subs {
		close(c)
		delete(b.subs, c)
	}
}

// Match reports whether m passes the filters type, event/action, image,
// label and the per-type ones (container, volume, network, daemon).
func Match(f filters.Args, m events.Message) bool {
	if !f.Match("type", string(m.Type)) {
		return false
	}
	if f.Has("event") || f.Has("action") {
		a := string(m.Action)
		// "exec_start: sh" and "health_status: healthy" match their prefix.
		base, _, _ := strings.Cut(a, ":")
		if !f["event"][a] && !f["event"][base] && !f["action"][a] && !f["action"][base] {
			return false
		}
	}
	if !f.MatchLabels("label", m.Actor.Attributes) {
		return false
	}
	if f.Has("image") {
		if !matchImage(f, m) {
			return false
		}
	}
	for _, k := range []string{"container", "volume", "network", "daemon"} {
		if f.Has(k) && (string(m.Type) != k || !matchActor(f[k], m)) {
			return false
		}
	}
	return true
}

func matchActor(vals map[string]bool, m events.Message) bool {
	return vals[m.Actor.ID] || vals[m.Actor.Attributes["name"]]
}

// matchImage matches an image filter against the image an event is about:
// its ID (or a prefix), its name with or without ":latest".
func matchImage(f filters.Args, m events.Message) bool {
	var cands []string
	switch m.Type {
	case events.ImageEventType:
		cands = append(cands, m.Actor.ID, m.Actor.Attributes["name"])
	case events.ContainerEventType:
		cands = append(cands, m.Actor.Attributes["image"])
	default:
		return false
	}
	for v := range f["image"] {
		for _, c := range cands {
			if c == "" {
				continue
			}
			if c == v || strings.TrimSuffix(c, ":latest") == strings.TrimSuffix(v, ":latest") ||
				(len(v) >= 4 && strings.HasPrefix(strings.TrimPrefix(c, "sha256:"), strings.TrimPrefix(v, "sha256:"))) {
				return true
			}
		}
	}
	return false
}

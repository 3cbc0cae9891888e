package routing

import (
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

// TestAvailability_Records: routing keeps each queue's availability in the
// records chat channels read (the default queue's also under "default"), and
// announces a change, not a repeat: agents going away, the queue closing.
func TestAvailability_Records(t *testing.T) {
	h := newHarness(t, Config{
		DefaultQueue: "general",
		Hours:        map[string]Hours{"office": {TimeZone: "UTC", Weekdays: "09:00-18:00"}},
		Queues: map[string]Queue{
			"general": {Agents: []string{"slack:UANN", "slack:UBOB"}, Hours: "office", DefaultWait: 7 * time.Minute},
			"empty":   {},
		},
	})
	recs := h.st.Records(event.AvailabilityRecords)
	get := func(key string) event.Availability {
		t.Helper()
		var a event.Availability
		if _, err := recs.Get(h.ctx, key, &a); err != nil {
			t.Fatalf("record %s: %v", key, err)
		}
		return a
	}
	announced := func() []map[string]string {
		var out []map[string]string
		for _, m := range h.published(bus.StreamEvt, bus.SubjectEvt(event.QueueAvailability)) {
			out = append(out, m.Meta)
		}
		return out
	}

	h.r.PublishAvailability(h.ctx)
	a := get(event.AvailabilityKey("general"))
	if !a.Online() || a.Agents != 2 || a.Available != 2 || !a.Open || a.ExpectedWait != 7*time.Minute || !a.NextOpen.IsZero() {
		t.Fatalf("open queue with two agents: %+v", a)
	}
	if d := get(event.AvailabilityDefault); !d.Same(a) {
		t.Errorf("default copy %+v, want %+v", d, a)
	}
	if e := get(event.AvailabilityKey("empty")); e.Online() || e.Agents != 0 || !e.Open {
		t.Errorf("queue without agents: %+v", e)
	}
	if n := len(announced()); n != 2 {
		t.Fatalf("%d announcements at start, want one per queue", n)
	}

	// Nothing changed: nothing announced.
	h.r.PublishAvailability(h.ctx)
	if n := len(announced()); n != 2 {
		t.Fatalf("%d announcements after a repeat", n)
	}

	for _, agent := range []string{"slack:UANN", "slack:UBOB"} {
		if err := h.r.SetAvailability(h.ctx, agent, false); err != nil {
			t.Fatal(err)
		}
	}
	h.r.PublishAvailability(h.ctx)
	if a := get(event.AvailabilityKey("general")); a.Online() || a.Available != 0 || !a.Open {
		t.Fatalf("everyone away: %+v", a)
	}
	if err := h.r.SetAvailability(h.ctx, "slack:UBOB", true); err != nil {
		t.Fatal(err)
	}
	h.advance(10 * time.Hour) // 19:00 on Monday: closed until Tuesday 09:00
	h.r.PublishAvailability(h.ctx)
	a = get(event.AvailabilityKey("general"))
	if a.Online() || a.Open || a.Available != 1 || !a.NextOpen.Equal(time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("closed: %+v", a)
	}
	evs := announced()
	last := evs[len(evs)-1]
	if len(evs) != 4 || last[event.MetaQueue] != "general" || last[event.MetaOpen] != "false" ||
		last[event.MetaAgentsAvailable] != "1" || last[event.MetaNextOpen] != "2025-03-04T09:00:00Z" || last[event.MetaExpectedWait] != "420" {
		t.Errorf("announcements %v", evs)
	}
}

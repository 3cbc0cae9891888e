package adapters_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

func TestRoutes_Prefix(t *testing.T) {
	mux := http.NewServeMux()
	r := adapters.NewRoutes(mux, "sms")
	reply := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s) }
	}
	r.HandleFunc("POST /inbound", reply("inbound"))
	r.HandleFunc("status", reply("status")) // no method, no leading slash
	r.Handle("GET /media/{id}", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, "media "+req.PathValue("id"))
	}))

	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"POST", "/channels/sms/inbound", 200, "inbound"},
		{"GET", "/channels/sms/inbound", 405, ""},
		{"POST", "/inbound", 404, ""},
		{"POST", "/channels/email/inbound", 404, ""},
		{"GET", "/channels/sms/status", 200, "status"},
		{"DELETE", "/channels/sms/status", 200, "status"},
		{"GET", "/channels/sms/media/42", 200, "media 42"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code || (tt.body != "" && rec.Body.String() != tt.body) {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
		}
	}
}

func TestRoutes_URL(t *testing.T) {
	r := adapters.NewRoutes(http.NewServeMux(), "sms")
	for _, tt := range []struct{ base, path, want string }{
		{"https://support.example.com", "inbound", "https://support.example.com/channels/sms/inbound"},
		{"https://support.example.com/", "/inbound", "https://support.example.com/channels/sms/inbound"},
		{"https://example.com/omni", "status/cb", "https://example.com/omni/channels/sms/status/cb"},
	} {
		if got := r.URL(tt.base, tt.path); got != tt.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

func TestPublisher_InboundFills(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	m := &core.Message{From: "sms:+15551234567", Text: "hello", External: core.External{Message: "SM1"}}
	before := time.Now()
	dup, err := env.Deps.Publisher.Inbound(t.Context(), m)
	if err != nil || dup {
		t.Fatalf("Inbound = %v, %v", dup, err)
	}
	if m.V != core.EnvelopeVersion || !core.ValidID(m.ID) || m.Kind != core.KindMessage ||
		m.Direction != core.Inbound || m.Channel != "sms" || m.ReceivedAt.Before(before.Add(-time.Second)) {
		t.Errorf("not filled: %+v", m)
	}
	got := env.Stored(t, bus.StreamIn)
	if len(got) != 1 {
		t.Fatalf("%d stored, want 1", len(got))
	}
	s := got[0]
	if want := bus.SubjectIn("sms", "sms:+15551234567"); s.Subject != want {
		t.Errorf("subject %s, want %s", s.Subject, want)
	}
	if s.MsgID != "sms:SM1" {
		t.Errorf("Nats-Msg-Id %q, want sms:SM1", s.MsgID)
	}
	if s.Err != nil || s.Message.ID != m.ID || s.Message.Text != "hello" {
		t.Errorf("stored %+v (%v)", s.Message, s.Err)
	}
}

func TestPublisher_InboundKeepsSetFields(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	id := core.NewID()
	m := &core.Message{V: 1, ID: id, Kind: core.KindMessage, Direction: core.Inbound, Channel: "sms",
		From: "sms:+1555", ReceivedAt: at, Text: "x"}
	if _, err := env.Deps.Publisher.Inbound(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if m.ID != id || !m.ReceivedAt.Equal(at) {
		t.Errorf("Inbound replaced set fields: id %s received_at %s", m.ID, m.ReceivedAt)
	}
	// Without a provider id, the envelope id deduplicates.
	if s := env.Stored(t, bus.StreamIn); len(s) != 1 || s[0].MsgID != id {
		t.Errorf("stored %+v, want one message with Nats-Msg-Id %s", s, id)
	}
}

func TestPublisher_InboundDuplicate(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	pub := env.Deps.Publisher
	for i, want := range []bool{false, true, true} {
		// A provider retry: a new envelope for the same provider message.
		m := &core.Message{From: "sms:+15551234567", Text: "hi", External: core.External{Message: "SM42"}}
		dup, err := pub.Inbound(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if dup != want {
			t.Errorf("delivery %d: duplicate = %v, want %v", i+1, dup, want)
		}
	}
	if n := env.Count(t, bus.StreamIn); n != 1 {
		t.Errorf("%d stored, want 1", n)
	}
}

func TestPublisher_InboundInvalid(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	tests := []struct {
		name string
		m    *core.Message
	}{
		{"no sender", &core.Message{Text: "hi"}},
		{"sender without channel", &core.Message{From: "+15551234567"}},
		{"control character", &core.Message{From: "sms:+1555\x00"}},
		{"text too long", &core.Message{From: "sms:+1555", Text: string(make([]byte, core.MaxTextBytes+1))}},
		{"bad attachment", &core.Message{From: "sms:+1555", Attachments: []core.Attachment{{Name: "a.png"}}}},
		{"event as message", &core.Message{From: "sms:+1555", Kind: core.KindEvent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dup, err := env.Deps.Publisher.Inbound(t.Context(), tt.m)
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Inbound = %v, %v; want an error matching core.ErrInvalid", dup, err)
			}
		})
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Errorf("%d invalid message(s) published, want none", n)
	}
}

func TestPublisher_Event(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	pub := env.Deps.Publisher
	for range 2 {
		// A provider's status callback, retried: stored once.
		ev := &core.Message{Type: event.DeliveryDelivered, ReplyTo: core.NewID(), External: core.External{Message: "SM1:delivered"}}
		if err := pub.Event(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != core.KindEvent || ev.Channel != "sms" || ev.Direction != core.Inbound {
			t.Errorf("event not filled: %+v", ev)
		}
	}
	got := env.Stored(t, bus.StreamEvt)
	if len(got) != 1 || got[0].Subject != bus.SubjectEvt(event.DeliveryDelivered) {
		t.Fatalf("stored %+v, want one event on %s", got, bus.SubjectEvt(event.DeliveryDelivered))
	}
	if err := pub.Event(t.Context(), &core.Message{}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("Event without type = %v, want core.ErrInvalid", err)
	}
}

func TestDeliveryEvent(t *testing.T) {
	m := core.NewMessage(core.KindMessage, core.Outbound, "sms")
	m.To, m.ContactID, m.ConversationID = "sms:+1555", "c1", "v1"
	ev := adapters.DeliveryEvent(m, event.DeliveryFailed)
	if ev.Kind != core.KindEvent || ev.Type != event.DeliveryFailed || ev.Direction != core.Outbound ||
		ev.Channel != "sms" || ev.To != m.To || ev.ContactID != "c1" || ev.ConversationID != "v1" || ev.ReplyTo != m.ID {
		t.Errorf("DeliveryEvent = %+v", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Error(err)
	}
}

package tickets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/tickets"
	"github.com/omnigate/omnigate/tickets/webhook"
)

const hookSecret = "whsec_test"

// receiver is a tracker's webhook endpoint: it checks signatures as the
// protocol says and answers what answer says.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	deliveries []delivery
	// answer returns the status and body for a delivery; nil answers 200 {}.
	answer func(d delivery, attempt int) (int, string, http.Header)
}

type delivery struct {
	id, event string
	payload   tickets.WebhookPayload
	verified  error
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{id: req.Header.Get(webhook.HeaderDelivery), event: req.Header.Get(webhook.HeaderEvent)}
		d.verified = webhook.Verify([]byte(hookSecret), req.Header, body, time.Now(), time.Minute)
		if err := json.Unmarshal(body, &d.payload); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		r.mu.Lock()
		r.deliveries = append(r.deliveries, d)
		attempt := 0
		for _, o := range r.deliveries {
			if o.id == d.id {
				attempt++
			}
		}
		answer := r.answer
		r.mu.Unlock()
		if d.verified != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		code, out, h := 200, "{}", http.Header(nil)
		if answer != nil {
			code, out, h = answer(d, attempt)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		io.WriteString(w, out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setAnswer(f func(d delivery, attempt int) (int, string, http.Header)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// attempts counts the deliveries with id.
func (r *receiver) attempts(id string) int {
	n := 0
	for _, d := range r.all() {
		if d.id == id {
			n++
		}
	}
	return n
}

func (r *receiver) waitFor(t *testing.T, what string, match func(d delivery) bool) delivery {
	t.Helper()
	var got delivery
	bustestEventually(t, func() error {
		for _, d := range r.all() {
			if match(d) {
				got = d
				return nil
			}
		}
		return fmt.Errorf("no delivery %s among %d", what, len(r.all()))
	})
	return got
}

func webhookConfig(url string) tickets.Config {
	return tickets.Config{
		Webhook: webhook.Config{URL: url, Secret: hookSecret},
		Bridge:  tickets.BridgeConfig{MaxDeliver: 3, Backoff: []time.Duration{30 * time.Millisecond}},
	}
}

func TestWebhookBridge_SignedRetriedDelivered(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setAnswer(func(d delivery, attempt int) (int, string, http.Header) {
		switch {
		case d.event == event.TicketCreated && attempt < 3:
			return 500, "database is down", nil
		case d.event == event.TicketCreated:
			return 201, `{"external_id": "TRK-1"}`, nil
		case d.event == event.TicketUpdated && attempt == 1:
			return 429, "slow down", http.Header{"Retry-After": {"0"}}
		}
		return 200, "{}", nil
	})
	e := newEnv(t, kvBackend(), webhookConfig(rcv.srv.URL))
	e.run(e.svc)
	ctx := e.ctx()
	tk, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "Crash on start", Tags: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitTicket(e.svc, tk.Number, func(t *tickets.Ticket) error {
		if t.External["webhook"] != "TRK-1" {
			return fmt.Errorf("external = %v", t.External)
		}
		return nil
	})
	created := rcv.all()[0]
	if n := rcv.attempts(created.id); n != 3 {
		t.Fatalf("created delivered %d times, want 3 (two 500s, then 201)", n)
	}
	for _, d := range rcv.all() {
		if d.verified != nil {
			t.Fatalf("delivery %s not verifiable: %v", d.id, d.verified)
		}
	}
	p := created.payload
	if p.ID != created.id || p.Type != event.TicketCreated || p.Ticket.Number != tk.Number || p.Ticket.Subject != "Crash on start" ||
		p.Event.Action != tickets.ActionCreated || len(p.Ticket.Events) != 0 {
		t.Fatalf("created payload %s", dump(p))
	}
	if ev := got.Events[len(got.Events)-1]; ev.Action != tickets.ActionExternal || !ev.Quiet {
		t.Fatalf("external id not logged quietly: %+v", ev)
	}

	if _, err := e.svc.Update(ctx, tk.Number, tickets.Patch{Status: ptr(tickets.StatusOpen), Actor: "slack:U1"}); err != nil {
		t.Fatal(err)
	}
	up := rcv.waitFor(t, "ticket.updated", func(d delivery) bool { return d.event == event.TicketUpdated && rcv.attempts(d.id) == 2 })
	c, ok := up.payload.Event.Change("status")
	if !ok || c.From != "new" || c.To != "open" || up.payload.Ticket.Status != tickets.StatusOpen || up.payload.Event.Actor != "slack:U1" {
		t.Fatalf("updated payload %s", dump(up.payload))
	}
	if _, err := e.svc.Comment(ctx, tk.Number, tickets.Comment{Body: "Looking into it"}, "slack:U1"); err != nil {
		t.Fatal(err)
	}
	cm := rcv.waitFor(t, "ticket.commented", func(d delivery) bool { return d.event == event.TicketCommented })
	if cm.payload.Event.Comment == nil || cm.payload.Event.Comment.Body != "Looking into it" {
		t.Fatalf("commented payload %s", dump(cm.payload))
	}
}

func TestWebhookBridge_DeadLetters(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setAnswer(func(d delivery, attempt int) (int, string, http.Header) {
		if d.payload.Ticket.Subject == "rejected" {
			return 400, `{"error": "unknown project"}`, nil
		}
		return 502, "bad gateway", nil
	})
	e := newEnv(t, kvBackend(), webhookConfig(rcv.srv.URL))
	e.run(e.svc)
	ctx := e.ctx()
	rejected, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "rejected"})
	if err != nil {
		t.Fatal(err)
	}
	failing, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "failing"})
	if err != nil {
		t.Fatal(err)
	}
	var dls []bus.DeadLetter
	bustestEventually(t, func() error {
		dls, err = e.bus.DeadLetters(ctx, "tickets-webhook", 10)
		if err != nil {
			return err
		}
		if len(dls) < 2 {
			return fmt.Errorf("%d dead letters", len(dls))
		}
		return nil
	})
	byTicket := map[string]bus.DeadLetter{}
	for _, dl := range dls {
		var m struct {
			Meta map[string]string `json:"meta"`
		}
		_ = json.Unmarshal(dl.Data, &m)
		byTicket[m.Meta["ticket"]] = dl
	}
	dl := byTicket[strconv.FormatInt(rejected.Number, 10)]
	if dl.Deliveries != 1 || !strings.Contains(dl.Error, "400") || !strings.Contains(dl.Error, "unknown project") ||
		dl.Subject != "omni.evt.ticket.created" {
		t.Fatalf("4xx dead letter: %+v (error %q): want at once, with the reason", dl, dl.Error)
	}
	dl = byTicket[strconv.FormatInt(failing.Number, 10)]
	if dl.Deliveries != 3 || !strings.Contains(dl.Error, "502") {
		t.Fatalf("5xx dead letter: deliveries %d, error %q; want 3 attempts", dl.Deliveries, dl.Error)
	}
	if strings.Contains(dl.Error, hookSecret) {
		t.Fatal("the secret is in the reason")
	}
	if n := rcv.attempts(rcv.waitFor(t, "failing", func(d delivery) bool { return d.payload.Ticket.Subject == "failing" }).id); n != 3 {
		t.Fatalf("failing delivery tried %d times, want 3", n)
	}
}

// signedPost builds a signed POST to the webhook bridge's inbound hook.
func signedPost(t *testing.T, secret string, at time.Time, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/tickets/hooks/webhook", strings.NewReader(body))
	webhook.SetHeaders(r.Header, []byte(secret), at, []byte(body))
	return r
}

func TestWebhookBridge_Inbound(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setAnswer(func(d delivery, attempt int) (int, string, http.Header) {
		if d.event == event.TicketCreated {
			return 200, `{"external_id": "TRK-9"}`, nil
		}
		return 200, "{}", nil
	})
	e := newEnv(t, kvBackend(), webhookConfig(rcv.srv.URL))
	e.run(e.svc)
	ctx := e.ctx()
	tk, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "Sync me", Status: tickets.StatusOpen})
	if err != nil {
		t.Fatal(err)
	}
	e.waitTicket(e.svc, tk.Number, func(t *tickets.Ticket) error {
		if t.External["webhook"] != "TRK-9" {
			return fmt.Errorf("external = %v", t.External)
		}
		return nil
	})
	h := e.svc.Handler()
	do := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	now := e.clock.Now()
	for _, tc := range []struct {
		name string
		req  *http.Request
		code int
	}{
		{"forged", signedPost(t, "not-the-secret", now, `{"ticket": 1, "status": "solved"}`), 401},
		{"unsigned", httptest.NewRequest(http.MethodPost, "/api/tickets/hooks/webhook", strings.NewReader(`{"ticket": 1, "status": "solved"}`)), 401},
		{"replayed", signedPost(t, hookSecret, now.Add(-10*time.Minute), `{"ticket": 1, "status": "solved"}`), 401},
		{"malformed", signedPost(t, hookSecret, now, `{"status": "solved"}`), 400},
		{"unknown status", signedPost(t, hookSecret, now, `{"ticket": 1, "status": "done"}`), 400},
		{"unknown ticket", signedPost(t, hookSecret, now, `{"ticket": 77, "status": "solved"}`), 404},
		{"unknown external id", signedPost(t, hookSecret, now, `{"external_id": "TRK-0", "status": "solved"}`), 404},
	} {
		if w := do(tc.req); w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.code)
		}
	}
	if got, _ := e.svc.Get(ctx, tk.Number); got.Status != tickets.StatusOpen {
		t.Fatalf("a refused request changed the status to %s", got.Status)
	}

	w := do(signedPost(t, hookSecret, now, `{"external_id": "TRK-9", "status": "solved", "actor": "ann", "comment": "Fixed in 2.3.1"}`))
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	got, _ := e.svc.Get(ctx, tk.Number)
	n := len(got.Events)
	if got.Status != tickets.StatusSolved || got.Events[n-2].Source != "webhook" || got.Events[n-2].Actor != "webhook:ann" ||
		got.Events[n-1].Comment == nil || got.Events[n-1].Comment.Body != "Fixed in 2.3.1" {
		t.Fatalf("after the tracker's update: %s", dump(got.Events))
	}
	w = do(signedPost(t, hookSecret, now, `{"ticket": "#1", "status": "pending"}`))
	if w.Code != 409 || !strings.Contains(w.Body.String(), `"allowed":["open","closed"]`) {
		t.Fatalf("solved -> pending: %d %s", w.Code, w.Body)
	}

	// The tracker's own change is not sent back to it; the next one is.
	if _, err := e.svc.Update(ctx, tk.Number, tickets.Patch{Priority: ptr(tickets.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, "priority change", func(d delivery) bool {
		_, ok := d.payload.Event.Change("priority")
		return ok
	})
	for _, d := range rcv.all() {
		if d.payload.Event.Source == "webhook" || bytes.Contains([]byte(d.payload.Event.Actor), []byte("webhook")) {
			t.Fatalf("the tracker's change was echoed back: %s", dump(d.payload.Event))
		}
	}
}

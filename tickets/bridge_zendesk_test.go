package tickets_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/tickets"
	"github.com/omnigate/omnigate/tickets/zendesk"
)

// fakeZendesk speaks the Zendesk Tickets API as documented: basic auth with
// {email}/token:{api_token}, {"ticket": {...}} bodies, 201 on create, errors as
// {"error": ..., "description": ...}.
type fakeZendesk struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	nextID   int64
	tickets  map[int64]map[string]any
	comments map[int64][]map[string]any
	requests []zdRequest
	// fail answers the next requests matching method with the given status.
	fail map[string][]int
	// createDelay slows every create down, as a busy Zendesk would.
	createDelay time.Duration
}

type zdRequest struct {
	method, path string
	ticket       map[string]any
}

const (
	zdEmail  = "agent@example.com"
	zdToken  = "zd-api-token"
	zdSecret = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="
)

var zdTicketPath = regexp.MustCompile(`^/api/v2/tickets/(\d+)\.json$`)

func newFakeZendesk(t *testing.T) *fakeZendesk {
	z := &fakeZendesk{t: t, nextID: 35436, tickets: map[int64]map[string]any{}, comments: map[int64][]map[string]any{}, fail: map[string][]int{}}
	z.srv = httptest.NewServer(http.HandlerFunc(z.serve))
	t.Cleanup(z.srv.Close)
	return z
}

func (z *fakeZendesk) answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (z *fakeZendesk) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != zdEmail+"/token" || pass != zdToken {
		z.answer(w, 401, map[string]any{"error": "Couldn't authenticate you"})
		return
	}
	var body struct {
		Ticket map[string]any `json:"ticket"`
	}
	if r.Body != nil && r.Method != http.MethodGet {
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil || body.Ticket == nil {
			z.answer(w, 400, map[string]any{"error": "InvalidValue", "description": "ticket is required"})
			return
		}
	}
	z.mu.Lock()
	delay := z.createDelay
	z.mu.Unlock()
	if r.Method == http.MethodPost && delay > 0 {
		time.Sleep(delay)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.requests = append(z.requests, zdRequest{method: r.Method, path: r.URL.Path, ticket: body.Ticket})
	if codes := z.fail[r.Method]; len(codes) > 0 {
		z.fail[r.Method] = codes[1:]
		if codes[0] == 429 {
			w.Header().Set("Retry-After", "0")
		}
		z.answer(w, codes[0], map[string]any{"error": "TemporaryFailure"})
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v2/tickets.json":
		ext := r.URL.Query().Get("external_id")
		found := []map[string]any{}
		for _, tk := range z.tickets {
			if tk["external_id"] == ext {
				found = append(found, tk)
			}
		}
		z.answer(w, 200, map[string]any{"tickets": found, "count": len(found), "next_page": nil})
	case r.Method == http.MethodPost && r.URL.Path == "/api/v2/tickets.json":
		tk := body.Ticket
		if tk["comment"] == nil {
			z.answer(w, 422, map[string]any{"error": "RecordInvalid", "description": "Record validation errors"})
			return
		}
		id := z.nextID
		z.nextID++
		stored := map[string]any{"id": id, "url": fmt.Sprintf("%s/api/v2/tickets/%d.json", z.srv.URL, id)}
		for k, v := range tk {
			if k != "comment" {
				stored[k] = v
			}
		}
		if stored["status"] == nil {
			stored["status"] = "new"
		}
		z.tickets[id] = stored
		z.comments[id] = append(z.comments[id], tk["comment"].(map[string]any))
		z.answer(w, 201, map[string]any{"ticket": stored})
	case r.Method == http.MethodPut && zdTicketPath.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(zdTicketPath.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		stored, ok := z.tickets[id]
		if !ok {
			z.answer(w, 404, map[string]any{"error": "RecordNotFound", "description": "Not found"})
			return
		}
		if stored["status"] == "closed" {
			z.answer(w, 422, map[string]any{"error": "RecordInvalid", "description": "Record validation errors",
				"details": map[string]any{"status": []any{map[string]any{"description": "Status: closed prevents ticket update"}}}})
			return
		}
		for k, v := range body.Ticket {
			if k == "comment" {
				z.comments[id] = append(z.comments[id], v.(map[string]any))
				continue
			}
			stored[k] = v
		}
		z.answer(w, 200, map[string]any{"ticket": stored})
	default:
		z.answer(w, 404, map[string]any{"error": "InvalidEndpoint"})
	}
}

func (z *fakeZendesk) reqs() []zdRequest {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]zdRequest(nil), z.requests...)
}

func (z *fakeZendesk) ticket(id int64) map[string]any {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := map[string]any{}
	for k, v := range z.tickets[id] {
		out[k] = v
	}
	return out
}

func (z *fakeZendesk) commentsOf(id int64) []map[string]any {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]map[string]any(nil), z.comments[id]...)
}

func (z *fakeZendesk) failNext(method string, codes ...int) {
	z.mu.Lock()
	z.fail[method] = append(z.fail[method], codes...)
	z.mu.Unlock()
}

func (z *fakeZendesk) wait(t *testing.T, what string, check func() error) {
	t.Helper()
	bustestEventually(t, func() error {
		if err := check(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// zendeskHook is a webhook Zendesk sends for a trigger with the JSON body of
// docs/tickets.md, signed as Zendesk signs.
func zendeskHook(secret string, at time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/tickets/hooks/zendesk", strings.NewReader(body))
	ts := at.UTC().Format(time.RFC3339)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(zendesk.HeaderTimestamp, ts)
	r.Header.Set(zendesk.HeaderSignature, zendesk.Sign(secret, ts, []byte(body)))
	return r
}

func TestZendeskBridge_RoundTrip(t *testing.T) {
	z := newFakeZendesk(t)
	cfg := tickets.Config{
		Zendesk: zendesk.Config{BaseURL: z.srv.URL, Email: zdEmail, APIToken: zdToken, WebhookSecret: zdSecret,
			CustomFields: map[string]int64{"order_id": 360001}},
		Bridge: tickets.BridgeConfig{MaxDeliver: 4, Backoff: []time.Duration{30 * time.Millisecond}},
	}
	e := newEnv(t, kvBackend(), cfg)
	_, conv := e.customer("email:fay@example.com", "Fay", nil)
	e.run(e.svc)
	ctx := e.ctx()
	z.failNext(http.MethodPost, 500) // Zendesk hiccups once: the create is retried
	tk, err := e.svc.Create(ctx, tickets.CreateRequest{
		Subject: "Wrong size delivered", Description: "Ordered M, got XL.", ConversationID: conv.ID,
		Tags: []string{"returns"}, Fields: map[string]string{"order_id": "A-77", "internal": "x"}, Silent: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitTicket(e.svc, tk.Number, func(t *tickets.Ticket) error {
		if t.External["zendesk"] != "35436" {
			return fmt.Errorf("external = %v", t.External)
		}
		return nil
	})
	zt := z.ticket(35436)
	if zt["external_id"] != "omnigate-1" || zt["subject"] != "Wrong size delivered" || zt["status"] != "new" || zt["priority"] != "normal" {
		t.Fatalf("zendesk ticket %v", zt)
	}
	if req, _ := zt["requester"].(map[string]any); req["email"] != "fay@example.com" || req["name"] != "Fay" {
		t.Fatalf("requester %v", zt["requester"])
	}
	if fmt.Sprint(zt["tags"]) != "[returns]" || fmt.Sprint(zt["custom_fields"]) != "[map[id:360001 value:A-77]]" {
		t.Fatalf("tags %v, custom fields %v", zt["tags"], zt["custom_fields"])
	}
	if c := z.commentsOf(35436); len(c) != 1 || c[0]["body"] != "Ordered M, got XL." || c[0]["public"] != false {
		t.Fatalf("description comment %v", c)
	}
	var gets, posts int
	for _, r := range z.reqs() {
		switch r.method {
		case http.MethodGet:
			gets++
		case http.MethodPost:
			posts++
		}
	}
	if gets < 1 || posts != 2 {
		t.Fatalf("%d lookups and %d creates; want a lookup before each create, one failed create and one that worked", gets, posts)
	}
	_ = got

	// omnigate -> Zendesk: status, priority, comment; a 429 and a 500 on the way.
	z.failNext(http.MethodPut, 429, 500)
	if _, err := e.svc.Update(ctx, tk.Number, tickets.Patch{Status: ptr(tickets.StatusPending), Actor: "slack:U1"}); err != nil {
		t.Fatal(err)
	}
	z.wait(t, "status pending", func() error {
		if s := z.ticket(35436)["status"]; s != "pending" {
			return fmt.Errorf("status %v", s)
		}
		return nil
	})
	if _, err := e.svc.Comment(ctx, tk.Number, tickets.Comment{Body: "Asked the customer for a photo", Public: true}, "slack:U1"); err != nil {
		t.Fatal(err)
	}
	z.wait(t, "comment", func() error {
		c := z.commentsOf(35436)
		if len(c) != 2 {
			return fmt.Errorf("%d comments", len(c))
		}
		if !strings.HasPrefix(c[1]["body"].(string), "Asked the customer for a photo") || c[1]["public"] != false {
			return fmt.Errorf("comment %v: want an internal note (public_comments is off)", c[1])
		}
		return nil
	})

	// Zendesk -> omnigate: the trigger's webhook, as the agent solves it there.
	h := e.svc.Handler()
	post := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	now := e.clock.Now()
	body := `{"ticket_id": "35436", "external_id": "omnigate-1", "status": "Solved"}`
	if w := post(zendeskHook("forged", now, body)); w.Code != 401 {
		t.Fatalf("forged: %d %s", w.Code, w.Body)
	}
	if w := post(zendeskHook(zdSecret, now.Add(-time.Hour), body)); w.Code != 401 {
		t.Fatalf("stale: %d %s", w.Code, w.Body)
	}
	if w := post(zendeskHook(zdSecret, now, `{"ticket_id": "99", "status": "open"}`)); w.Code != 404 {
		t.Fatalf("unknown ticket: %d %s", w.Code, w.Body)
	}
	if w := post(zendeskHook(zdSecret, now, body)); w.Code != 200 {
		t.Fatalf("solved in zendesk: %d %s", w.Code, w.Body)
	}
	solved, _ := e.svc.Get(ctx, tk.Number)
	last := solved.Events[len(solved.Events)-1]
	if solved.Status != tickets.StatusSolved || last.Source != "zendesk" || last.Actor != "zendesk" {
		t.Fatalf("after zendesk solved it: %s", dump(last))
	}
	if w := post(zendeskHook(zdSecret, now, `{"ticket": {"id": 35436, "status": "pending"}}`)); w.Code != 409 {
		t.Fatalf("solved -> pending from zendesk: %d %s", w.Code, w.Body)
	}

	// The change from Zendesk is not sent back; the next one from here is.
	putsBefore := 0
	for _, r := range z.reqs() {
		if r.method == http.MethodPut {
			putsBefore++
		}
	}
	if _, err := e.svc.Update(ctx, tk.Number, tickets.Patch{Priority: ptr(tickets.PriorityUrgent), Fields: map[string]*string{"order_id": ptr("A-78")}}); err != nil {
		t.Fatal(err)
	}
	z.wait(t, "priority urgent", func() error {
		if p := z.ticket(35436)["priority"]; p != "urgent" {
			return fmt.Errorf("priority %v", p)
		}
		return nil
	})
	var puts []zdRequest
	for _, r := range z.reqs() {
		if r.method == http.MethodPut {
			puts = append(puts, r)
		}
	}
	for _, r := range puts {
		if r.ticket["status"] == "solved" {
			t.Fatalf("zendesk's own status change was sent back: %v", r.ticket)
		}
	}
	lastPut := puts[len(puts)-1].ticket
	if _, has := lastPut["status"]; has || fmt.Sprint(lastPut["custom_fields"]) != "[map[id:360001 value:A-78]]" || len(puts) != putsBefore+1 {
		t.Fatalf("priority update sent %v; want only priority and the changed field", lastPut)
	}
}

// TestZendeskBridge_CreateIsIdempotent: a ticket Zendesk already has (a crash
// after Zendesk created it) is found by its external_id, not created again.
func TestZendeskBridge_CreateIsIdempotent(t *testing.T) {
	z := newFakeZendesk(t)
	z.tickets[777] = map[string]any{"id": 777, "external_id": "omnigate-1", "status": "open"}
	cfg := tickets.Config{Zendesk: zendesk.Config{BaseURL: z.srv.URL, Email: zdEmail, APIToken: zdToken}}
	e := newEnv(t, kvBackend(), cfg)
	e.run(e.svc)
	tk, err := e.svc.Create(e.ctx(), tickets.CreateRequest{Subject: "Again"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitTicket(e.svc, tk.Number, func(t *tickets.Ticket) error {
		if t.External["zendesk"] != "777" {
			return fmt.Errorf("external = %v", t.External)
		}
		return nil
	})
	for _, r := range z.reqs() {
		if r.method == http.MethodPost {
			t.Fatalf("created again: %v", r.ticket)
		}
	}
}

// TestZendeskBridge_BadCredentialsDeadLetter: a 401 from Zendesk cannot get
// better: the event is dead-lettered at once with Zendesk's reason.
func TestZendeskBridge_BadCredentialsDeadLetter(t *testing.T) {
	z := newFakeZendesk(t)
	cfg := tickets.Config{Zendesk: zendesk.Config{BaseURL: z.srv.URL, Email: zdEmail, APIToken: "wrong"}}
	e := newEnv(t, kvBackend(), cfg)
	e.run(e.svc)
	if _, err := e.svc.Create(e.ctx(), tickets.CreateRequest{Subject: "x"}); err != nil {
		t.Fatal(err)
	}
	bustestEventually(t, func() error {
		dls, err := e.bus.DeadLetters(e.ctx(), "tickets-zendesk", 10)
		if err != nil {
			return err
		}
		if len(dls) != 1 {
			return fmt.Errorf("%d dead letters", len(dls))
		}
		if dls[0].Deliveries != 1 || !strings.Contains(dls[0].Error, "401") || !strings.Contains(dls[0].Error, "Couldn't authenticate you") {
			return fmt.Errorf("dead letter %+v", dls[0])
		}
		if strings.Contains(dls[0].Error, "wrong") {
			return fmt.Errorf("the token is in the reason: %s", dls[0].Error)
		}
		return nil
	})
}

// TestZendeskBridge_TwoReplicasCreateOnce: two replicas handle the created and
// the updated event of a new ticket at the same time; Zendesk gets one ticket.
func TestZendeskBridge_TwoReplicasCreateOnce(t *testing.T) {
	z := newFakeZendesk(t)
	z.createDelay = 300 * time.Millisecond
	cfg := tickets.Config{
		Zendesk:  zendesk.Config{BaseURL: z.srv.URL, Email: zdEmail, APIToken: zdToken},
		Timeouts: tickets.TimeoutConfig{Handler: 2 * time.Second},
	}
	be := kvBackend()
	e := newEnv(t, be, cfg)
	other := e.service(cfg, be.Open(t, e.bus))
	e.run(e.svc)
	e.run(other)
	ctx := e.ctx()
	for i := range 4 {
		tk, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: fmt.Sprintf("race %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Update(ctx, tk.Number, tickets.Patch{Priority: ptr(tickets.PriorityHigh)}); err != nil {
			t.Fatal(err)
		}
	}
	z.wait(t, "every ticket created and updated", func() error {
		z.mu.Lock()
		defer z.mu.Unlock()
		if len(z.tickets) < 4 {
			return fmt.Errorf("%d tickets in zendesk", len(z.tickets))
		}
		for id, tk := range z.tickets {
			if tk["priority"] != "high" {
				return fmt.Errorf("zendesk ticket %d priority %v", id, tk["priority"])
			}
		}
		return nil
	})
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.tickets) != 4 {
		t.Fatalf("zendesk has %d tickets for 4: %v", len(z.tickets), z.tickets)
	}
}

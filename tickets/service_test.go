package tickets_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/tickets"
)

// TestService_NumberingTwoReplicas creates tickets concurrently on two services,
// each with its own store on the same backend (two replicas): every number is
// handed out once, and none is skipped.
func TestService_NumberingTwoReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		cfg := tickets.Config{FirstNumber: 1000}
		e := newEnv(t, be, cfg)
		replicas := []*tickets.Service{e.svc, e.service(cfg, be.Open(t, e.bus))}
		const each = 25
		var mu sync.Mutex
		var numbers []int64
		var wg sync.WaitGroup
		for r, svc := range replicas {
			for i := range each {
				wg.Go(func() {
					tk, err := svc.Create(e.ctx(), tickets.CreateRequest{Subject: fmt.Sprintf("replica %d request %d", r, i)})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					mu.Lock()
					numbers = append(numbers, tk.Number)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		slices.Sort(numbers)
		if len(numbers) != 2*each {
			t.Fatalf("%d tickets created, want %d", len(numbers), 2*each)
		}
		for i, n := range numbers {
			if n != 1000+int64(i) {
				t.Fatalf("numbers = %v, want 1000..%d each once", numbers, 1000+2*each-1)
			}
		}
		// Both replicas read every ticket.
		for _, n := range []int64{1000, 1000 + 2*each - 1} {
			for _, svc := range replicas {
				if _, err := svc.Get(e.ctx(), n); err != nil {
					t.Fatalf("get #%d: %v", n, err)
				}
			}
		}
	})
}

func TestService_Lifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, tickets.Config{})
		ctx := e.ctx()
		_, conv := e.customer("sms:+15551230001", "Ann", nil)
		created := e.clock.Now()
		tk, err := e.svc.Create(ctx, tickets.CreateRequest{
			Subject: "Printer on fire", ConversationID: conv.ID, Priority: tickets.PriorityHigh,
			Tags: []string{"Hardware", "hardware", "on site"}, Fields: map[string]string{"order_id": "A-1"}, Actor: "slack:U1",
		})
		if err != nil {
			t.Fatal(err)
		}
		if tk.Number != 1 || tk.Status != tickets.StatusNew || tk.Priority != tickets.PriorityHigh ||
			!slices.Equal(tk.Tags, []string{"hardware", "on_site"}) || tk.Requester.Name != "Ann" ||
			tk.Requester.Identity != "sms:+15551230001" || !slices.Equal(tk.Conversations, []string{conv.ID}) {
			t.Fatalf("created %s", dump(tk))
		}
		if !tk.DueAt.Equal(created.Add(24*time.Hour)) || !tk.DueFromSLA {
			t.Fatalf("due %s (from SLA %v), want the high SLA, 24h after %s", tk.DueAt, tk.DueFromSLA, created)
		}
		if ts, _, err := e.svc.List(ctx, tickets.Filter{Conversation: conv.ID}); err != nil || len(ts) != 1 || ts[0].Number != 1 {
			t.Fatalf("conversation's tickets = %d, %v, want #1", len(ts), err)
		}

		e.clock.Add(time.Minute)
		tk, err = e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusOpen), Assignee: ptr("slack:U2"), Actor: "slack:U2"})
		if err != nil {
			t.Fatal(err)
		}
		tk, err = e.svc.Update(ctx, 1, tickets.Patch{Priority: ptr(tickets.PriorityUrgent), Actor: "slack:U2"})
		if err != nil {
			t.Fatal(err)
		}
		if !tk.DueAt.Equal(created.Add(4 * time.Hour)) {
			t.Fatalf("due after priority urgent = %s, want 4h after creation", tk.DueAt)
		}
		due := created.Add(48 * time.Hour)
		if tk, err = e.svc.Update(ctx, 1, tickets.Patch{DueAt: &due}); err != nil {
			t.Fatal(err)
		}
		if tk, err = e.svc.Update(ctx, 1, tickets.Patch{Priority: ptr(tickets.PriorityLow)}); err != nil {
			t.Fatal(err)
		}
		if !tk.DueAt.Equal(due) || tk.DueFromSLA {
			t.Fatalf("an explicit due date moved with the priority: %s", tk.DueAt)
		}
		if tk, err = e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusSolved), Actor: "slack:U2"}); err != nil {
			t.Fatal(err)
		}
		if tk.SolvedAt.IsZero() {
			t.Fatal("solved_at not set")
		}

		// solved -> pending is refused, with the allowed statuses, and nothing changes.
		before := tk
		_, err = e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusPending), Priority: ptr(tickets.PriorityHigh)})
		var te *tickets.TransitionError
		if !errors.As(err, &te) || te.From != tickets.StatusSolved || !slices.Equal(te.Allowed, []tickets.Status{tickets.StatusOpen, tickets.StatusClosed}) {
			t.Fatalf("solved -> pending: err = %v", err)
		}
		if !strings.Contains(err.Error(), "a solved ticket can only become open or closed") {
			t.Fatalf("error does not say what is allowed: %v", err)
		}
		after, _ := e.svc.Get(ctx, 1)
		if after.Revision != before.Revision || after.Priority != tickets.PriorityLow || after.LastSeq != before.LastSeq {
			t.Fatalf("a refused patch changed the ticket: %s", dump(after))
		}

		if _, err := e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusClosed)}); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusOpen)})
		if !errors.Is(err, tickets.ErrInvalidTransition) || !strings.Contains(err.Error(), "closed is final") {
			t.Fatalf("closed -> open: err = %v", err)
		}

		// A patch that changes nothing writes nothing.
		cur, _ := e.svc.Get(ctx, 1)
		same, err := e.svc.Update(ctx, 1, tickets.Patch{Status: ptr(tickets.StatusClosed), Assignee: ptr("slack:U2")})
		if err != nil || same.Revision != cur.Revision {
			t.Fatalf("no-op patch: rev %d -> %d, err %v", cur.Revision, same.Revision, err)
		}

		// The log: who, when, what.
		var actions []string
		for _, ev := range cur.Events {
			actions = append(actions, ev.Action)
			if ev.Actor == "" || ev.At.IsZero() || ev.Seq == 0 {
				t.Fatalf("incomplete event %+v", ev)
			}
		}
		want := []string{"created", "updated", "updated", "updated", "updated", "status", "status"}
		if !slices.Equal(actions, want) {
			t.Fatalf("actions = %v, want %v", actions, want)
		}
		if c, ok := cur.Events[1].Change("assignee"); !ok || c.To != "slack:U2" || cur.Events[1].Actor != "slack:U2" {
			t.Fatalf("event 2 = %+v", cur.Events[1])
		}
		if c, ok := cur.Events[5].Change("status"); !ok || c.From != "open" || c.To != "solved" {
			t.Fatalf("event 6 = %+v", cur.Events[5])
		}

		if _, err := e.svc.Update(ctx, 99, tickets.Patch{Status: ptr(tickets.StatusOpen)}); !errors.Is(err, tickets.ErrNotFound) {
			t.Fatalf("update of a missing ticket: %v", err)
		}
		if _, err := e.svc.Update(ctx, 1, tickets.Patch{Priority: ptr(tickets.Priority("asap"))}); !errors.Is(err, tickets.ErrInvalid) {
			t.Fatalf("bad priority: %v", err)
		}
	})
}

func TestService_CreateIdempotent(t *testing.T) {
	e := newEnv(t, kvBackend(), tickets.Config{})
	ctx := e.ctx()
	req := tickets.CreateRequest{Subject: "Refund", IdempotencyKey: "order-7"}
	a, err := e.svc.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.Create(ctx, req)
	if err != nil || b.Number != a.Number {
		t.Fatalf("repeat = #%d, %v; want #%d", b.Number, err, a.Number)
	}
	c, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "Refund"})
	if err != nil || c.Number == a.Number {
		t.Fatalf("without key = #%d, %v", c.Number, err)
	}
	if _, err := e.svc.Create(ctx, tickets.CreateRequest{ConversationID: "01HNOSUCHCONVERSATION00000"}); !errors.Is(err, tickets.ErrInvalid) {
		t.Fatalf("missing conversation: %v", err)
	}
	if _, err := e.svc.Create(ctx, tickets.CreateRequest{Status: tickets.StatusSolved}); !errors.Is(err, tickets.ErrInvalid) {
		t.Fatalf("created solved: %v", err)
	}
}

package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// replicaConfig has no token_secret: the key is generated once and shared
// through the store.
const replicaConfig = `
sites:
  shop:
    secret: ` + shopSecret + `
    origins: [` + shopOrigin + `]
rate_limit:
  per_ip: 1000
  per_ip_burst: 1000
`

// TestReplicas_LiveFrames runs two replicas of the web channel on one bus and
// store, each with its own HTTP server, as two omnigate processes would.
func TestReplicas_LiveFrames(t *testing.T) {
	env := adaptertest.NewEnv(t, "web")
	env.Deps.Bus = env.Bus
	ra := startOn(t, env, env.Deps, replicaConfig)

	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	rb := startOn(t, env, adapters.Deps{
		Publisher: adapters.NewPublisher(env.Bus, "web"),
		Routes:    adapters.NewRoutes(mux, "web"),
		Logger:    env.Logger.With("replica", "b"),
		Store:     env.Store,
		PublicURL: hs.URL,
		Bus:       env.Bus,
	}, replicaConfig)

	onB := mustDial(t, rb)
	w := onB.hello(nil)
	// A token of one replica is good on the other: the key is shared.
	onA := mustDial(t, ra)
	if wa := onA.hello(map[string]any{"visitor_token": w.VisitorToken}); wa.Visitor != w.Visitor {
		t.Fatalf("replica A took the token as visitor %s, want %s", wa.Visitor, w.Visitor)
	}

	// Send on A reaches the tab on B, and the one on A, once each.
	rc, err := ra.a.Send(t.Context(), reply("web", w.Visitor, "from replica A"))
	if err != nil || rc.Status != "delivered" {
		t.Fatalf("Send = %+v, %v", rc, err)
	}
	for _, c := range []*client{onA, onB} {
		if got := c.next("message"); got.Text != "from replica A" {
			t.Errorf("got %q", got.Text)
		}
		c.none("message", 100*time.Millisecond)
	}
	// What the visitor writes on B shows in the tab on A.
	onB.say("b1", "typed on B")
	if got := onA.next("message"); got.Text != "typed on B" || got.ClientID != "b1" {
		t.Errorf("tab on A got %+v", got)
	}

	// Only B holds a session: Send on A still delivers, through B.
	onA.c.CloseNow()
	bustest.Eventually(t, 5*time.Second, func() error {
		_, err := ra.a.Send(t.Context(), reply("web", w.Visitor, "via B only"))
		return err
	})
	if got := onB.next("message"); got.Text != "via B only" {
		t.Errorf("got %q", got.Text)
	}
	rc, err = ra.a.Send(t.Context(), reply("web", w.Visitor, "via B again"))
	if err != nil || rc.Status != "delivered" {
		t.Errorf("Send with the only session on the other replica = %+v, %v; want delivered", rc, err)
	}

	// No session anywhere: queued, and quickly (NATS says no responders).
	onB.c.CloseNow()
	bustest.Eventually(t, 5*time.Second, func() error {
		start := time.Now()
		rc, err := ra.a.Send(t.Context(), reply("web", w.Visitor, "nobody home"))
		if err != nil {
			return err
		}
		if rc.Status != "queued" {
			return errStatus(rc.Status)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("Send to a visitor with no session took %s", d)
		}
		return nil
	})
}

type errStatus string

func (e errStatus) Error() string { return "status " + string(e) }

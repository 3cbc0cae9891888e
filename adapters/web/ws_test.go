package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

func TestWS_HelloAndMessage(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	c := mustDial(t, f)
	w := c.hello(map[string]any{"lang": "zh-CN", "page": "https://shop.example.com/cart"})
	// No routing keeps availability here: nobody is known to answer.
	if w.VisitorToken == "" || !strings.HasPrefix(w.Visitor, "v") || w.Verified || w.AgentsOnline || w.Availability.Reason != "unknown" || len(w.History) != 0 {
		t.Fatalf("welcome = %+v, want a token, an anonymous visitor, nobody known online and no history", w)
	}
	echo := c.say("c1", "hello <b>there</b>")
	if echo.Seq != 1 || echo.From != "visitor" || echo.Text != "hello <b>there</b>" || echo.ID == "" {
		t.Errorf("echo = %+v", echo)
	}
	m := inbound(t, f.env, 1)[0]
	want := core.NewIdentity("web", w.Visitor)
	if m.From != want || m.Channel != "web" || m.Text != "hello <b>there</b>" || m.Language != "zh-CN" {
		t.Errorf("inbound from %q channel %q text %q lang %q", m.From, m.Channel, m.Text, m.Language)
	}
	if m.Meta[web.MetaSite] != "shop" || m.Meta["page_url"] != "https://shop.example.com/cart" {
		t.Errorf("meta = %v", m.Meta)
	}
	for _, k := range []string{"verified_user", "verified_email", "verified_phone"} {
		if _, ok := m.Meta[k]; ok {
			t.Errorf("anonymous visitor's message has meta %s", k)
		}
	}
	if m.ID != echo.ID || m.External.Message != w.Visitor+"/c1" {
		t.Errorf("envelope id %s external %q; echo id %s", m.ID, m.External.Message, echo.ID)
	}

	// The same client_id again (a resend after a lost ack) is the same message.
	again := c.say("c1", "hello <b>there</b>")
	if again.Seq != 1 || again.ID != echo.ID {
		t.Errorf("resent message = %+v, want the stored one", again)
	}
	if n := f.env.Count(t, bus.StreamIn); n != 1 {
		t.Errorf("%d messages published after a resend, want 1", n)
	}
}

func TestWS_ResumeAfterDrop(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	c := mustDial(t, f)
	w := c.hello(nil)
	c.say("c1", "first")
	rc, err := f.a.Send(t.Context(), reply("web", w.Visitor, "answer 1"))
	if err != nil || rc.Status != "delivered" {
		t.Fatalf("Send with a session open = %+v, %v; want delivered", rc, err)
	}
	got := c.next("message")
	if got.Text != "answer 1" || got.From != "agent" || got.Agent != "Ann" || got.Seq != 2 {
		t.Fatalf("live reply = %+v", got)
	}

	// The connection drops; replies keep coming, through the runtime too.
	c.c.CloseNow()
	bustest.Eventually(t, 5*time.Second, func() error {
		rc, err := f.a.Send(t.Context(), reply("web", w.Visitor, "answer 2"))
		if err != nil {
			return err
		}
		if rc.Status != "queued" {
			return fmt.Errorf("status %s with no session", rc.Status) // the server may not have seen the close yet
		}
		return nil
	})
	m3 := reply("web", w.Visitor, "answer 3")
	f.env.WaitSent(t, f.env.PublishOutbound(t, m3, ""))

	c2 := mustDial(t, f)
	w2 := c2.hello(map[string]any{"visitor_token": w.VisitorToken, "resume_after": 2})
	if w2.Visitor != w.Visitor {
		t.Fatalf("resumed as visitor %s, want %s", w2.Visitor, w.Visitor)
	}
	missed := texts(w2.History)
	// "answer 2" may have been sent more than once while the close was noticed:
	// every copy is a distinct reply (distinct envelope ids), in order.
	if len(missed) < 2 || missed[0] != "answer 2" || missed[len(missed)-1] != "answer 3" {
		t.Fatalf("resume after 2 gave %q, want the replies sent while away, in order", missed)
	}
	for i := 1; i < len(w2.History); i++ {
		if w2.History[i].Seq <= w2.History[i-1].Seq {
			t.Errorf("history out of order: %v", w2.History)
		}
	}
	if w2.LastSeq != w2.History[len(w2.History)-1].Seq {
		t.Errorf("last_seq %d, want %d", w2.LastSeq, w2.History[len(w2.History)-1].Seq)
	}

	// A fresh connection without resume_after gets the latest history.
	c3 := mustDial(t, f)
	w3 := c3.hello(map[string]any{"visitor_token": w.VisitorToken})
	if all := texts(w3.History); all[0] != "first" || all[1] != "answer 1" || all[len(all)-1] != "answer 3" {
		t.Errorf("history = %q", all)
	}
	// And the new sessions get live replies, exactly once each.
	if _, err := f.a.Send(t.Context(), reply("web", w.Visitor, "answer 4")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{c2, c3} {
		if got := c.next("message"); got.Text != "answer 4" {
			t.Errorf("live after resume = %q", got.Text)
		}
		c.none("message", 200*time.Millisecond)
	}
}

func TestWS_FanOutToTabsAndDevices(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	// Two tabs of one anonymous visitor.
	tab1 := mustDial(t, f)
	w := tab1.hello(nil)
	tab2 := mustDial(t, f)
	tab2.hello(map[string]any{"visitor_token": w.VisitorToken})
	tab1.say("t1", "from tab 1")
	if got := tab2.next("message"); got.Text != "from tab 1" || got.ClientID != "t1" {
		t.Errorf("tab 2 got %+v", got)
	}
	if _, err := f.a.Send(t.Context(), reply("web", w.Visitor, "to both tabs")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{tab1, tab2} {
		if got := c.next("message"); got.Text != "to both tabs" {
			t.Errorf("tab got %q", got.Text)
		}
	}

	// Two devices of one verified user: same visitor, whatever device or site
	// of the same accounts.
	now := time.Now()
	phone := mustDial(t, f)
	wp := phone.hello(map[string]any{"identity": identity(shopSecret, "shop", "42", "", "", now)})
	laptop, _, err := dial(t, f, otherOrigin)
	if err != nil {
		t.Fatal(err)
	}
	wl := laptop.hello(map[string]any{"site": "other", "identity": identity(otherSecret, "other", "42", "", "", now)})
	if !wp.Verified || wp.Visitor != wl.Visitor || wp.Visitor == w.Visitor {
		t.Fatalf("verified visitors %s and %s (verified %v), want one visitor for user 42 of accounts shop", wp.Visitor, wl.Visitor, wp.Verified)
	}
	rc, err := f.a.Send(t.Context(), reply("web", wp.Visitor, "to every device"))
	if err != nil || rc.Status != "delivered" {
		t.Fatalf("Send = %+v, %v", rc, err)
	}
	for _, c := range []*client{phone, laptop} {
		if got := c.next("message"); got.Text != "to every device" {
			t.Errorf("device got %q", got.Text)
		}
	}
	tab1.none("message", 100*time.Millisecond)
}

func TestWS_VerifiedIdentity(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	now := time.Now()
	c := mustDial(t, f)
	w := c.hello(map[string]any{"identity": identity(shopSecret, "shop", "u-7", "Ann@Example.COM", "+15551234567", now)})
	if !w.Verified {
		t.Fatal("welcome does not say verified")
	}
	c.say("v1", "hi, signed in")
	m := inbound(t, f.env, 1)[0]
	want := map[string]string{
		"verified_user":  "shop:u-7",
		"verified_email": "Ann@example.com",
		"verified_phone": "+15551234567",
		"site":           "shop",
	}
	for k, v := range want {
		if m.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, m.Meta[k], v)
		}
	}

	// Reconnecting later with the token alone (the claim may have expired by
	// then) keeps the verified claims.
	c2 := mustDial(t, f)
	w2 := c2.hello(map[string]any{"visitor_token": w.VisitorToken})
	if !w2.Verified || w2.Visitor != w.Visitor {
		t.Fatalf("token reconnect: verified %v visitor %s", w2.Verified, w2.Visitor)
	}
	c2.say("v2", "still me")
	if m := inbound(t, f.env, 2)[1]; m.Meta["verified_user"] != "shop:u-7" {
		t.Errorf("after token reconnect meta = %v", m.Meta)
	}
}

func TestWS_IdentityRejected(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	now := time.Now()
	good := identity(shopSecret, "shop", "42", "ann@example.com", "", now)
	tampered := good
	tampered.UserID = "43"
	unsigned := good
	unsigned.Sig = ""
	otherSite := identity(otherSecret, "other", "42", "", "", now)
	tests := []struct {
		name string
		id   any
		code string
	}{
		{"wrong secret", identity("not-the-shop-secret", "shop", "42", "", "", now), "identity_invalid"},
		{"tampered", tampered, "identity_invalid"},
		{"unsigned", unsigned, "identity_invalid"},
		{"signed for another site", otherSite, "identity_invalid"},
		{"garbage signature", map[string]any{"user_id": "42", "ts": now.Unix(), "sig": "zz"}, "identity_invalid"},
		{"expired", identity(shopSecret, "shop", "42", "", "", now.Add(-2*time.Hour)), "identity_expired"},
		{"from the future", identity(shopSecret, "shop", "42", "", "", now.Add(time.Hour)), "identity_expired"},
		{"signed bad email", identity(shopSecret, "shop", "42", "not an email", "", now), "identity_invalid"},
		{"signed bad phone", identity(shopSecret, "shop", "42", "", "555-1234", now), "identity_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDial(t, f)
			c.send(map[string]any{"type": "hello", "site": "shop", "identity": tt.id})
			e := c.next("error")
			if e.Code != tt.code {
				t.Errorf("error %s (%s), want %s", e.Code, e.Message, tt.code)
			}
			if st := c.waitClosed(); st != websocket.StatusPolicyViolation {
				t.Errorf("closed with %v, want policy violation", st)
			}
		})
	}
	// A forged or foreign visitor token, and a token of another site.
	c := mustDial(t, f)
	w := c.hello(nil)
	for name, hello := range map[string]map[string]any{
		"forged token":       {"site": "shop", "visitor_token": w.VisitorToken[:len(w.VisitorToken)-4] + "AAAA"},
		"token of elsewhere": {"site": "other", "visitor_token": w.VisitorToken},
	} {
		t.Run(name, func(t *testing.T) {
			c, _, err := dial(t, f, "")
			if err != nil {
				t.Fatal(err)
			}
			hello["type"] = "hello"
			c.send(hello)
			if e := c.next("error"); e.Code != "token_invalid" {
				t.Errorf("error %s, want token_invalid", e.Code)
			}
		})
	}
	if n := f.env.Count(t, bus.StreamIn); n != 0 {
		t.Errorf("%d messages published", n)
	}
}

func TestWS_BadFrames(t *testing.T) {
	f := newFixture(t, "web", testConfig)

	t.Run("first frame not hello", func(t *testing.T) {
		c := mustDial(t, f)
		c.send(map[string]any{"type": "message", "text": "hi"})
		if e := c.next("error"); e.Code != "hello_first" {
			t.Errorf("error %s", e.Code)
		}
		c.waitClosed()
	})
	t.Run("not JSON", func(t *testing.T) {
		c := mustDial(t, f)
		c.hello(nil)
		c.send([]byte("{not json"))
		if e := c.next("error"); e.Code != "bad_frame" {
			t.Errorf("error %s", e.Code)
		}
		// Not fatal: the session goes on.
		c.say("ok1", "still here")
	})
	t.Run("oversized frame", func(t *testing.T) {
		c := mustDial(t, f)
		c.hello(nil)
		big := `{"type":"message","client_id":"big","text":"` + strings.Repeat("x", 300<<10) + `"}`
		ctx := t.Context()
		_ = c.c.Write(ctx, websocket.MessageText, []byte(big))
		if st := c.waitClosed(); st != websocket.StatusMessageTooBig {
			t.Errorf("closed with %v, want %v", st, websocket.StatusMessageTooBig)
		}
	})
	t.Run("text over core.MaxTextBytes", func(t *testing.T) {
		c := mustDial(t, f)
		c.hello(nil)
		c.send(map[string]any{"type": "message", "client_id": "long", "text": strings.Repeat("y", core.MaxTextBytes+1)})
		if e := c.next("error"); e.Code != "too_large" || e.Ref != "long" {
			t.Errorf("error %s ref %q", e.Code, e.Ref)
		}
		c.say("ok2", "short")
	})
	t.Run("empty message", func(t *testing.T) {
		c := mustDial(t, f)
		c.hello(nil)
		c.send(map[string]any{"type": "message", "client_id": "empty", "text": "  \n"})
		if e := c.next("error"); e.Code != "invalid_message" {
			t.Errorf("error %s", e.Code)
		}
	})
	t.Run("unknown upload", func(t *testing.T) {
		c := mustDial(t, f)
		c.hello(nil)
		c.send(map[string]any{
			"type":        "message",
			"client_id":   "att",
			"attachments": []map[string]string{{"id": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}},
		})
		if e := c.next("error"); e.Code != "unknown_upload" {
			t.Errorf("error %s", e.Code)
		}
	})
	t.Run("unknown site", func(t *testing.T) {
		c := mustDial(t, f)
		c.send(map[string]any{"type": "hello", "site": "nope"})
		if e := c.next("error"); e.Code != "unknown_site" {
			t.Errorf("error %s", e.Code)
		}
		c.waitClosed()
	})
	// Only the two good messages were published.
	if got := inbound(t, f.env, 2); len(got) != 2 {
		t.Errorf("%d messages published, want 2", len(got))
	}
}

func TestWS_RateLimits(t *testing.T) {
	f := newFixture(t, "web", testConfig+"  per_visitor: 0.5\n  per_visitor_burst: 3\n")
	c := mustDial(t, f)
	c.hello(nil)
	for i := range 3 {
		c.say(fmt.Sprintf("ok%d", i), "burst")
	}
	c.send(map[string]any{"type": "message", "client_id": "over", "text": "one too many"})
	e := c.next("error")
	if e.Code != "rate_limited" || e.Ref != "over" || e.RetryAfterMS <= 0 {
		t.Errorf("error = %+v, want rate_limited for ref over with retry_after_ms", e)
	}
	if n := f.env.Count(t, bus.StreamIn); n != 3 {
		t.Errorf("%d published, want 3", n)
	}

	// A client flooding frames of any kind is disconnected.
	flood := mustDial(t, f)
	flood.hello(nil)
	for range 100 {
		if err := flood.c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"typing"}`)); err != nil {
			break
		}
	}
	if st := flood.waitClosed(); st != websocket.StatusPolicyViolation {
		t.Errorf("flood closed with %v, want policy violation", st)
	}

	// Per IP: connection attempts beyond the burst get 429.
	g := newFixture(t, "web", "rate_limit:\n  per_ip: 0.1\n  per_ip_burst: 2\n")
	for i := range 3 {
		_, resp, err := dial(t, g, "")
		if i < 2 && err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i == 2 && (err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "") {
			t.Errorf("third dial: %v, %v; want 429 with Retry-After", err, resp)
		}
	}
}

func TestWS_Origins(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	tests := []struct {
		name, origin, site string
		handshake          int // 0: upgrade
		code               string
	}{
		{"allowed", shopOrigin, "shop", 0, ""},
		{"no origin (apps, servers)", "", "shop", 0, ""},
		{"this server itself", f.url, "shop", 0, ""},
		{"case differs", "HTTPS://SHOP.example.com", "shop", 0, ""},
		{"unknown origin", "https://evil.example.net", "shop", http.StatusForbidden, ""},
		{"lookalike", "https://shop.example.com.evil.net", "shop", http.StatusForbidden, ""},
		{"null", "null", "shop", http.StatusForbidden, ""},
		{"allowed for another site only", otherOrigin, "shop", 0, "origin_forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dial(t, f, tt.origin)
			if tt.handshake != 0 {
				if err == nil || resp == nil || resp.StatusCode != tt.handshake {
					t.Fatalf("dial: %v (%v), want %d", err, resp, tt.handshake)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.send(map[string]any{"type": "hello", "site": tt.site})
			if tt.code == "" {
				c.next("welcome")
				return
			}
			if e := c.next("error"); e.Code != tt.code {
				t.Errorf("error %s, want %s", e.Code, tt.code)
			}
			c.waitClosed()
		})
	}
	star := newFixture(t, "web", "sites:\n  any:\n    origins: ['*']\n")
	c, _, err := dial(t, star, "https://anything.example.org")
	if err != nil {
		t.Fatal(err)
	}
	c.hello(map[string]any{"site": "any"})
}

func TestWS_History(t *testing.T) {
	f := newFixture(t, "web", testConfig+"history_on_connect: 5\n")
	c := mustDial(t, f)
	w := c.hello(nil)
	for i := 1; i <= 12; i++ {
		if _, err := f.a.Send(t.Context(), reply("web", w.Visitor, fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	c2 := mustDial(t, f)
	w2 := c2.hello(map[string]any{"visitor_token": w.VisitorToken})
	if got := texts(w2.History); !slices.Equal(got, []string{"m8", "m9", "m10", "m11", "m12"}) || !w2.More {
		t.Fatalf("welcome history %q more %v", got, w2.More)
	}
	c2.send(map[string]any{"type": "history", "before": w2.History[0].Seq, "limit": 5})
	h := c2.next("history")
	if got := texts(h.Messages); !slices.Equal(got, []string{"m3", "m4", "m5", "m6", "m7"}) || !h.More {
		t.Errorf("page 2 %q more %v", got, h.More)
	}
	c2.send(map[string]any{"type": "history", "before": h.Messages[0].Seq, "limit": 5})
	h = c2.next("history")
	if got := texts(h.Messages); !slices.Equal(got, []string{"m1", "m2"}) || h.More {
		t.Errorf("page 3 %q more %v", got, h.More)
	}
	c2.send(map[string]any{"type": "history", "after": "10"})
	h = c2.next("history")
	if got := texts(h.Messages); !slices.Equal(got, []string{"m11", "m12"}) || h.More {
		t.Errorf("after 10: %q more %v", got, h.More)
	}
	c2.send(map[string]any{"type": "history", "limit": 1000})
	if e := c2.next("error"); e.Code != "bad_frame" {
		t.Errorf("limit 1000: %s", e.Code)
	}
}

func TestWS_ReadReceiptsAndTyping(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	tab1 := mustDial(t, f)
	w := tab1.hello(nil)
	tab2 := mustDial(t, f)
	tab2.hello(map[string]any{"visitor_token": w.VisitorToken})
	r := reply("web", w.Visitor, "please read")
	if _, err := f.a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	got := tab1.next("message")
	tab1.send(map[string]any{"type": "read", "up_to": got.Seq})
	if rf := tab2.next("read"); rf.UpTo != got.Seq || rf.From != "visitor" {
		t.Errorf("tab 2 read frame = %+v", rf)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		evs := f.env.Events(t, event.DeliveryRead, r.ID)
		if len(evs) != 1 {
			return fmt.Errorf("%d delivery.read events for the reply", len(evs))
		}
		if evs[0].ConversationID != "conv1" || evs[0].To != r.To {
			return fmt.Errorf("event = %+v", evs[0])
		}
		return nil
	})
	tab3 := mustDial(t, f)
	if w3 := tab3.hello(map[string]any{"visitor_token": w.VisitorToken}); w3.ReadUpTo != got.Seq {
		t.Errorf("read_up_to in welcome = %d, want %d", w3.ReadUpTo, got.Seq)
	}

	// An agent's typing and read events, sent to the channel by a desk.
	typing := core.NewMessage(core.KindEvent, core.Outbound, "web")
	typing.Type = "typing"
	typing.To = r.To
	if rc, err := f.a.Send(t.Context(), typing); err != nil || rc.Status != "delivered" {
		t.Fatalf("typing: %+v %v", rc, err)
	}
	if tf := tab1.next("typing"); tf.From != "agent" {
		t.Errorf("typing frame %+v", tf)
	}
	echo := tab1.say("q", "question")
	read := core.NewMessage(core.KindEvent, core.Outbound, "web")
	read.Type = "read"
	read.To = r.To
	read.Meta = map[string]string{"up_to": fmt.Sprint(echo.Seq)}
	if _, err := f.a.Send(t.Context(), read); err != nil {
		t.Fatal(err)
	}
	if rf := tab2.next("read"); rf.From != "agent" || rf.UpTo != echo.Seq {
		t.Errorf("agent read frame %+v", rf)
	}
	other := core.NewMessage(core.KindEvent, core.Outbound, "web")
	other.Type = "conversation.assigned"
	other.To = r.To
	if _, err := f.a.Send(t.Context(), other); !bus.IsPermanent(err) {
		t.Errorf("unknown event: %v, want Permanent", err)
	}
}

func TestSend_Recipients(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	for _, to := range []core.Identity{"web:not-a-visitor", "sms:+15551234567", "web:v0123", core.Identity("web:u" + strings.Repeat("g", 32))} {
		m := reply("web", "x", "hi")
		m.To = to
		if _, err := f.a.Send(t.Context(), m); !bus.IsPermanent(err) {
			t.Errorf("Send to %s: %v, want Permanent", to, err)
		}
	}
	m := reply("web", "v"+core.NewID(), "")
	m.Attachments = []core.Attachment{{Name: "x", Key: "s3/key"}}
	if _, err := f.a.Send(t.Context(), m); !bus.IsPermanent(err) {
		t.Errorf("Send of nothing showable: %v, want Permanent", err)
	}
	// A visitor with no session: queued, and shown on the next connection.
	v := "v" + core.NewID()
	rc, err := f.a.Send(t.Context(), reply("web", v, "later"))
	if err != nil || rc.Status != "queued" || rc.ProviderID != v+":1" {
		t.Errorf("Send to an absent visitor = %+v, %v", rc, err)
	}
}

func TestWS_AttachmentLinksOfReplies(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	c := mustDial(t, f)
	w := c.hello(nil)
	m := reply("web", w.Visitor, "see attached")
	m.Attachments = []core.Attachment{
		{Name: "invoice.pdf", ContentType: "application/pdf", URL: "https://files.example.com/invoice.pdf", Size: 10},
		{Name: "evil", URL: "javascript:alert(1)"},
		{Name: "stored", Key: "bucket/key"},
	}
	if _, err := f.a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := c.next("message")
	if len(got.Attachments) != 1 || got.Attachments[0].URL != "https://files.example.com/invoice.pdf" {
		t.Errorf("attachments %+v, want only the https one", got.Attachments)
	}
	data, _ := json.Marshal(got)
	if strings.Contains(string(data), "javascript:") {
		t.Errorf("a javascript: URL reached the client: %s", data)
	}
}

package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// widgetConfig is GET widget/config as the widget reads it.
type widgetConfig struct {
	Site         string            `json:"site"`
	Greeting     map[string]string `json:"greeting"`
	Color        string            `json:"color"`
	Position     string            `json:"position"`
	LauncherText string            `json:"launcher_text"`
	OfflineForm  string            `json:"offline_form"`
	Prechat      *struct {
		Fields []web.Field `json:"fields"`
	} `json:"prechat"`
	Availability availability `json:"availability"`
}

// TestAvailability_WidgetConfig: the widget's config tells routing's view of
// the site's queue: online only with an agent available within hours; closed
// with the next opening; nobody when the queue lists no agents or routing
// keeps nothing (or stopped refreshing it).
func TestAvailability_WidgetConfig(t *testing.T) {
	f := newFixture(t, "web", `
token_secret: `+tokenSecret+`
sites:
  shop:
    origins: [`+shopOrigin+`]
  vip:
    origins: ["*"]
    queue: vip
rate_limit: {per_ip: 1000, per_ip_burst: 1000}
widget:
  color: "#0f766e"
  position: left
  launcher_text: Help
  greeting: {en: "Hi!", zh: "您好！"}
  prechat:
    enabled: true
    fields: [{name: order, label: Order number}]
`)
	get := func(site string) (widgetConfig, *http.Response) {
		t.Helper()
		var c widgetConfig
		resp := call(t, f, http.MethodGet, "/widget/config?site="+site, "", shopOrigin, nil, &c)
		return c, resp
	}
	c, resp := get("shop")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Fatalf("widget config: %d %v", resp.StatusCode, resp.Header)
	}
	if c.Color != "#0f766e" || c.Position != "left" || c.LauncherText != "Help" || c.Greeting["zh"] != "您好！" || c.OfflineForm != "email" ||
		c.Prechat == nil || len(c.Prechat.Fields) != 1 || c.Prechat.Fields[0].Label != "Order number" {
		t.Errorf("widget config = %+v", c)
	}
	if c.Availability.Online || c.Availability.Reason != "unknown" {
		t.Errorf("no routing record: %+v", c.Availability)
	}

	now := time.Now().UTC()
	cases := []struct {
		name   string
		a      event.Availability
		online bool
		reason string
		wait   int64
	}{
		{"online", event.Availability{Agents: 2, Available: 1, Open: true, ExpectedWait: 4 * time.Minute}, true, "online", 240},
		{"away", event.Availability{Agents: 2, Open: true, ExpectedWait: time.Minute}, false, "away", 60},
		{"closed", event.Availability{Agents: 2, Available: 2, NextOpen: now.Add(3 * time.Hour).Truncate(time.Second)}, false, "closed", 0},
		{"no agents", event.Availability{Open: true, ExpectedWait: 15 * time.Minute}, false, "no_agents", 0},
		{"stale", event.Availability{Agents: 2, Available: 2, Open: true, At: now.Add(-time.Hour)}, false, "unknown", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.a.Queue = "general"
			putAvailability(t, f.env, event.AvailabilityDefault, tc.a)
			c, _ := get("shop")
			av := c.Availability
			if av.Online != tc.online || av.Reason != tc.reason || av.ExpectedWaitS != tc.wait || !av.NextOpen.Equal(tc.a.NextOpen) {
				t.Errorf("availability = %+v, want online %v reason %s wait %d next %v", av, tc.online, tc.reason, tc.wait, tc.a.NextOpen)
			}
		})
	}

	// A site of its own queue reads that queue's record.
	putAvailability(t, f.env, event.AvailabilityKey("vip"), event.Availability{Queue: "vip", Agents: 1, Available: 1, Open: true})
	if c, _ := get("vip"); !c.Availability.Online {
		t.Errorf("vip site: %+v", c.Availability)
	}
	if _, resp := get("nope"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unknown site: %d", resp.StatusCode)
	}
	var e struct{ Code string }
	if resp := call(t, f, http.MethodGet, "/widget/config?site=shop", "", otherOrigin, nil, &e); resp.StatusCode != http.StatusForbidden || e.Code != "origin_forbidden" {
		t.Errorf("foreign origin: %d %v", resp.StatusCode, e)
	}
}

// TestAvailability_Pushed: a welcome carries the availability; a change is
// pushed to the open sessions of the site.
func TestAvailability_Pushed(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	putAvailability(t, f.env, event.AvailabilityDefault, event.Availability{Queue: "general", Agents: 1, Available: 1, Open: true, ExpectedWait: 3 * time.Minute})
	c := mustDial(t, f)
	w := c.hello(nil)
	if !w.AgentsOnline || !w.Availability.Online || w.Availability.ExpectedWaitS != 180 {
		t.Fatalf("welcome availability %+v online %v", w.Availability, w.AgentsOnline)
	}
	putAvailability(t, f.env, event.AvailabilityDefault, event.Availability{Queue: "general", Agents: 1, Open: true, ExpectedWait: 3 * time.Minute})
	for {
		fr := c.next("availability")
		if !fr.Online && fr.Reason == "away" {
			break
		}
	}
}

// TestAvailability_Forced: offline: true and the SetAgentsOnline callback
// decide over routing.
func TestAvailability_Forced(t *testing.T) {
	f := newFixture(t, "web", testConfig+"offline: true\n")
	putAvailability(t, f.env, event.AvailabilityDefault, event.Availability{Agents: 1, Available: 1, Open: true})
	c := mustDial(t, f)
	if w := c.hello(nil); w.AgentsOnline || w.Availability.Reason != "offline" {
		t.Errorf("offline: true: %+v", w.Availability)
	}
	f.a.SetAgentsOnline(func(_ context.Context, site string) bool { return site == "shop" })
	c2 := mustDial(t, f)
	if w := c2.hello(nil); !w.AgentsOnline || w.Availability.Reason != "online" {
		t.Errorf("callback: %+v", w.Availability)
	}
}

// TestMessage_FormsMeta: what the pre-chat form asked reaches the envelope's
// meta; a message of the offline form comes from the typed address, so that
// replies go by email.
func TestMessage_FormsMeta(t *testing.T) {
	f := newFixture(t, "web", testConfig+`
widget:
  prechat:
    enabled: true
    fields: [{name: order, label: Order number}]
`)
	c := mustDial(t, f)
	w := c.hello(nil)
	c.send(map[string]any{"type": "message", "client_id": "p1", "text": "Where is my parcel?", "name": "Ann Lee",
		"email": "Ann@Example.COM", "fields": map[string]string{"order": "A-1042", "other": "dropped"}})
	c.next("message")
	c.send(map[string]any{"type": "message", "client_id": "o1", "text": "Call me back", "email": "bob@example.com", "offline": true})
	c.next("message")
	ms := inbound(t, f.env, 2)
	pre, off := ms[0], ms[1]
	if pre.From != core.NewIdentity("web", w.Visitor) || pre.Meta[event.MetaName] != "Ann Lee" || pre.Meta[web.MetaContactEmail] != "Ann@example.com" ||
		pre.Meta[event.MetaPrechat] != "order=A-1042" {
		t.Errorf("pre-chat message from %s meta %v", pre.From, pre.Meta)
	}
	if off.From != "email:bob@example.com" || off.Channel != "web" || off.Meta[web.MetaContactEmail] != "bob@example.com" || off.Meta[web.MetaSite] != "shop" {
		t.Errorf("offline message from %s channel %s meta %v", off.From, off.Channel, off.Meta)
	}
	// An offline message without an email is refused.
	c.send(map[string]any{"type": "message", "client_id": "o2", "text": "x", "offline": true})
	if e := c.next("error"); e.Code != "invalid_message" || e.Ref != "o2" {
		t.Errorf("offline without email: %+v", e)
	}
}

// TestSend_AgentAvatarAndAuto: a reply shows the agent's name and picture
// (meta agent_name, agent_avatar: http(s) only); an acknowledgement is
// marked auto.
func TestSend_AgentAvatarAndAuto(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	c := mustDial(t, f)
	w := c.hello(nil)
	r := reply("web", w.Visitor, "Hi, I am Ann")
	r.Meta = map[string]string{event.MetaAgentName: "Ann", event.MetaAgentAvatar: "https://avatars.example.com/ann.png"}
	f.env.WaitSent(t, f.env.PublishOutbound(t, r, ""))
	if m := c.next("message"); m.Agent != "Ann" || m.Avatar != "https://avatars.example.com/ann.png" || m.Auto != "" {
		t.Errorf("reply frame %+v", m)
	}
	ack := reply("web", w.Visitor, "We have your message")
	ack.Meta = map[string]string{event.MetaAuto: "ack", event.MetaAgentAvatar: "javascript:alert(1)"}
	f.env.WaitSent(t, f.env.PublishOutbound(t, ack, ""))
	if m := c.next("message"); m.Auto != "ack" || m.Avatar != "" {
		t.Errorf("ack frame %+v", m)
	}
}

package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Why the widget says what it says (availabilityFrame.Reason).
const (
	// reasonOnline: an agent of the site's queue is available within hours.
	reasonOnline = "online"
	// reasonAway: the queue is open but none of its agents is available.
	reasonAway = "away"
	// reasonClosed: the queue is outside its business hours.
	reasonClosed = "closed"
	// reasonNoAgents: the queue lists no agents: nobody can answer here.
	reasonNoAgents = "no_agents"
	// reasonUnknown: routing keeps no availability for the queue (it is not
	// running, or the queue does not exist): nobody known to answer.
	reasonUnknown = "unknown"
	// reasonOffline: the config (offline: true) or the callback says so.
	reasonOffline = "offline"
)

// availabilityFrame tells the widget whether someone can answer now: in the
// widget config, in the welcome, and pushed when it changes.
type availabilityFrame struct {
	Type   string `json:"type,omitempty"`
	Online bool   `json:"online"`
	Reason string `json:"reason"`
	// ExpectedWaitS is the wait a visitor writing now can expect, in seconds;
	// 0 when unknown.
	ExpectedWaitS int64     `json:"expected_wait_s,omitempty"`
	NextOpen      time.Time `json:"next_open,omitzero"`
}

// availability is what the widget of site s shows: routing's view of the
// site's queue, unless the config or the SetAgentsOnline callback decide.
func (a *Adapter) availability(ctx context.Context, s *site) availabilityFrame {
	if fn := a.online.Load(); fn != nil {
		if (*fn)(ctx, s.name) {
			return availabilityFrame{Online: true, Reason: reasonOnline}
		}
		return availabilityFrame{Reason: reasonOffline}
	}
	if a.cfg.Offline {
		return availabilityFrame{Reason: reasonOffline}
	}
	key := event.AvailabilityDefault
	if s.queue != "" {
		key = event.AvailabilityKey(s.queue)
	}
	// The store's cache keeps this read cheap.
	var av event.Availability
	_, err := a.avail.Get(ctx, key, &av)
	found := err == nil
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		a.log.Warn("queue availability not read; telling visitors nobody is available", "site", s.name, "err", err)
		return availabilityFrame{Reason: reasonUnknown}
	}
	// A record routing stopped refreshing says nothing any more.
	if !found || a.now().Sub(av.At) > event.AvailabilityTTL {
		return availabilityFrame{Reason: reasonUnknown}
	}
	f := availabilityFrame{Online: av.Online(), ExpectedWaitS: int64(av.ExpectedWait / time.Second)}
	switch {
	case av.Agents == 0:
		f.Reason, f.ExpectedWaitS = reasonNoAgents, 0
	case !av.Open:
		f.Reason, f.NextOpen = reasonClosed, av.NextOpen
	case av.Available == 0:
		f.Reason = reasonAway
	default:
		f.Reason = reasonOnline
	}
	return f
}

// availabilityEvery is how often Run looks for changes of availability to
// push to open sessions.
const availabilityEvery = 5 * time.Second

// pushAvailability sends each site's availability to its sessions on this
// replica when it changed since last.
func (a *Adapter) pushAvailability(ctx context.Context, last map[string]availabilityFrame) {
	for _, name := range a.Sites() {
		s := a.sites[name]
		f := a.availability(ctx, s)
		if prev, ok := last[name]; ok && prev == f {
			continue
		}
		last[name] = f
		f.Type = typeAvailability
		a.hub.broadcast(name, outFrame{data: encodeFrame(f)})
	}
}

// widgetConfig is the answer of GET widget/config: how the site's widget
// looks and what it asks, and who can answer now.
type widgetConfig struct {
	Site         string            `json:"site"`
	Title        string            `json:"title,omitempty"`
	Greeting     map[string]string `json:"greeting,omitempty"`
	Color        string            `json:"color,omitempty"`
	Position     string            `json:"position"`
	LauncherText string            `json:"launcher_text,omitempty"`
	LogoURL      string            `json:"logo_url,omitempty"`
	Prechat      *prechatConfig    `json:"prechat,omitempty"`
	OfflineForm  string            `json:"offline_form"`
	Availability availabilityFrame `json:"availability"`
}

type prechatConfig struct {
	Fields []Field `json:"fields"`
}

// serveWidgetConfig is GET widget/config?site=<site>: what the widget needs
// before the visitor opens it (its theme, greeting and forms, and whether
// anyone can answer), readable by the pages the site allows.
func (a *Adapter) serveWidgetConfig(w http.ResponseWriter, r *http.Request) {
	if !a.limitIP(w, r) {
		return
	}
	s := a.sites[r.URL.Query().Get("site")]
	if s == nil {
		a.corsIfAllowed(w, r)
		writeError(w, r, &frameError{Code: codeUnknownSite, Msg: "no such site", Status: http.StatusForbidden})
		return
	}
	if !a.originAllowed(r, r.Header.Get("Origin"), s) {
		writeError(w, r, &frameError{Code: codeOriginForbidden, Msg: "this page's origin may not use this site's chat", Status: http.StatusForbidden})
		return
	}
	allowCORS(w, r)
	wc := a.cfg.Widget
	c := widgetConfig{
		Site: s.name, Title: wc.Title, Greeting: wc.Greeting, Color: wc.Color, Position: wc.Position,
		LauncherText: wc.LauncherText, LogoURL: wc.LogoURL, OfflineForm: wc.OfflineForm,
		Availability: a.availability(r.Context(), s),
	}
	if wc.Prechat.Enabled {
		c.Prechat = &prechatConfig{Fields: wc.Prechat.Fields}
		if c.Prechat.Fields == nil {
			c.Prechat.Fields = []Field{}
		}
	}
	writeJSON(w, http.StatusOK, c)
}

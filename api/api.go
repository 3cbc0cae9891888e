// Package api is omnigate's read API for integrators (/api/v1: conversations
// with their transcripts, contacts with their identities, queues), behind the
// bearer token http.admin_token, and the signed transcript page an agent
// opens from the Slack card (/conversations/{id}). docs/api.md tells how to
// use it; docs/openapi.yaml describes every route, and a test holds the live
// handlers to it.
//
// api reads what others own and writes nothing: conversations and contacts
// from the store (the pipeline's), transcripts from the OMNI_CONV stream, and
// queues through a function serve wires to routing. It imports only core.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/sign"
	"github.com/omnigate/omnigate/core/store"
)

// Config is what serve takes from the http section.
type Config struct {
	// Token returns the bearer token of /api/v1 (http.admin_token); an empty
	// one turns the API off.
	Token func() string
	// PublicURL is http.public_url, the base of the links TranscriptURL makes;
	// without it the card carries no link.
	PublicURL string
	// LinkKey signs the transcript page's links; without it the page is off
	// (every link gets 403) and TranscriptURL returns "".
	LinkKey []byte
	// LinkTTL is how long a link stays valid; default 7 days.
	LinkTTL time.Duration
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// QueueStatus is one of routing's queues as the API shows it.
type QueueStatus struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Desk is the agent desk the queue's conversations are shown on.
	Desk string `json:"desk,omitempty"`
	// Default is true for the queue conversations land in when no rule says.
	Default bool `json:"default"`
	// Waiting counts its conversations waiting for an agent.
	Waiting int `json:"waiting"`
	// OldestWaitingSince is when the longest-waiting one started waiting.
	OldestWaitingSince time.Time `json:"oldest_waiting_since,omitzero"`
	// Agents counts the queue's agents; AgentsAvailable those available now.
	Agents          int `json:"agents"`
	AgentsAvailable int `json:"agents_available"`
	// ExpectedWaitSeconds is routing's expected wait for a reply.
	ExpectedWaitSeconds int64 `json:"expected_wait_seconds"`
}

// Deps are the API's sources.
type Deps struct {
	// Store holds contacts and conversations.
	Store *store.Store
	// JetStream reads transcripts from the OMNI_CONV stream.
	JetStream jetstream.JetStream
	// Queues returns routing's queues; nil answers an empty list.
	Queues func(ctx context.Context) ([]QueueStatus, error)
	// Logger is pre-scoped (component=api).
	Logger *slog.Logger
}

// API serves /api/v1 and the transcript page. Safe for concurrent use.
type API struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	links *sign.Links // nil when there is no link key
}

// New returns the API. It does no I/O.
func New(cfg Config, deps Deps) (*API, error) {
	if deps.Store == nil || deps.JetStream == nil {
		return nil, errors.New("api: deps need a store and JetStream")
	}
	cfg.LinkTTL = cmp.Or(cfg.LinkTTL, 7*24*time.Hour)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Token == nil {
		cfg.Token = func() string { return "" }
	}
	a := &API{cfg: cfg, deps: deps, log: deps.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.LinkKey) > 0 {
		a.links = sign.NewLinks(cfg.LinkKey, cfg.Now)
	}
	return a, nil
}

// Handler returns the routes, with full paths, to mount at "/api/v1/" and
// "/conversations/":
//
//	GET /api/v1/conversations                       list (status, channel, queue, contact, tag, updated_since, limit, next)
//	GET /api/v1/conversations/{id}                  one conversation
//	GET /api/v1/conversations/{id}/transcript       its messages, in order (limit, next)
//	GET /api/v1/contacts?identity=sms:+1555...      the contact of an identity
//	GET /api/v1/contacts/{id}                       one contact with its identities
//	GET /api/v1/queues                              routing's queues
//	GET /conversations/{id}?exp=&sig=               the transcript page (signed link)
//
// /api/v1 needs "Authorization: Bearer <http.admin_token>"; the page needs
// its signature instead.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	auth := edge.Bearer{Token: a.cfg.Token, Realm: "omnigate api", Channel: "api", Log: a.log}
	v1 := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, auth.Handler(h)) }
	v1("GET /api/v1/conversations", a.listConversations)
	v1("GET /api/v1/conversations/{id}", a.getConversation)
	v1("GET /api/v1/conversations/{id}/transcript", a.getTranscript)
	v1("GET /api/v1/contacts", a.findContacts)
	v1("GET /api/v1/contacts/{id}", a.getContact)
	v1("GET /api/v1/queues", a.listQueues)
	v1("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route: see docs/openapi.yaml")
	})
	mux.HandleFunc("GET /conversations/{id}", a.servePage)
	return mux
}

// Routes are the method and path patterns Handler serves, for tests that
// hold them to docs/openapi.yaml.
var Routes = []string{
	"GET /api/v1/conversations",
	"GET /api/v1/conversations/{id}",
	"GET /api/v1/conversations/{id}/transcript",
	"GET /api/v1/contacts",
	"GET /api/v1/contacts/{id}",
	"GET /api/v1/queues",
	"GET /conversations/{id}",
}

// TranscriptURL returns the signed link to conversation's transcript page,
// valid for Config.LinkTTL from now, or "" when there is no public URL or
// link key to make one.
func (a *API) TranscriptURL(conversation string) string {
	if a.links == nil || a.cfg.PublicURL == "" {
		return ""
	}
	return a.cfg.PublicURL + a.links.Sign(pagePath(conversation), a.cfg.LinkTTL)
}

// pagePath is the path of conversation's transcript page, as signed.
func pagePath(conversation string) string { return "/conversations/" + conversation }

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// storeError answers err from the store: 404 for not found, 503 (retry) for
// an unavailable backend, 500 otherwise.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such "+what)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the store is unavailable: try again shortly")
	default:
		a.log.Error("api read failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the "+what+": see the server log")
	}
}

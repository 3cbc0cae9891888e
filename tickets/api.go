package tickets

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/tickets/webhook"
)

// maxAPIBody bounds an admin API request body.
const maxAPIBody = 1 << 20

// HeaderActor names who makes an admin API change, for the ticket's log.
const HeaderActor = "X-Omnigate-Actor"

// Handler returns the HTTP API, to be mounted at /api/ (its patterns are full
// paths under /api/tickets):
//
//	GET   /api/tickets?status=&assignee=&tag=&q=&requester=&conversation=&before=&limit=
//	POST  /api/tickets                 create (CreateRequest as JSON, Idempotency-Key header honoured)
//	GET   /api/tickets/{number}        one ticket with its log
//	PATCH /api/tickets/{number}        change it (Patch as JSON)
//	POST  /api/tickets/hooks/webhook   status updates from the webhook bridge's tracker (signed)
//	POST  /api/tickets/hooks/zendesk   status changes from Zendesk (signed)
//
// The admin routes need "Authorization: Bearer <tickets.admin_token>" (serve
// falls back to http.admin_token when tickets.admin_token is unset; compared
// in constant time; 401 otherwise, and always when no token is configured). The
// hooks are authenticated by their signatures instead. Errors are JSON
// {"error": "..."}; a refused status change is 409 with "from", "to" and
// "allowed".
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/tickets", s.admin(s.apiList))
	mux.Handle("POST /api/tickets", s.admin(s.apiCreate))
	mux.Handle("GET /api/tickets/{number}", s.admin(s.apiGet))
	mux.Handle("PATCH /api/tickets/{number}", s.admin(s.apiPatch))
	mux.HandleFunc("POST /api/tickets/hooks/webhook", s.handleWebhookInbound)
	mux.HandleFunc("POST /api/tickets/hooks/zendesk", s.handleZendeskInbound)
	return mux
}

// admin wraps h with the bearer token check of edge.Bearer.
func (s *Service) admin(h http.HandlerFunc) http.Handler {
	token := s.cfg.AdminToken.Value()
	return edge.Bearer{
		Token:   func() string { return token },
		Key:     "tickets.admin_token (or http.admin_token)",
		Realm:   "omnigate tickets",
		Channel: edgeChannel,
		Log:     s.log,
	}.Handler(h)
}

func (s *Service) apiList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{
		Assignee:     q.Get("assignee"),
		Tag:          q.Get("tag"),
		Query:        q.Get("q"),
		Requester:    q.Get("requester"),
		Conversation: q.Get("conversation"),
	}
	for _, v := range q["status"] {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			st, err := ParseStatus(part)
			if err != nil {
				writeErr(w, err)
				return
			}
			f.Status = append(f.Status, st)
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"before", &f.Before}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, p.name+": want a ticket number")
				return
			}
			*p.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit: want a positive number")
			return
		}
		f.Limit = n
	}
	ts, next, err := s.List(r.Context(), f)
	if err != nil {
		writeErr(w, err)
		return
	}
	if ts == nil {
		ts = []*Ticket{}
	}
	out := map[string]any{"tickets": ts}
	if next != 0 {
		out["next_before"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) apiGet(w http.ResponseWriter, r *http.Request) {
	n, ok := pathNumber(w, r)
	if !ok {
		return
	}
	t, err := s.Get(r.Context(), n)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Service) apiCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if !readJSON(w, r, &req) {
		return
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		req.IdempotencyKey = "api:" + k
	} else if req.IdempotencyKey != "" {
		req.IdempotencyKey = "api:" + req.IdempotencyKey
	}
	req.Actor = actor(r, req.Actor)
	res, err := s.create(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusCreated
	if !res.created {
		code = http.StatusOK
	}
	writeJSON(w, code, res.t)
}

// patchBody is PATCH's JSON: Patch with due_at that can be null (clear it).
type patchBody struct {
	Patch
	DueAt json.RawMessage `json:"due_at,omitempty"`
}

func (s *Service) apiPatch(w http.ResponseWriter, r *http.Request) {
	n, ok := pathNumber(w, r)
	if !ok {
		return
	}
	var b patchBody
	if !readJSON(w, r, &b) {
		return
	}
	p := b.Patch
	if len(b.DueAt) > 0 {
		var due time.Time
		if string(b.DueAt) != "null" && string(b.DueAt) != `""` {
			if err := json.Unmarshal(b.DueAt, &due); err != nil {
				writeError(w, http.StatusBadRequest, "due_at: want an RFC 3339 time or null")
				return
			}
		}
		p.DueAt = &due
	}
	p.Actor = actor(r, p.Actor)
	p.Source = ""
	p.Ref = ""
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		p.Ref = "api:" + k
	}
	t, err := s.Update(r.Context(), n, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// actor is who makes an API change: the X-Omnigate-Actor header, the body's
// actor, or "api".
func actor(r *http.Request, body string) string {
	a := strings.TrimSpace(r.Header.Get(HeaderActor))
	if a == "" {
		a = strings.TrimSpace(body)
	}
	if a == "" {
		return "api"
	}
	return "api:" + core.Truncate(a, 200)
}

// pathNumber reads {number}, writing 400 when it is not one.
func pathNumber(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := webhook.ParseNumber(r.PathValue("number"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return 0, false
	}
	return n, true
}

// readJSON decodes a JSON body strictly into v, writing 400 when it cannot
// (413 when it is over maxAPIBody, 408 when it is too slow).
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(edge.LimitBody(w, r, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, edge.Status(err), "body: "+err.Error())
		return false
	}
	return true
}

// edgeChannel is the channel label of the tickets API's refused requests
// (omnigate_http_rejected_requests_total).
const edgeChannel = "tickets"

// writeErr answers err with its status: 400 invalid, 404 not found, 409 a
// refused transition (with the allowed statuses), 500 otherwise.
func writeErr(w http.ResponseWriter, err error) {
	var te *TransitionError
	switch {
	case errors.As(err, &te):
		allowed := make([]string, len(te.Allowed))
		for i, a := range te.Allowed {
			allowed[i] = string(a)
		}
		writeJSON(w, http.StatusConflict, map[string]any{"error": te.Error(), "from": te.From, "to": te.To, "allowed": allowed})
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "the ticket is changing too fast, try again")
	default:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", err))
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

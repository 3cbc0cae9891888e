package tickets_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/tickets"
)

// api calls the admin API of e's service.
type api struct {
	t     *testing.T
	h     http.Handler
	token string
}

func (a api) do(method, path, body string, hdr ...string) (int, map[string]any) {
	a.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if a.token != "" {
		r.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	return w.Code, out
}

func numbers(out map[string]any) []float64 {
	var ns []float64
	list, _ := out["tickets"].([]any)
	for _, x := range list {
		ns = append(ns, x.(map[string]any)["number"].(float64))
	}
	return ns
}

func TestAPI_Auth(t *testing.T) {
	e := newEnv(t, kvBackend(), tickets.Config{})
	h := e.svc.Handler()
	for _, tc := range []struct {
		name, header string
	}{
		{"none", ""},
		{"wrong", "Bearer secret-tokex"},
		{"prefix", "Bearer secret-token-and-more"},
		{"not bearer", "Basic c2VjcmV0LXRva2Vu"},
		{"empty", "Bearer "},
	} {
		for _, route := range []string{"GET /api/tickets", "GET /api/tickets/1", "PATCH /api/tickets/1", "POST /api/tickets"} {
			method, path, _ := strings.Cut(route, " ")
			r := httptest.NewRequest(method, path, strings.NewReader(`{}`))
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s, %s: %d, want 401 with WWW-Authenticate", tc.name, route, w.Code)
			}
		}
	}
	if code, _ := (api{t: t, h: h, token: "secret-token"}).do("GET", "/api/tickets", ""); code != 200 {
		t.Fatalf("right token: %d", code)
	}
	// No token configured: the admin API is off, whatever is sent.
	off, err := tickets.New(tickets.Config{}, tickets.Deps{Bus: e.bus, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "secret-token"} {
		code, out := (api{t: t, h: off.Handler(), token: tok}).do("GET", "/api/tickets", "")
		if code != 401 || !strings.Contains(out["error"].(string), "admin_token") {
			t.Fatalf("API without a token configured: %d %v", code, out)
		}
	}
}

func TestAPI_CreateGetListPatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, tickets.Config{})
		_, conv := e.customer("sms:+15551230009", "Gil", nil)
		a := api{t: t, h: e.svc.Handler(), token: "secret-token"}

		code, out := a.do("POST", "/api/tickets", `{"subject": "VPN down", "priority": "high", "tags": ["network"], "assignee": "ann@example.com", "conversation_id": "`+conv.ID+`"}`, "X-Omnigate-Actor", "ops-bot")
		if code != 201 || out["number"] != 1.0 || out["status"] != "new" || out["requester"].(map[string]any)["name"] != "Gil" {
			t.Fatalf("create: %d %v", code, out)
		}
		if ev := out["events"].([]any)[0].(map[string]any); ev["actor"] != "api:ops-bot" {
			t.Fatalf("creator logged as %v", ev["actor"])
		}
		code, again := a.do("POST", "/api/tickets", `{"subject": "Printer", "fields": {"floor": "3"}}`, "Idempotency-Key", "k1")
		if code != 201 || again["number"] != 2.0 {
			t.Fatalf("create 2: %d %v", code, again)
		}
		if code, again = a.do("POST", "/api/tickets", `{"subject": "Printer", "fields": {"floor": "3"}}`, "Idempotency-Key", "k1"); code != 200 || again["number"] != 2.0 {
			t.Fatalf("repeated create: %d %v", code, again)
		}
		if code, _ := a.do("POST", "/api/tickets", `{"subject": "Printer", "priority": "asap"}`); code != 400 {
			t.Fatalf("bad priority: %d", code)
		}
		if code, _ := a.do("POST", "/api/tickets", `{"subject": "x", "colour": "red"}`); code != 400 {
			t.Fatalf("unknown field: %d", code)
		}
		if code, _ := a.do("POST", "/api/tickets", `{"subject": "Mouse", "status": "open", "tags": ["hardware"]}`); code != 201 {
			t.Fatalf("create 3: %d", code)
		}

		code, one := a.do("GET", "/api/tickets/2", "")
		if code != 200 || one["subject"] != "Printer" || one["fields"].(map[string]any)["floor"] != "3" || len(one["events"].([]any)) != 1 {
			t.Fatalf("get: %d %v", code, one)
		}
		if code, _ := a.do("GET", "/api/tickets/42", ""); code != 404 {
			t.Fatalf("missing: %d", code)
		}
		if code, _ := a.do("GET", "/api/tickets/abc", ""); code != 400 {
			t.Fatalf("not a number: %d", code)
		}

		for _, tc := range []struct {
			query string
			want  []float64
		}{
			{"", []float64{3, 2, 1}},
			{"?status=new", []float64{2, 1}},
			{"?status=open,pending", []float64{3}},
			{"?status=new&status=open", []float64{3, 2, 1}},
			{"?assignee=ann@example.com", []float64{1}},
			{"?assignee=none", []float64{3, 2}},
			{"?tag=hardware", []float64{3}},
			{"?q=vpn", []float64{1}},
			{"?q=gil", []float64{1}},
			{"?conversation=" + conv.ID, []float64{1}},
			{"?limit=2", []float64{3, 2}},
			{"?limit=2&before=2", []float64{1}},
		} {
			code, list := a.do("GET", "/api/tickets"+tc.query, "")
			if got := numbers(list); code != 200 || !slices.Equal(got, tc.want) {
				t.Errorf("list %q: %d %v, want %v", tc.query, code, got, tc.want)
			}
			if tk, ok := list["tickets"].([]any); ok && len(tk) > 0 && tk[0].(map[string]any)["events"] != nil {
				t.Errorf("list %q returns logs", tc.query)
			}
		}
		if _, list := a.do("GET", "/api/tickets?limit=2", ""); list["next_before"] != 2.0 {
			t.Errorf("next_before = %v, want 2", list["next_before"])
		}
		if code, _ := a.do("GET", "/api/tickets?status=done", ""); code != 400 {
			t.Errorf("bad status filter: %d", code)
		}

		code, p := a.do("PATCH", "/api/tickets/1", `{"status": "open", "priority": "urgent", "assignee": "", "add_tags": ["VPN"], "remove_tags": ["network"], "fields": {"site": "berlin"}, "comment": {"body": "On it"}}`, "X-Omnigate-Actor", "ann")
		if code != 200 || p["status"] != "open" || p["priority"] != "urgent" || p["assignee"] != nil ||
			strings.Join(anyStrings(p["tags"]), ",") != "vpn" || p["fields"].(map[string]any)["site"] != "berlin" {
			t.Fatalf("patch: %d %v", code, p)
		}
		evs := p["events"].([]any)
		if len(evs) != 3 || evs[1].(map[string]any)["actor"] != "api:ann" || evs[2].(map[string]any)["action"] != "commented" {
			t.Fatalf("patch events: %v", evs)
		}
		if code, p = a.do("PATCH", "/api/tickets/1", `{"fields": {"site": null}, "due_at": null}`); code != 200 || p["fields"] != nil || p["due_at"] != nil {
			t.Fatalf("clear field and due date: %d %v", code, p)
		}
		if code, p = a.do("PATCH", "/api/tickets/1", `{"due_at": "2030-01-02T03:04:05Z"}`); code != 200 || p["due_at"] != "2030-01-02T03:04:05Z" {
			t.Fatalf("set due date: %d %v", code, p)
		}
		if code, _ := a.do("PATCH", "/api/tickets/1", `{"status": "solved"}`); code != 200 {
			t.Fatalf("solve: %d", code)
		}
		code, conflict := a.do("PATCH", "/api/tickets/1", `{"status": "pending"}`)
		if code != 409 || conflict["from"] != "solved" || conflict["to"] != "pending" ||
			strings.Join(anyStrings(conflict["allowed"]), ",") != "open,closed" ||
			!strings.Contains(conflict["error"].(string), "a solved ticket can only become open or closed") {
			t.Fatalf("invalid transition: %d %v", code, conflict)
		}
		for _, bad := range []string{`{"status": "done"}`, `{"priority": 3}`, `{"subject": " "}`, `not json`, `{"comment": {"body": ""}}`} {
			if code, _ := a.do("PATCH", "/api/tickets/1", bad); code != 400 {
				t.Errorf("patch %s: %d, want 400", bad, code)
			}
		}
		if code, _ := a.do("PATCH", "/api/tickets/77", `{"status": "open"}`); code != 404 {
			t.Errorf("patch missing: %d", code)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

// TestAPI_Mount mounts the handler the two ways cmd/omnigate may: at /api/, or
// at /api/tickets and /api/tickets/ only.
func TestAPI_Mount(t *testing.T) {
	e := newEnv(t, kvBackend(), tickets.Config{})
	if _, err := e.svc.Create(e.ctx(), tickets.CreateRequest{Subject: "mounted"}); err != nil {
		t.Fatal(err)
	}
	whole := http.NewServeMux()
	whole.Handle("/api/", e.svc.Handler())
	scoped := http.NewServeMux()
	scoped.Handle("/api/tickets", e.svc.Handler())
	scoped.Handle("/api/tickets/", e.svc.Handler())
	for name, mux := range map[string]*http.ServeMux{"/api/": whole, "/api/tickets": scoped} {
		a := api{t: t, h: mux, token: "secret-token"}
		if code, out := a.do("GET", "/api/tickets", ""); code != 200 || len(numbers(out)) != 1 {
			t.Errorf("%s: list %d %v", name, code, out)
		}
		if code, out := a.do("GET", "/api/tickets/1", ""); code != 200 || out["subject"] != "mounted" {
			t.Errorf("%s: get %d %v", name, code, out)
		}
		if code, _ := a.do("POST", "/api/tickets/hooks/zendesk", "{}"); code != 401 {
			t.Errorf("%s: unsigned zendesk hook %d", name, code)
		}
	}
}

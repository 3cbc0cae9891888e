package edge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/omnigate/omnigate/core/edge"
)

func TestRequireBearer(t *testing.T) {
	var token atomic.Value
	token.Store("s3cret-token")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "inside") })
	f := newFixture(t, edge.Config{}, edge.RequireBearer(func() string { return token.Load().(string) }, ok))

	call := func(t *testing.T, auth string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/queues", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}

	for _, tc := range []struct {
		name, auth, want string
	}{
		{"no header", "", "no bearer token: send Authorization: Bearer <http.admin_token>"},
		{"wrong token", "Bearer nope", "missing or wrong bearer token"},
		{"prefix of the token", "Bearer s3cret", "missing or wrong bearer token"},
		{"basic scheme", "Basic czNjcmV0LXRva2Vu", "missing or wrong bearer token"},
		{"empty bearer", "Bearer ", "missing or wrong bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := call(t, tc.auth)
			if code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", code)
			}
			if got := h.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.want) {
				t.Errorf("body = %s (%v), want an error containing %q", body, err, tc.want)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("the answer leaks the token: %s", body)
			}
		})
	}
	if n := f.rejected("api", edge.Signature); n != 5 {
		t.Errorf("rejected{api,signature} = %v, want 5", n)
	}
	// Five refusals within the interval are one line now and one later, never five.
	if n := len(f.logs.lines("API call refused")); n != 1 {
		t.Errorf("%d log lines for 5 refusals in one interval, want 1", n)
	}

	t.Run("right token", func(t *testing.T) {
		for _, auth := range []string{"Bearer s3cret-token", "bearer s3cret-token"} {
			if code, _, body := call(t, auth); code != http.StatusOK || body != "inside" {
				t.Errorf("%q: %d %q, want 200 inside", auth, code, body)
			}
		}
	})
	t.Run("token unset turns the API off", func(t *testing.T) {
		token.Store("")
		code, _, body := call(t, "Bearer ")
		if code != http.StatusUnauthorized || !strings.Contains(body, "set http.admin_token") {
			t.Errorf("%d %s, want 401 naming http.admin_token", code, body)
		}
	})
}

func TestBearer_KeyAndChannel(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	f := newFixture(t, edge.Config{}, edge.Bearer{Token: func() string { return "" }, Key: "tickets.admin_token", Channel: "tickets"}.Handler(ok))
	resp, err := f.srv.Client().Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "set tickets.admin_token") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if n := f.rejected("tickets", edge.Signature); n != 1 {
		t.Errorf("rejected{tickets,signature} = %v, want 1", n)
	}
}

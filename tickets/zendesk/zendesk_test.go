package zendesk_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/tickets/zendesk"
)

// The example of Zendesk's "Verifying webhook authenticity" page: secret, body,
// timestamp and the signature it shows.
const (
	docSecret    = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="
	docBody      = `{"say": "hello"}`
	docTimestamp = "2021-07-25T10:00:00Z"
	docSignature = "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw="
)

func headers(sig, ts string) http.Header {
	h := http.Header{}
	h.Set(zendesk.HeaderSignature, sig)
	h.Set(zendesk.HeaderTimestamp, ts)
	return h
}

func TestVerify_DocumentedExample(t *testing.T) {
	at, _ := time.Parse(time.RFC3339, docTimestamp)
	// The documented signature (computed, in that example, over body then
	// timestamp) verifies.
	if err := zendesk.Verify(docSecret, headers(docSignature, docTimestamp), []byte(docBody), at, time.Minute); err != nil {
		t.Fatalf("documented example: %v", err)
	}
	// The documented formula, base64(HMACSHA256(TIMESTAMP + BODY)), is what Sign
	// computes, and verifies too.
	sig := zendesk.Sign(docSecret, docTimestamp, []byte(docBody))
	if sig != "Rry/4TtIdFyawtXXp8QdI6tlAUUQ/5kL1OTp5qo/ZIk=" {
		t.Fatalf("Sign = %q", sig)
	}
	if err := zendesk.Verify(docSecret, headers(sig, docTimestamp), []byte(docBody), at, time.Minute); err != nil {
		t.Fatalf("signed by Sign: %v", err)
	}
	for _, tc := range []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"tampered", docSecret, headers(sig, docTimestamp), `{"say": "bye"}`, at, zendesk.ErrBadSignature},
		{"wrong secret", "other", headers(sig, docTimestamp), docBody, at, zendesk.ErrBadSignature},
		{"other timestamp", docSecret, headers(sig, "2021-07-25T10:00:01Z"), docBody, at, zendesk.ErrBadSignature},
		{"not base64", docSecret, headers("***", docTimestamp), docBody, at, zendesk.ErrBadSignature},
		{"no signature", docSecret, headers("", docTimestamp), docBody, at, zendesk.ErrNoSignature},
		{"unix timestamp", docSecret, headers(sig, "1627207200"), docBody, at, zendesk.ErrNoSignature},
		{"replayed", docSecret, headers(sig, docTimestamp), docBody, at.Add(time.Hour), zendesk.ErrStale},
		{"no secret", "", headers(sig, docTimestamp), docBody, at, zendesk.ErrNoSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := zendesk.Verify(tc.secret, tc.h, []byte(tc.body), tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) || !errors.Is(err, zendesk.ErrUnauthorized) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseWebhook(t *testing.T) {
	for _, tc := range []struct {
		body string
		want zendesk.Event
		bad  bool
	}{
		{`{"ticket_id": "35436", "external_id": "omnigate-1042", "status": "Solved"}`, zendesk.Event{TicketID: 35436, ExternalID: "omnigate-1042", Status: "Solved"}, false},
		{`{"ticket_id": 35436, "status": "hold"}`, zendesk.Event{TicketID: 35436, Status: "hold"}, false},
		{`{"ticket": {"id": 7, "external_id": null, "status": "open"}}`, zendesk.Event{TicketID: 7, Status: "open"}, false},
		{`{"type": "zen:event-type:ticket.status_changed", "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0", "detail": {"id": "9", "status": "OPEN"}, "event": {"current": "SOLVED", "previous": "OPEN"}}`, zendesk.Event{TicketID: 9, Status: "SOLVED"}, false},
		{`{"status": "open"}`, zendesk.Event{}, true},
		{`{"ticket_id": "x", "status": "open"}`, zendesk.Event{}, true},
		{`{"ticket_id": 1}`, zendesk.Event{}, true},
		{`not json`, zendesk.Event{}, true},
	} {
		got, err := zendesk.ParseWebhook([]byte(tc.body))
		if tc.bad {
			if !errors.Is(err, zendesk.ErrMalformed) {
				t.Errorf("%s: err = %v", tc.body, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for ours, theirs := range map[string]string{"new": "new", "open": "open", "pending": "pending", "on-hold": "hold", "solved": "solved", "closed": "closed"} {
		if got := zendesk.ToZendesk(ours); got != theirs {
			t.Errorf("ToZendesk(%s) = %q, want %q", ours, got, theirs)
		}
		if got, ok := zendesk.FromZendesk(theirs); !ok || got != ours {
			t.Errorf("FromZendesk(%s) = %q, %v; want %q", theirs, got, ok, ours)
		}
	}
	for _, in := range []string{"On-hold", "ON HOLD", "Hold"} {
		if got, ok := zendesk.FromZendesk(in); !ok || got != "on-hold" {
			t.Errorf("FromZendesk(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := zendesk.FromZendesk("archived"); ok {
		t.Error("FromZendesk(archived) ok")
	}
	if zendesk.ToZendesk("done") != "" {
		t.Error("ToZendesk(done) not empty")
	}
}

func TestClient_WireAndErrors(t *testing.T) {
	var auth, method, path, body string
	code, answer, retryAfter := 201, `{"ticket": {"id": 35436, "status": "new"}}`, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		auth, method, path, body = r.Header.Get("Authorization"), r.Method, r.URL.RequestURI(), string(b)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	cfg := zendesk.Config{BaseURL: srv.URL, Email: "agent@example.com", APIToken: "tok"}
	c := zendesk.NewClient(cfg, nil)
	ctx := context.Background()
	tags := []string{"a"}
	got, err := c.Create(ctx, zendesk.Ticket{Subject: "Hi", ExternalID: "omnigate-1", Comment: &zendesk.Comment{Body: "text"}, Tags: &tags})
	if err != nil || got.ID != 35436 {
		t.Fatalf("Create = %+v, %v", got, err)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("agent@example.com/token:tok")); auth != want {
		t.Fatalf("Authorization = %q, want %q", auth, want)
	}
	if method != "POST" || path != "/api/v2/tickets.json" ||
		body != `{"ticket":{"external_id":"omnigate-1","subject":"Hi","comment":{"body":"text","public":false},"tags":["a"]}}` {
		t.Fatalf("request %s %s %s", method, path, body)
	}
	code, answer = 200, `{"ticket": {"id": 35436, "status": "solved"}}`
	if _, err := c.Update(ctx, 35436, zendesk.Ticket{Status: "solved"}); err != nil {
		t.Fatal(err)
	}
	if method != "PUT" || path != "/api/v2/tickets/35436.json" || body != `{"ticket":{"status":"solved"}}` {
		t.Fatalf("request %s %s %s", method, path, body)
	}
	code, answer = 200, `{"tickets": [{"id": 1, "external_id": "omnigate-1 2"}], "count": 1}`
	found, err := c.FindByExternalID(ctx, "omnigate-1 2")
	if err != nil || len(found) != 1 || path != "/api/v2/tickets.json?external_id=omnigate-1+2" {
		t.Fatalf("find = %v, %v (%s)", found, err, path)
	}

	for _, tc := range []struct {
		code       int
		answer     string
		retryAfter string
		permanent  bool
		delay      time.Duration
		text       string
	}{
		{401, `{"error": "Couldn't authenticate you"}`, "", true, 0, "Couldn't authenticate you"},
		{422, `{"error": "RecordInvalid", "description": "Record validation errors"}`, "", true, 0, "RecordInvalid: Record validation errors"},
		{404, `{"error": {"title": "No help desk at x.zendesk.com", "message": "There is no help desk configured at this address."}}`, "", true, 0, "No help desk"},
		{429, `{"error": "TooManyRequests"}`, "12", false, 12 * time.Second, "429"},
		{409, `{"error": "Conflict"}`, "", false, 0, "409"},
		{503, `<html>maintenance</html>`, "", false, 0, "maintenance"},
	} {
		code, answer, retryAfter = tc.code, tc.answer, tc.retryAfter
		_, err := c.Update(ctx, 1, zendesk.Ticket{Status: "open"})
		var ae *zendesk.APIError
		if !errors.As(err, &ae) || ae.Status != tc.code || !strings.Contains(err.Error(), tc.text) {
			t.Fatalf("%d: err = %v", tc.code, err)
		}
		if bus.IsPermanent(err) != tc.permanent {
			t.Errorf("%d: permanent = %v", tc.code, bus.IsPermanent(err))
		}
		if d, _ := bus.RetryDelay(err); d != tc.delay {
			t.Errorf("%d: delay = %v, want %v", tc.code, d, tc.delay)
		}
		if strings.Contains(err.Error(), "tok") && !strings.Contains(tc.text, "tok") {
			t.Errorf("%d: the token is in the error: %v", tc.code, err)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	c := zendesk.Config{}
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.Enabled() {
		t.Fatalf("empty: %v, enabled %v", err, c.Enabled())
	}
	c = zendesk.Config{Subdomain: "https://acme.zendesk.com", CustomFields: map[string]int64{"x": 0}}
	c.SetDefaults()
	err := c.Validate()
	for _, want := range []string{"subdomain: must be the subdomain only", "email: required", "api_token: required", "custom_fields.x"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	c = zendesk.Config{Subdomain: "acme", Email: "a@b.c", APIToken: "t"}
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.APIBase() != "https://acme.zendesk.com" || c.ExternalIDPrefix != "omnigate-" {
		t.Fatalf("acme: %v %s", err, c.APIBase())
	}
}

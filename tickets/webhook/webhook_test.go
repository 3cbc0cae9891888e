package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/tickets/webhook"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("whsec")
	body := []byte(`{"id":"x","type":"ticket.updated"}`)
	now := time.Unix(1_700_000_000, 0)
	// printf '1700000000.{"id":"x","type":"ticket.updated"}' | openssl dgst -sha256 -hmac whsec
	if got, want := webhook.Sign(secret, now.Unix(), body), "sha256=b8951bf0e46ce31972815b1f8edde029cc359579982b651e71babc0ed6a6dd5d"; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	h := http.Header{}
	webhook.SetHeaders(h, secret, now, body)
	if h.Get(webhook.HeaderTimestamp) != "1700000000" {
		t.Fatalf("timestamp header %q", h.Get(webhook.HeaderTimestamp))
	}
	if err := webhook.Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid: %v", err)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		mutate func(h http.Header) []byte
		at     time.Time
		want   error
	}{
		{"tampered body", secret, func(http.Header) []byte { return []byte(`{"id":"y"}`) }, now, webhook.ErrBadSignature},
		{"wrong secret", []byte("other"), nil, now, webhook.ErrBadSignature},
		{"other timestamp", secret, func(h http.Header) []byte { h.Set(webhook.HeaderTimestamp, "1700000001"); return nil }, now, webhook.ErrBadSignature},
		{"no signature", secret, func(h http.Header) []byte { h.Del(webhook.HeaderSignature); return nil }, now, webhook.ErrNoSignature},
		{"no prefix", secret, func(h http.Header) []byte {
			h.Set(webhook.HeaderSignature, strings.TrimPrefix(h.Get(webhook.HeaderSignature), "sha256="))
			return nil
		}, now, webhook.ErrNoSignature},
		{"not hex", secret, func(h http.Header) []byte { h.Set(webhook.HeaderSignature, "sha256=zz"); return nil }, now, webhook.ErrNoSignature},
		{"replayed", secret, nil, now.Add(6 * time.Minute), webhook.ErrStale},
		{"from the future", secret, nil, now.Add(-6 * time.Minute), webhook.ErrStale},
		{"no secret", nil, nil, now, webhook.ErrNoSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh := h.Clone()
			b := body
			if tc.mutate != nil {
				if nb := tc.mutate(hh); nb != nil {
					b = nb
				}
			}
			err := webhook.Verify(tc.secret, hh, b, tc.at, 5*time.Minute)
			if !errors.Is(err, tc.want) || !errors.Is(err, webhook.ErrUnauthorized) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClient_Deliver(t *testing.T) {
	var got *http.Request
	var gotBody string
	code, retryAfter := 200, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := new(strings.Builder)
		_, _ = io.Copy(buf, r.Body)
		got, gotBody = r, buf.String()
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"external_id":"T-1"}`))
	}))
	defer srv.Close()
	cfg := webhook.Config{URL: srv.URL + "/hook?token=s3cret", Secret: "whsec"}
	c := webhook.NewClient(cfg, nil)
	ctx := context.Background()
	answer, err := c.Deliver(ctx, "d-1", "ticket.created", []byte(`{"a":1}`))
	if err != nil || string(answer) != `{"external_id":"T-1"}` {
		t.Fatalf("Deliver = %q, %v", answer, err)
	}
	if got.Header.Get(webhook.HeaderDelivery) != "d-1" || got.Header.Get(webhook.HeaderEvent) != "ticket.created" ||
		got.Header.Get("Content-Type") != "application/json" || gotBody != `{"a":1}` {
		t.Fatalf("request headers %v body %q", got.Header, gotBody)
	}
	if err := webhook.Verify([]byte("whsec"), got.Header, []byte(gotBody), time.Now(), time.Minute); err != nil {
		t.Fatalf("delivery does not verify: %v", err)
	}
	for _, tc := range []struct {
		code       int
		retryAfter string
		permanent  bool
		delay      time.Duration
	}{
		{400, "", true, 0},
		{404, "", true, 0},
		{408, "", false, 0},
		{429, "7", false, 7 * time.Second},
		{429, "", false, 30 * time.Second},
		{500, "", false, 0},
		{503, "2", false, 2 * time.Second},
	} {
		code, retryAfter = tc.code, tc.retryAfter
		_, err := c.Deliver(ctx, "d-2", "ticket.updated", []byte(`{}`))
		var se *webhook.StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Fatalf("%d: err = %v", tc.code, err)
		}
		if bus.IsPermanent(err) != tc.permanent {
			t.Errorf("%d: permanent = %v, want %v", tc.code, bus.IsPermanent(err), tc.permanent)
		}
		if d, ok := bus.RetryDelay(err); ok != (tc.delay > 0) || d != tc.delay {
			t.Errorf("%d: retry delay = %v %v, want %v", tc.code, d, ok, tc.delay)
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "whsec") {
			t.Errorf("%d: error shows a secret: %v", tc.code, err)
		}
	}
	srv.Close()
	if _, err := c.Deliver(ctx, "d-3", "ticket.updated", []byte(`{}`)); err == nil || bus.IsPermanent(err) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("server down: err = %v, want a retryable error without the query", err)
	}
}

func TestParseUpdate(t *testing.T) {
	for _, tc := range []struct {
		body string
		want webhook.Update
		bad  bool
	}{
		{`{"ticket": 1042, "status": "solved"}`, webhook.Update{Ticket: 1042, Status: "solved"}, false},
		{`{"ticket": "#1042", "comment": "done", "actor": "ann", "extra": true}`, webhook.Update{Ticket: 1042, Comment: "done", Actor: "ann"}, false},
		{`{"external_id": 77, "status": "open"}`, webhook.Update{ExternalID: "77", Status: "open"}, false},
		{`{"status": "open"}`, webhook.Update{}, true},
		{`{"ticket": 1}`, webhook.Update{}, true},
		{`{"ticket": -1, "status": "open"}`, webhook.Update{}, true},
		{`{"ticket": "abc", "status": "open"}`, webhook.Update{}, true},
		{`[1]`, webhook.Update{}, true},
	} {
		got, err := webhook.ParseUpdate([]byte(tc.body))
		if tc.bad {
			if !errors.Is(err, webhook.ErrMalformed) {
				t.Errorf("%s: err = %v, want ErrMalformed", tc.body, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	c := webhook.Config{URL: "ftp://x"}
	c.SetDefaults()
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "url") || !strings.Contains(err.Error(), "secret: required") {
		t.Fatalf("Validate = %v", err)
	}
	c = webhook.Config{Secret: "s"}
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.Outbound() || !c.Inbound() || c.InboundSecret != "s" {
		t.Fatalf("inbound only: %v %+v", err, c)
	}
}

package edge_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/core/edge"
)

const forged = "webhook: signature invalid, refused"

// rejecting is a handler that refuses every request on channel for reason.
func rejecting(log *slog.Logger, channel string, reason edge.Reason) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		edge.Reject(r, log, channel, reason, forged, "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
	})
}

// sum adds up the "rejected" attributes of recs.
func sum(recs []slog.Record) int64 {
	var n int64
	for _, r := range recs {
		n += attr(r, "rejected").Int64()
	}
	return n
}

func TestReject_OneLinePerIntervalWithCount(t *testing.T) {
	logs := &records{}
	log := slog.New(logs)
	reg := prometheus.NewRegistry()
	e, err := edge.New(edge.Config{LogInterval: time.Minute}, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handler(rejecting(log, "sms", edge.Signature))
	other := e.Handler(rejecting(log, "telegram", edge.Signature))
	for range 1000 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/channels/sms/webhook", nil))
	}
	other.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/channels/telegram/webhook", nil))

	// One line for the first of each channel; the rest held back.
	if got := logs.lines(forged); len(got) != 2 || sum(got) != 2 {
		t.Fatalf("after 1000 + 1 refusals: %d lines standing for %d, want 2 standing for 2", len(got), sum(got))
	}
	// Close writes what is held back: 999 in one line.
	e.Close()
	got := logs.lines(forged)
	if len(got) != 3 || sum(got) != 1001 || attr(got[2], "rejected").Int64() != 999 {
		t.Fatalf("after Close: %d lines standing for %d, want 3 standing for 1001 (the last for 999)", len(got), sum(got))
	}
	f := &fixture{reg: reg}
	if n := f.rejected("sms", edge.Signature); n != 1000 {
		t.Errorf("counter sms/signature = %v, want 1000", n)
	}
	if n := f.rejected("telegram", edge.Signature); n != 1 {
		t.Errorf("counter telegram/signature = %v, want 1", n)
	}
}

func TestReject_HeldBackLineWrittenAfterInterval(t *testing.T) {
	logs := &records{}
	log := slog.New(logs)
	e, err := edge.New(edge.Config{LogInterval: 50 * time.Millisecond}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	h := e.Handler(rejecting(log, "slack", edge.Signature))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
	}
	eventually(t, 10*time.Second, func() error {
		if got := logs.lines(forged); len(got) != 2 || sum(got) != 3 {
			return fmt.Errorf("%d lines standing for %d, want 2 standing for 3", len(got), sum(got))
		}
		return nil
	})
	// A quiet interval later, the next refusal is logged at once.
	time.Sleep(60 * time.Millisecond)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
	if got := logs.lines(forged); len(got) != 3 || attr(got[2], "rejected").Int64() != 1 {
		t.Fatalf("%d lines; want a third for 1 at once", len(got))
	}
}

func TestReject_WithoutEdgeLogsEach(t *testing.T) {
	logs := &records{}
	h := rejecting(slog.New(logs), "sms", edge.Signature)
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
	}
	if got := logs.lines(forged); len(got) != 3 {
		t.Errorf("%d lines, want 3", len(got))
	}
}

func TestNew_RegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := edge.New(edge.Config{}, reg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	_, err := edge.New(edge.Config{}, reg, slog.New(slog.DiscardHandler))
	if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Errorf("second Edge on one registry: %v, want AlreadyRegisteredError", err)
	}
}

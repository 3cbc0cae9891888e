package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/telemetry"
)

// channelOf labels /channels/<name>/ with its name, the rest "other".
func channelOf(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/channels/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return "other"
}

// TestEdge_RequestDuration: webhooks are timed by channel and status class;
// an event stream is not; the exposition is lint-clean.
func TestEdge_RequestDuration(t *testing.T) {
	f := newFixture(t, edge.Config{Channel: channelOf}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/forged"):
			w.WriteHeader(http.StatusForbidden)
		case strings.HasSuffix(r.URL.Path, "/down"):
			http.Error(w, "bus down", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok")) // implicit 200
		}
	}))
	for _, p := range []string{"/channels/sms/webhook", "/channels/sms/webhook", "/channels/sms/forged", "/channels/telegram/down", "/healthz"} {
		resp, err := http.Post(f.srv.URL+p, "application/x-www-form-urlencoded", strings.NewReader("Body=hi"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/channels/web/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	counts := map[string]uint64{}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnigate_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counts[labels["channel"]+" "+labels["status_class"]] = m.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"sms 2xx": 2, "sms 4xx": 1, "telegram 5xx": 1, "other 2xx": 1}
	if len(counts) != len(want) {
		t.Errorf("series %v, want %v (the event stream is not timed)", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d requests, want %d", k, counts[k], n)
		}
	}
	problems, err := testutil.GatherAndLint(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestEdge_WebhookSpan: with tracing on, a webhook is a server span that
// continues the caller's traceparent and that the handler's ctx carries;
// health probes ("other") make no spans.
func TestEdge_WebhookSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	defer telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))()
	var inHandler trace.SpanContext
	f := newFixture(t, edge.Config{Channel: channelOf}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			inHandler = trace.SpanContextFromContext(r.Context())
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, p := range []string{"/channels/sms/webhook", "/healthz"} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+p, strings.NewReader("x"))
		req.Header.Set("traceparent", parent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1 (the webhook's)", len(spans))
	}
	sp := spans[0]
	if sp.Name != "webhook sms" || sp.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v", sp.Name, sp.SpanKind)
	}
	if sp.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sp.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span trace %s parent %s: the caller's traceparent was not continued", sp.SpanContext.TraceID(), sp.Parent.SpanID())
	}
	if inHandler.SpanID() != sp.SpanContext.SpanID() {
		t.Errorf("the handler's ctx carries span %s, want the webhook's %s", inHandler.SpanID(), sp.SpanContext.SpanID())
	}
}

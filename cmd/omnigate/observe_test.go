package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/telemetry"
)

// TestServe_TracesAndMetrics runs omnigate with SMS and a Slack desk (Events
// API over HTTP) and an in-memory span exporter, and follows what an
// operator sees: a customer's SMS webhook is one trace through the bus,
// pipeline, routing and the desk post; the agent's reply is one trace from
// Slack's event to the provider's send; /metrics, after a forced send
// failure and a dead letter, shows the webhook, the send, the failure, the
// dead letter and the consumers, and passes the exposition lint; and every
// metric the Grafana dashboard queries is exported (operational ones) or is
// one of the analytics service metrics.
func TestServe_TracesAndMetrics(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	defer telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))()
	natsAddr := freeAddr(t)
	g := startLoop(t, "http", []string{"sms"}, fmt.Sprintf("nats:\n  embedded:\n    listen: %s\n", natsAddr))

	cust := g.customer(t, "sms")
	cust.write(t, "Where is my order 7781?")
	root := g.waitRoot(t, slackfake.ChannelSupport)

	// The customer's message: webhook -> bus -> pipeline -> routing -> desk.
	in := waitTrace(t, exp, "webhook sms", "publish omni.in", "process omni.in", "pipeline inbound",
		"publish omni.conv", "process omni.conv", "routing decide", "publish omni.desk", "process omni.desk", "desk post")
	in.parent(t, "publish omni.in", "webhook sms")
	in.parent(t, "process omni.in", "publish omni.in")
	in.parent(t, "pipeline inbound", "process omni.in")
	in.parent(t, "routing decide", "process omni.conv")
	in.parent(t, "desk post", "process omni.desk")
	in.connected(t)

	// The agent's reply, its first send refused by Twilio (a forced failure,
	// retried): Slack's event -> pipeline -> the provider's send.
	g.twilio.Fail(twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error", Times: 1})
	g.agentSays(t, root.Channel, root.TS, agentText)
	if got := cust.waitReply(t); got != plainReply {
		t.Errorf("the customer received %q, want %q", got, plainReply)
	}
	out := waitTrace(t, exp, "webhook slack", "process omni.in", "pipeline outbound", "publish omni.out", "process omni.out", "provider send")
	out.parent(t, "pipeline outbound", "process omni.in")
	out.parent(t, "provider send", "process omni.out")
	out.connected(t)

	// A malformed envelope straight onto the bus: the pipeline dead-letters it.
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(t.Context(), bus.SubjectIn("sms", "sms:+14155550199"), []byte("{not an envelope")); err != nil {
		t.Fatal(err)
	}
	// A forged webhook (no signature), counted at the edge.
	resp, err := http.PostForm(g.base+"/channels/sms/webhook", twiliotest.IncomingMessage("", "+14155550100", twiliotest.From, "x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged webhook answered %d", resp.StatusCode)
	}

	var fams map[string]*dto.MetricFamily
	var text []byte
	bustest.Eventually(t, 20*time.Second, func() error {
		text, fams, err = scrape(g.base + "/metrics")
		if err != nil {
			return err
		}
		for _, want := range []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"omnigate_http_request_duration_seconds", map[string]string{"channel": "sms", "status_class": "2xx"}, 1},
			{"omnigate_http_request_duration_seconds", map[string]string{"channel": "slack", "status_class": "2xx"}, 1},
			{"omnigate_adapter_send_duration_seconds", map[string]string{"adapter": "sms", "result": "ok"}, 1},
			{"omnigate_adapter_send_duration_seconds", map[string]string{"adapter": "sms", "result": "error"}, 1},
			{"omnigate_adapter_send_duration_seconds", map[string]string{"adapter": "slack", "result": "ok"}, 1},
			{"omnigate_adapter_send_failures_total", map[string]string{"adapter": "sms"}, 1},
			{"omnigate_adapter_ready", map[string]string{"adapter": "sms", "kind": "channel"}, 1},
			{"omnigate_adapter_ready", map[string]string{"adapter": "slack", "kind": "desk"}, 1},
			{"omnigate_bus_dlq_messages", map[string]string{"stage": "pipeline"}, 1},
			{"omnigate_bus_consumer_pending", map[string]string{"consumer": "send-sms"}, 0},
			{"omnigate_bus_redeliveries_total", map[string]string{"consumer": "send-sms"}, 0},
			{"omnigate_http_rejected_requests_total", map[string]string{"channel": "sms", "reason": "signature"}, 1},
			{"omnigate_store_operation_duration_seconds", map[string]string{"operation": "get", "backend": "kv"}, 1},
			{"omnigate_store_operation_duration_seconds", map[string]string{"operation": "update", "backend": "kv"}, 1},
		} {
			v, ok := sum(fams[want.name], want.labels)
			if !ok || v < want.min {
				return fmt.Errorf("%s%v = %v (present %v), want at least %v", want.name, want.labels, v, ok, want.min)
			}
		}
		return nil
	})
	if v, _ := sum(fams["omnigate_bus_dlq_messages"], map[string]string{"stage": "pipeline"}); v != 1 {
		t.Errorf("pipeline dead letters %v, want exactly the malformed one", v)
	}
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// The health gauge has no series before its first run (15 s in).
	exported := map[string]dto.MetricType{}
	for name, mf := range fams {
		exported[name] = mf.GetType()
	}
	for _, name := range describedNames(t, func(reg prometheus.Registerer) error {
		_, err := newHealth(&gateway{}, reg, slog.New(slog.DiscardHandler), time.Hour)
		return err
	}) {
		if _, ok := exported[name]; !ok {
			exported[name] = dto.MetricType_GAUGE
		}
	}
	checkGrafana(t, exported)
}

// scrape reads url's Prometheus text exposition.
func scrape(url string) ([]byte, map[string]*dto.MetricFamily, error) {
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	return text, fams, err
}

// sum adds the values (a histogram's count) of mf's series that have labels;
// ok is false when none has.
func sum(mf *dto.MetricFamily, labels map[string]string) (v float64, ok bool) {
	if mf == nil {
		return 0, false
	}
series:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, want := range labels {
			if have[k] != want {
				continue series
			}
		}
		ok = true
		switch {
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		}
	}
	return v, ok
}

// spanTrace is the spans of one trace, by name (the first of each name).
type spanTrace struct {
	spans  []tracetest.SpanStub
	byName map[string]tracetest.SpanStub
}

// waitTrace waits for a trace that has a span of every name, and returns it.
func waitTrace(t *testing.T, exp *tracetest.InMemoryExporter, names ...string) *spanTrace {
	t.Helper()
	var found *spanTrace
	bustest.Eventually(t, 20*time.Second, func() error {
		traces := map[string]*spanTrace{}
		for _, sp := range exp.GetSpans() {
			id := sp.SpanContext.TraceID().String()
			tr := traces[id]
			if tr == nil {
				tr = &spanTrace{byName: map[string]tracetest.SpanStub{}}
				traces[id] = tr
			}
			tr.spans = append(tr.spans, sp)
			if _, dup := tr.byName[sp.Name]; !dup {
				tr.byName[sp.Name] = sp
			}
		}
		best := 0
	traces:
		for _, tr := range traces {
			n := 0
			for _, name := range names {
				if _, ok := tr.byName[name]; !ok {
					best = max(best, n)
					continue traces
				}
				n++
			}
			found = tr
			return nil
		}
		return fmt.Errorf("no trace has all of %v (the best has %d of them)", names, best)
	})
	return found
}

// parent checks that every span called child is a child of a span called
// parent.
func (tr *spanTrace) parent(t *testing.T, child, parent string) {
	t.Helper()
	names := map[string]string{}
	for _, sp := range tr.spans {
		names[sp.SpanContext.SpanID().String()] = sp.Name
	}
	for _, sp := range tr.spans {
		if sp.Name != child {
			continue
		}
		if got := names[sp.Parent.SpanID().String()]; got != parent {
			t.Errorf("%q's parent is %q, want %q", child, got, parent)
		}
	}
}

// connected checks that every span but one root has its parent in the trace.
func (tr *spanTrace) connected(t *testing.T) {
	t.Helper()
	ids := map[string]bool{}
	for _, sp := range tr.spans {
		ids[sp.SpanContext.SpanID().String()] = true
	}
	roots := 0
	for _, sp := range tr.spans {
		if !sp.Parent.SpanID().IsValid() {
			roots++
		} else if !ids[sp.Parent.SpanID().String()] {
			t.Errorf("span %q has a parent outside its trace's exported spans", sp.Name)
		}
	}
	if roots != 1 {
		t.Errorf("trace has %d roots, want 1", roots)
	}
	var names []string
	for _, sp := range tr.spans {
		names = append(names, sp.Name)
	}
	t.Logf("trace %s: %s", tr.spans[0].SpanContext.TraceID(), strings.Join(names, ", "))
}

// describer is a Registerer that keeps the names of the metrics registered on it.
type describer struct{ names []string }

// fqName reads a metric's name out of its Desc's description.
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names = append(d.names, m[1])
		}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

// describedNames are the names of the metrics that register registers.
func describedNames(t *testing.T, register func(prometheus.Registerer) error) []string {
	t.Helper()
	d := &describer{}
	if err := register(d); err != nil {
		t.Fatal(err)
	}
	return d.names
}

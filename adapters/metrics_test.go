package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/telemetry"
)

// TestRuntime_Metrics sends one reply that goes through and one the provider
// refuses for good, and flips the adapter's readiness: the send latency,
// the failure by reason and the ready gauge follow.
func TestRuntime_Metrics(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	a.set(func(a *rtAdapter) {
		a.send = func(_ context.Context, _ int, m *core.Message) (adapters.Receipt, error) {
			if m.Text == "refused" {
				return adapters.Receipt{}, bus.Permanent(errors.New("provider: invalid recipient"))
			}
			return adapters.Receipt{ProviderID: "p-" + m.ID}, nil
		}
	})
	reg := prometheus.NewPedanticRegistry()
	startMeasured(t, env, a, adapters.Channel, reg)
	ok, refused := reply("rt:1"), reply("rt:2")
	refused.Text = "refused"
	env.PublishOutbound(t, ok, "")
	env.WaitSent(t, env.PublishOutbound(t, refused, ""))

	count := func(result string) uint64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "omnigate_adapter_send_duration_seconds" {
				for _, m := range mf.GetMetric() {
					if labelsOf(m.GetLabel())["result"] == result {
						return m.GetHistogram().GetSampleCount()
					}
				}
			}
		}
		return 0
	}
	if count("ok") != 1 || count("error") != 1 {
		t.Errorf("send durations: %d ok, %d error; want 1 and 1", count("ok"), count("error"))
	}
	want := `
# HELP omnigate_adapter_ready 1 when the adapter is ready (its Run is up and its provider reachable, as /healthz shows), else 0.
# TYPE omnigate_adapter_ready gauge
omnigate_adapter_ready{adapter="rt",kind="channel"} 1
# HELP omnigate_adapter_send_failures_total Sends that failed, by adapter and reason: permanent (dead-lettered), rate_limited, unavailable, unreachable (the recipient, tried on another channel) or error (retried).
# TYPE omnigate_adapter_send_failures_total counter
omnigate_adapter_send_failures_total{adapter="rt",reason="error"} 0
omnigate_adapter_send_failures_total{adapter="rt",reason="permanent"} 1
omnigate_adapter_send_failures_total{adapter="rt",reason="rate_limited"} 0
omnigate_adapter_send_failures_total{adapter="rt",reason="unavailable"} 0
omnigate_adapter_send_failures_total{adapter="rt",reason="unreachable"} 0
`
	bustest.Eventually(t, 5*time.Second, func() error {
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "omnigate_adapter_ready", "omnigate_adapter_send_failures_total")
	})
	a.set(func(a *rtAdapter) { a.readyErr = errors.New("provider unreachable") })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP omnigate_adapter_ready 1 when the adapter is ready (its Run is up and its provider reachable, as /healthz shows), else 0.
# TYPE omnigate_adapter_ready gauge
omnigate_adapter_ready{adapter="rt",kind="channel"} 0
`), "omnigate_adapter_ready"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestRuntime_SendSpan: with tracing on, the provider's send is a client span
// in the trace of the reply's publish.
func TestRuntime_SendSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	defer telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))()
	env := adaptertest.NewEnv(t, "rt")
	startMeasured(t, env, newRTAdapter("rt"), adapters.Channel, prometheus.NewRegistry())
	env.WaitSent(t, env.PublishOutbound(t, reply("rt:1"), ""))
	var publish, process, send *tracetest.SpanStub
	bustest.Eventually(t, 5*time.Second, func() error {
		spans := exp.GetSpans()
		for i := range spans {
			switch sp := &spans[i]; {
			case sp.Name == "publish omni.out" && publish == nil:
				publish = sp
			case sp.Name == "process omni.out":
				process = sp
			case sp.Name == "provider send":
				send = sp
			}
		}
		if publish == nil || process == nil || send == nil {
			return fmt.Errorf("spans so far: %d", len(spans))
		}
		return nil
	})
	if send.Parent.SpanID() != process.SpanContext.SpanID() || process.Parent.SpanID() != publish.SpanContext.SpanID() ||
		send.SpanContext.TraceID() != publish.SpanContext.TraceID() {
		t.Errorf("provider send is not in the reply's trace: send parent %s, process %s (parent %s), publish %s",
			send.Parent.SpanID(), process.SpanContext.SpanID(), process.Parent.SpanID(), publish.SpanContext.SpanID())
	}
}

// labelsOf maps label pairs by name.
func labelsOf(pairs []*dto.LabelPair) map[string]string {
	out := map[string]string{}
	for _, l := range pairs {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

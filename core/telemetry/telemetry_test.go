package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/telemetry"
)

var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/core/telemetry_test")

func TestStart_OffIsNoop(t *testing.T) {
	if telemetry.Enabled() {
		t.Fatal("tracing is on before anything installed a provider")
	}
	ctx := t.Context()
	got, span := tracer.Start(ctx, "x")
	if got != ctx || span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatalf("tracing off: Start changed the context or returned a live span")
	}
	telemetry.End(span, errors.New("boom")) // must not panic
	carrier := propagation.MapCarrier{}
	telemetry.Inject(ctx, carrier)
	if len(carrier) != 0 {
		t.Fatalf("tracing off: Inject wrote %v", carrier)
	}
}

func TestUse_ParentsAndPropagation(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := telemetry.Use(tp)
	ctx, parent := tracer.Start(t.Context(), "parent", telemetry.KindProducer)
	carrier := propagation.MapCarrier{}
	telemetry.Inject(ctx, carrier)
	if !strings.HasPrefix(carrier["traceparent"], "00-"+parent.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent = %q, want the parent's trace id", carrier["traceparent"])
	}
	parent.End()
	remote := telemetry.Extract(context.Background(), carrier)
	_, child := tracer.Start(remote, "child", telemetry.KindConsumer)
	telemetry.End(child, errors.New("handler failed"))
	restore()
	if telemetry.Enabled() {
		t.Fatal("restore left tracing on")
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	c := spans[1]
	if c.Parent.SpanID() != spans[0].SpanContext.SpanID() || c.SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
		t.Errorf("child's parent %s, want %s in the same trace", c.Parent.SpanID(), spans[0].SpanContext.SpanID())
	}
	if c.SpanKind != trace.SpanKindConsumer || c.Status.Code != codes.Error || c.Status.Description != "handler failed" {
		t.Errorf("child kind %v status %+v", c.SpanKind, c.Status)
	}
}

// TestSetup_ExportsOTLPHTTP runs Setup against a collector stand-in that
// speaks OTLP/HTTP and checks that spans arrive there on shutdown.
func TestSetup_ExportsOTLPHTTP(t *testing.T) {
	var posts atomic.Int32
	var path, ctype atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		ctype.Store(r.Header.Get("Content-Type"))
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	shutdown, err := telemetry.Setup(t.Context(), telemetry.Options{Endpoint: srv.URL, SampleRatio: 1, ServiceName: "omnigate-test"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracer.Start(t.Context(), "webhook sms", telemetry.KindServer)
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no export reached the collector")
	}
	if p, _ := path.Load().(string); p != "/v1/traces" {
		t.Errorf("exported to %q, want /v1/traces", p)
	}
	if ct, _ := ctype.Load().(string); ct != "application/x-protobuf" {
		t.Errorf("content type %q", ct)
	}
	if telemetry.Enabled() {
		t.Error("shutdown left tracing on")
	}
}

func TestSetup_Errors(t *testing.T) {
	for _, tc := range []struct{ name, endpoint, protocol, want string }{
		{"scheme", "otel:4318", "", "want http://host:port"},
		{"protocol", "http://otel:4318", "thrift", "want http/protobuf or grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := telemetry.Setup(t.Context(), telemetry.Options{Endpoint: tc.endpoint, Protocol: tc.protocol})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	shutdown, err := telemetry.Setup(t.Context(), telemetry.Options{})
	if err != nil || telemetry.Enabled() {
		t.Fatalf("empty endpoint: err %v, enabled %v", err, telemetry.Enabled())
	}
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestStart_OffAllocatesNothing: with tracing off a span site costs no
// allocation (the hot path's promise).
func TestStart_OffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	carrier := propagation.MapCarrier{}
	n := testing.AllocsPerRun(1000, func() {
		c, span := tracer.Start(ctx, "pipeline inbound")
		telemetry.Inject(c, carrier)
		telemetry.End(span, nil)
	})
	if n != 0 {
		t.Errorf("%v allocations per span site with tracing off, want 0", n)
	}
}

// BenchmarkTelemetry_SpanSite is one span site (Start, End) with tracing off
// and on (an SDK provider that samples everything, exporting nowhere).
func BenchmarkTelemetry_SpanSite(b *testing.B) {
	ctx := context.Background()
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "pipeline inbound")
			telemetry.End(span, nil)
		}
	})
	b.Run("on", func(b *testing.B) {
		defer telemetry.Use(sdktrace.NewTracerProvider())()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "pipeline inbound")
			telemetry.End(span, nil)
		}
	})
}

// TestSetup_GRPC builds the gRPC exporter (it connects lazily) and shuts it
// down with nothing to send.
func TestSetup_GRPC(t *testing.T) {
	shutdown, err := telemetry.Setup(t.Context(), telemetry.Options{Endpoint: "http://127.0.0.1:1", Protocol: telemetry.ProtocolGRPC, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !telemetry.Enabled() {
		t.Fatal("tracing off after Setup")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

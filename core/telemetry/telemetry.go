// Package telemetry is omnigate's tracing: OpenTelemetry spans for one
// customer message across webhook, bus, pipeline, routing and desk, and for
// one reply back to the provider's send, with the W3C trace context carried in
// NATS message headers.
//
// Tracing is off by default, and then costs the hot path one atomic load per
// span site: code that starts a span calls Start (or checks Enabled first),
// which returns a no-op span without touching the OpenTelemetry API. serve
// turns it on from the telemetry.tracing section with Setup; tests install an
// in-memory exporter with Use.
package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// provider is the tracer provider installed by Setup or Use; nil while
// tracing is off. omnigate keeps its own instead of OpenTelemetry's global
// one, whose tracers bind to the first provider ever set and never follow a
// later one (a test's, a restarted serve's).
var provider atomic.Pointer[installed]

// installed is one installed provider.
type installed struct{ tp trace.TracerProvider }

// Enabled reports whether tracing is on. A hot path that builds span options
// or attributes checks it first, so that tracing off costs one atomic load.
func Enabled() bool { return provider.Load() != nil }

// noopSpan is what Start returns while tracing is off.
var noopSpan trace.Span = noop.Span{}

// Tracer starts the spans of one package. Packages keep one in a package
// variable (NewTracer with their import path): it follows the provider that
// Setup or Use installs later. Safe for concurrent use.
type Tracer struct{ name string }

// NewTracer returns the Tracer of the package called name (its import path).
func NewTracer(name string) *Tracer { return &Tracer{name: name} }

// Start starts a span called name, a child of the span in ctx, when tracing
// is on; otherwise it returns ctx and a no-op span at the cost of one atomic
// load. name must come from a small fixed set (a stage, a stream, a
// channel): trace backends group spans by name.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	in := provider.Load()
	if in == nil {
		return ctx, noopSpan
	}
	return in.tp.Tracer(t.name).Start(ctx, name, opts...)
}

// End ends span, recording err (if any) as its error status. On the no-op
// span of a Start with tracing off it costs nothing measurable.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// propagator is the W3C trace context and baggage propagator.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Inject writes the trace context of ctx (traceparent, tracestate, baggage)
// into carrier, when tracing is on and ctx carries a span.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	if Enabled() {
		propagator.Inject(ctx, carrier)
	}
}

// Extract returns ctx with the remote trace context carried in carrier, when
// tracing is on; otherwise ctx.
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if !Enabled() {
		return ctx
	}
	return propagator.Extract(ctx, carrier)
}

// Protocols of Options.Protocol.
const (
	// ProtocolHTTP is OTLP over HTTP with protobuf bodies (port 4318).
	ProtocolHTTP = "http/protobuf"
	// ProtocolGRPC is OTLP over gRPC (port 4317).
	ProtocolGRPC = "grpc"
)

// Options are what Setup needs; serve fills them from telemetry.tracing.
type Options struct {
	// Endpoint is the collector's URL, e.g. http://otel-collector:4318 (for
	// OTLP/HTTP, spans go to its /v1/traces unless the URL has a path) or
	// http://otel-collector:4317 for gRPC. http:// sends in the clear,
	// https:// over TLS. Empty leaves tracing off.
	Endpoint string
	// Protocol is ProtocolHTTP (default) or ProtocolGRPC.
	Protocol string
	// SampleRatio is the share of traces recorded, 0 to 1, for traces that
	// start here; a message arriving with a sampled trace context is followed
	// as its sender decided (parent based).
	SampleRatio float64
	// ServiceName is the service.name resource attribute; default "omnigate".
	ServiceName string
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
	// Headers are sent with every export, e.g. a collector's API key.
	Headers map[string]string
}

// Setup turns tracing on with an OTLP exporter to opts.Endpoint behind a
// batch span processor, installed as the global tracer provider with the W3C
// trace context and baggage propagators. It does no network I/O: spans are
// exported in the background, and an unreachable collector costs dropped
// spans, never a message. The returned shutdown flushes what is buffered and
// turns tracing off; call it once, at the end of serve. With an empty
// Endpoint, Setup does nothing and shutdown is a no-op.
func Setup(ctx context.Context, opts Options) (shutdown func(context.Context) error, err error) {
	if opts.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := exporter(ctx, opts)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cmp.Or(opts.ServiceName, "omnigate")),
		semconv.ServiceVersion(opts.ServiceVersion)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
	)
	restore := Use(tp)
	return func(ctx context.Context) error {
		restore()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("telemetry: flush spans: %w", err)
		}
		return nil
	}, nil
}

// exporter builds the OTLP exporter of opts.
func exporter(ctx context.Context, opts Options) (*otlptrace.Exporter, error) {
	u, err := url.Parse(opts.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: tracing endpoint %q: want http://host:port or https://host:port", opts.Endpoint)
	}
	insecure := u.Scheme == "http"
	switch cmp.Or(opts.Protocol, ProtocolHTTP) {
	case ProtocolHTTP:
		o := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithHeaders(opts.Headers)}
		if p := strings.TrimRight(u.Path, "/"); p != "" {
			o = append(o, otlptracehttp.WithURLPath(p))
		}
		if insecure {
			o = append(o, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, o...)
	case ProtocolGRPC:
		o := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host), otlptracegrpc.WithHeaders(opts.Headers)}
		if insecure {
			o = append(o, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, o...)
	default:
		return nil, fmt.Errorf("telemetry: tracing protocol %q: want %s or %s", opts.Protocol, ProtocolHTTP, ProtocolGRPC)
	}
}

// Use installs tp as the tracer provider and turns tracing on; restore puts
// back what was there before. Tests use it with an in-memory exporter
// (go.opentelemetry.io/otel/sdk/trace/tracetest); tests that call it must not
// run in parallel with other tracing tests of their package.
func Use(tp trace.TracerProvider) (restore func()) {
	prev := provider.Swap(&installed{tp: tp})
	return func() { provider.Store(prev) }
}

// Server and client span kinds, re-exported so that span sites need not
// import the OpenTelemetry trace API for the common cases.
var (
	// KindServer marks a span that serves a request from outside (a webhook).
	KindServer = trace.WithSpanKind(trace.SpanKindServer)
	// KindClient marks a span that calls out (a provider's API).
	KindClient = trace.WithSpanKind(trace.SpanKindClient)
	// KindProducer marks a span that publishes a message.
	KindProducer = trace.WithSpanKind(trace.SpanKindProducer)
	// KindConsumer marks a span that processes a delivered message.
	KindConsumer = trace.WithSpanKind(trace.SpanKindConsumer)
)

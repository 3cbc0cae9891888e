package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/telemetry"
)

// TestBus_TraceContextCrossesNATS publishes within a span and checks that the
// handler runs in the same trace: publish span child of the caller's, process
// span child of the publish span (carried in the traceparent header), the
// handler's ctx carrying the process span.
func TestBus_TraceContextCrossesNATS(t *testing.T) {
	s := bustest.RunServer(t)
	b := openExternal(t, s)
	exp := tracetest.NewInMemoryExporter()
	restore := telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	defer restore()

	seen := make(chan trace.SpanContext, 1)
	header := make(chan string, 1)
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "send-trace", Filters: []string{bus.SubjectOut("trace")}},
		func(ctx context.Context, d *bus.Delivery) error {
			seen <- trace.SpanContextFromContext(ctx)
			header <- d.Header.Get("traceparent")
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	tracer := sdktrace.NewTracerProvider().Tracer("test") // a root span of its own provider
	ctx, root := tracer.Start(t.Context(), "webhook")
	if _, err := b.Publish(ctx, bus.SubjectOut("trace"), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	var got trace.SpanContext
	select {
	case got = <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	root.End()
	if got.TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("handler's trace %s, want the publisher's %s", got.TraceID(), root.SpanContext().TraceID())
	}
	if h := <-header; len(h) != 55 || h[3:35] != root.SpanContext().TraceID().String() {
		t.Errorf("traceparent header %q", h)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		if len(exp.GetSpans()) < 2 {
			return errNotYet
		}
		return nil
	})
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byName[sp.Name] = sp
	}
	pub, proc := byName["publish omni.out"], byName["process omni.out"]
	if pub.Parent.SpanID() != root.SpanContext().SpanID() || pub.SpanKind != trace.SpanKindProducer {
		t.Errorf("publish span: parent %s kind %v, want the caller's span %s, producer", pub.Parent.SpanID(), pub.SpanKind, root.SpanContext().SpanID())
	}
	if proc.Parent.SpanID() != pub.SpanContext.SpanID() || proc.SpanKind != trace.SpanKindConsumer || proc.SpanContext.SpanID() != got.SpanID() {
		t.Errorf("process span: parent %s kind %v, want the publish span %s, consumer, the handler's span", proc.Parent.SpanID(), proc.SpanKind, pub.SpanContext.SpanID())
	}
	attrs := map[string]string{}
	for _, a := range proc.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["messaging.system"] != "nats" || attrs["messaging.destination.name"] != "omni.out.trace" || attrs["messaging.consumer.group.name"] != "send-trace" {
		t.Errorf("process span attributes %v", attrs)
	}
}

// errNotYet is a polling condition not met yet.
var errNotYet = errors.New("not yet")

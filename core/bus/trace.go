package bus

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/telemetry"
)

// tracer starts the bus's publish and process spans.
var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/core/bus")

// HeaderCarrier carries a W3C trace context (traceparent, tracestate) in NATS
// message headers, for the OpenTelemetry propagators. Keys are used as given:
// NATS headers are case-sensitive, and the propagators write lower case.
type HeaderCarrier nats.Header

// Get returns the first value of key, or "".
func (h HeaderCarrier) Get(key string) string { return nats.Header(h).Get(key) }

// Set replaces the values of key with value.
func (h HeaderCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// natsSystem is the messaging.system attribute of every bus span.
var natsSystem = semconv.MessagingSystemKey.String("nats")

// rootOf is the subject root (omni.in, omni.out, ...) of subject, the bounded
// part of a span name; "other" for a subject outside omnigate's streams.
func rootOf(subject string) string {
	for _, r := range [...]string{RootIn, RootConv, RootDesk, RootOut, RootEvt, RootDLQ} {
		if strings.HasPrefix(subject, r) && len(subject) > len(r) && subject[len(r)] == '.' {
			return r
		}
	}
	return "other"
}

// startPublish starts the producer span of publishing m, when tracing is on,
// and writes its trace context into m's headers so that the consumer's span
// continues the trace.
func startPublish(ctx context.Context, m *nats.Msg) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "publish "+rootOf(m.Subject), telemetry.KindProducer,
		trace.WithAttributes(natsSystem, semconv.MessagingOperationTypeSend, semconv.MessagingDestinationName(m.Subject)))
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	telemetry.Inject(ctx, HeaderCarrier(m.Header))
	return ctx, span
}

// startProcess starts the consumer span of handling d, a child of the trace
// context its publisher put in its headers, when tracing is on.
func (c *Consumer) startProcess(ctx context.Context, d *Delivery) (context.Context, trace.Span) {
	ctx = telemetry.Extract(ctx, HeaderCarrier(d.Header))
	return tracer.Start(ctx, "process "+rootOf(d.Subject), telemetry.KindConsumer,
		trace.WithAttributes(natsSystem, semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(d.Subject),
			semconv.MessagingConsumerGroupName(c.spec.Durable),
			attribute.Int64("messaging.nats.stream.sequence", int64(d.StreamSeq)),
			attribute.Int64("messaging.nats.delivered", int64(d.NumDelivered))))
}

package bus_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/telemetry"
)

// wellFormed is a traceparent as omnigate writes it.
var wellFormed = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// FuzzHeaderCarrier_Extract feeds the trace context headers an outside
// publisher (an out-of-process adapter, a replayed dead letter) may put on a
// message: extraction never panics, a context is taken only from a valid
// traceparent, and what a consumer passes on is well formed.
func FuzzHeaderCarrier_Extract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "a=b,c=d")
	f.Add("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "")
	f.Add("garbage", "=,,=")
	f.Add("", strings.Repeat("k=v,", 40))
	defer telemetry.Use(sdktrace.NewTracerProvider())()
	f.Fuzz(func(t *testing.T, parent, state string) {
		h := nats.Header{}
		h.Set("traceparent", parent)
		h.Set("tracestate", state)
		ctx := telemetry.Extract(context.Background(), bus.HeaderCarrier(h))
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return
		}
		if !strings.Contains(strings.ToLower(parent), sc.TraceID().String()) || !strings.Contains(strings.ToLower(parent), sc.SpanID().String()) {
			t.Fatalf("traceparent %q gave trace %s span %s, not in it", parent, sc.TraceID(), sc.SpanID())
		}
		out := nats.Header{}
		telemetry.Inject(ctx, bus.HeaderCarrier(out))
		if got := out.Get("traceparent"); !wellFormed.MatchString(got) {
			t.Fatalf("traceparent %q passed on as %q", parent, got)
		}
	})
}

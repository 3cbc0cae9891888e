package bus

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Recover turns a panicking handler into an error, so the message is retried
// and finally dead-lettered instead of killing the process.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d *Delivery) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("handler panic", "subject", d.Subject, "seq", d.StreamSeq, "panic", r, "stack", string(debug.Stack()))
					err = fmt.Errorf("handler panic: %v", r)
				}
			}()
			return next(ctx, d)
		}
	}
}

// Timeout bounds one attempt of a handler. It may exceed the consumer's
// AckWait: a consumer keeps the deliveries it holds alive (InProgress).
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, dl *Delivery) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, dl)
		}
	}
}

// Logging logs each delivery at debug level and failures at warn level, with
// subject, sequence and delivery count; bodies are never logged. Failures
// retried in place because a dependency is unavailable stay at debug level:
// the bus logs those once per interval with counts.
func Logging(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d *Delivery) error {
			start := time.Now()
			err := next(ctx, d)
			attrs := []any{"subject", d.Subject, "seq", d.StreamSeq, "delivery", d.NumDelivered, "took", time.Since(start)}
			switch {
			case RetriedInPlace(err):
				// Retried in place; the bus says once per interval what waits.
				log.Debug("handler failed, dependency unavailable", append(attrs, "err", err)...)
			case err != nil:
				log.Warn("handler failed", append(attrs, "err", err)...)
			default:
				log.Debug("handled", attrs...)
			}
			return err
		}
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by calls on a Bus after Close.
var ErrClosed = errors.New("bus: closed")

// ErrStoreInUse is returned by Open when another process runs an embedded
// server on the same store dir (omnigate serve, most likely): connect to that
// server instead (Options.URL).
var ErrStoreInUse = errors.New("bus: the embedded NATS store is in use by another process")

// storeLockFile is the file in the store dir an embedded server holds locked.
const storeLockFile = "omnigate.lock"

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry can fix (malformed input, an unknown
// recipient): a handler returning it sends the message to the dead-letter queue at
// once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfterError asks for redelivery after at least Delay, e.g. when a provider
// answered 429 with Retry-After.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

// Error says what failed and when to retry.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay)
}

// Unwrap returns the error that asked for the retry.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so the message is redelivered no sooner than d.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: d}
}

// RetryDelay returns the delay a RetryAfter error asks for, if err carries one.
func RetryDelay(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.Delay, true
	}
	return 0, false
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string     { return e.err.Error() }
func (e *unavailableError) Unwrap() error     { return e.err }
func (e *unavailableError) Unavailable() bool { return true }

// Unavailable marks err as caused by a dependency that is down or refusing
// work (a store, the bus, a provider's 5xx), not by the message: a handler
// returning it is retried in place, with a capped backoff, for as long as the
// outage lasts, and the message is never dead-lettered for it. Unavailable(nil)
// is nil. A package that cannot import bus marks its errors the same way with
// a method Unavailable() bool that returns true.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}

// IsUnavailable reports whether err says a dependency is unavailable rather
// than that the message is bad: it, or an error it wraps, was marked with
// Unavailable (or has an Unavailable() bool method that returns true), is a
// network error (connection refused or reset, a timeout), a NATS connection or
// request failure, or a deadline that ran out. A Permanent error never is.
func IsUnavailable(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) {
		return u.Unavailable()
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, target := range unavailableErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// unavailableErrors are the errors of the network, NATS and JetStream that say
// the server or the network failed, not the request.
var unavailableErrors = []error{
	context.DeadlineExceeded,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED,
	nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed, nats.ErrDisconnected,
	nats.ErrConnectionReconnecting, nats.ErrConnectionDraining, nats.ErrNoServers, nats.ErrStaleConnection,
	jetstream.ErrNoStreamResponse, jetstream.ErrNoHeartbeat, jetstream.ErrJetStreamNotEnabled,
	jetstream.ErrConsumerLeadershipChanged,
}

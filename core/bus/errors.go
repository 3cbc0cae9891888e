package bus

import (
	"errors"
	"fmt"
	"time"
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

package edge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrTooLarge matches a ReadBody error for a body over the endpoint's limit:
// answer 413.
var ErrTooLarge = errors.New("request body too large")

// ErrBodyTimeout matches a body read error when the body did not arrive
// within the Edge's body timeout: answer 408. The connection is closed after
// the answer.
var ErrBodyTimeout = errors.New("request body not received in time")

// ReadBody reads r's whole body, which may be at most limit bytes, for a
// handler that needs all of it (to check a signature over it). A body
// declared larger (Content-Length) is refused before a byte of it is read;
// one that turns out larger is refused after limit+1 bytes. Either error
// matches ErrTooLarge, and the connection is closed after the answer. Status
// maps the errors to their HTTP statuses; their text is fit for the answer.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		// An unread body this large would be drained or the connection
		// closed by the server; say which.
		w.Header().Set("Connection", "close")
		return nil, tooLarge(limit)
	}
	return io.ReadAll(LimitBody(w, r, limit))
}

// LimitBody is r's body, limited to limit bytes like http.MaxBytesReader,
// whose read errors match ErrTooLarge beyond the limit and ErrBodyTimeout
// past the body timeout, for handlers that decode a body as a stream.
func LimitBody(w http.ResponseWriter, r *http.Request, limit int64) io.Reader {
	return &limitedBody{r: http.MaxBytesReader(w, r.Body, limit), limit: limit}
}

type limitedBody struct {
	r     io.Reader
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		err = tooLarge(b.limit)
	}
	return n, err
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w: at most %d bytes here", ErrTooLarge, limit)
}

// Status is the HTTP status to answer a body read error with: 413 for
// ErrTooLarge (or an http.MaxBytesError), 408 for ErrBodyTimeout, 400 for
// anything else.
func Status(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok || errors.Is(err, ErrTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	if errors.Is(err, ErrBodyTimeout) {
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}

// deadlineBody is a request body under the Edge's read deadline.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
	w  http.ResponseWriter
	r  *http.Request
	e  *Edge
	// Set by the goroutine that reads the body (the handler's).
	done, timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.done {
			b.done = true
			// Read to its end: lift the deadline, or the server's wait for the
			// next request on this connection would end the handler's context
			// when it passes.
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case isTimeout(err):
		if !b.timedOut {
			b.timedOut = true
			b.w.Header().Set("Connection", "close")
			b.e.reject(b.e.log, b.e.channel(b.r), BodyTimeout, "request body not received in time, connection closed",
				"path", b.r.URL.Path, "remote", b.r.RemoteAddr, "timeout", b.e.cfg.BodyTimeout)
		}
		err = fmt.Errorf("%w within %s: %w", ErrBodyTimeout, b.e.cfg.BodyTimeout, err)
	}
	return n, err
}

// isTimeout reports whether err is a read that passed its deadline.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

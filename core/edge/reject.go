package edge

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Reason is why a request was refused: the reason label of
// omnigate_http_rejected_requests_total, one of a fixed few.
type Reason string

// The reasons a request is refused.
const (
	// Signature: the request's signature, secret token or bearer token is
	// missing or wrong (forged, or a configuration mistake).
	Signature Reason = "signature"
	// Account: validly signed, but for another account than the configured one.
	Account Reason = "account"
	// TooLarge: the body is larger than the endpoint accepts (413).
	TooLarge Reason = "too_large"
	// BodyTimeout: the body did not arrive within http.body_timeout.
	BodyTimeout Reason = "body_timeout"
)

// Reject records that the handler for channel refused r for reason: it
// counts it in omnigate_http_rejected_requests_total{channel,reason} and
// logs msg with args at Warn on log, but for one channel and reason at most
// one line per interval. The line has the attribute "rejected": how many
// refusals it stands for (1, or all those held back since the previous
// line, which is written when the interval is over). channel must be one of
// a small fixed set (an adapter's name). Outside an Edge's Handler, Reject
// logs every call and counts nothing. Safe for concurrent use.
func Reject(r *http.Request, log *slog.Logger, channel string, reason Reason, msg string, args ...any) {
	e := from(r)
	if e == nil {
		log.Warn(msg, args...)
		return
	}
	e.reject(log, channel, reason, msg, args...)
}

func (e *Edge) reject(log *slog.Logger, channel string, reason Reason, msg string, args ...any) {
	e.rejected.WithLabelValues(channel, string(reason)).Inc()
	e.throttle.warn(channel+"\x00"+string(reason), log, msg, args)
}

// throttle writes at most one log line per key and interval. The first
// line of a quiet key is written at once; what comes within the interval
// after it is held back, counted, and written as one line when the
// interval is over.
type throttle struct {
	interval time.Duration

	mu     sync.Mutex // guards the fields below
	keys   map[string]*held
	closed bool
}

// held is what a throttle holds for one key.
type held struct {
	last  time.Time   // when its last line was written
	n     int         // refusals since then, not yet written
	timer *time.Timer // writes them at last+interval; nil when none are held
	// The logger, message and attributes of the latest refusal held back.
	log  *slog.Logger
	msg  string
	args []any
}

func newThrottle(interval time.Duration) *throttle {
	return &throttle{interval: interval, keys: map[string]*held{}}
}

// warn writes msg now or holds it back.
func (t *throttle) warn(key string, log *slog.Logger, msg string, args []any) {
	now := time.Now()
	t.mu.Lock()
	h := t.keys[key]
	if h == nil {
		h = &held{}
		t.keys[key] = h
	}
	if t.closed || (h.timer == nil && now.Sub(h.last) >= t.interval) {
		h.last = now
		t.mu.Unlock()
		log.Warn(msg, append(args[:len(args):len(args)], "rejected", 1)...)
		return
	}
	h.n++
	h.log, h.msg, h.args = log, msg, args
	if h.timer == nil {
		h.timer = time.AfterFunc(h.last.Add(t.interval).Sub(now), func() { t.flush(key) })
	}
	t.mu.Unlock()
}

// flush writes what key holds back.
func (t *throttle) flush(key string) {
	t.mu.Lock()
	h := t.keys[key]
	n, log, msg, args := h.n, h.log, h.msg, h.args
	h.n, h.timer, h.log, h.args = 0, nil, nil, nil
	h.last = time.Now()
	t.mu.Unlock()
	if n > 0 {
		log.Warn(msg, append(args[:len(args):len(args)], "rejected", n)...)
	}
}

// close stops the timers and writes what is held back; later refusals are
// each logged.
func (t *throttle) close() {
	t.mu.Lock()
	t.closed = true
	var pending []string
	for key, h := range t.keys {
		if h.timer != nil && h.timer.Stop() {
			pending = append(pending, key)
		}
	}
	t.mu.Unlock()
	for _, key := range pending {
		t.flush(key)
	}
}

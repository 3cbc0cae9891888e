package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/sign"
)

// Header names of the protocol.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of timestamp "." body.
	HeaderSignature = "X-Omnigate-Signature"
	// HeaderTimestamp is the signing time in Unix seconds.
	HeaderTimestamp = "X-Omnigate-Timestamp"
	// HeaderEvent is the event type of a delivery: ticket.created, ticket.updated
	// or ticket.commented.
	HeaderEvent = "X-Omnigate-Event"
	// HeaderDelivery is the delivery's id, the same on every retry of it: a
	// receiver deduplicates on it.
	HeaderDelivery = "X-Omnigate-Delivery"
)

// Errors of Verify. All of them match ErrUnauthorized: answer 401.
var (
	// ErrUnauthorized is matched by every verification failure.
	ErrUnauthorized = errors.New("webhook: unauthorized")
	// ErrNoSignature: a signature or timestamp header is missing or malformed.
	ErrNoSignature = &verifyError{"webhook: missing or malformed " + HeaderSignature + " or " + HeaderTimestamp}
	// ErrBadSignature: the signature does not match the body.
	ErrBadSignature = &verifyError{"webhook: signature does not match"}
	// ErrStale: the timestamp is outside the tolerance, a replay or a skewed clock.
	ErrStale = &verifyError{"webhook: timestamp outside the tolerance (replayed request or clock skew)"}
	// ErrNoSecret: no secret is configured, so nothing can be verified.
	ErrNoSecret = &verifyError{"webhook: no secret configured"}
)

type verifyError struct{ msg string }

func (e *verifyError) Error() string        { return e.msg }
func (e *verifyError) Is(target error) bool { return target == ErrUnauthorized }

// Sign returns the X-Omnigate-Signature value of body signed at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	return "sha256=" + hex.EncodeToString(sign.SHA256(secret, []byte(strconv.FormatInt(ts, 10)), []byte{'.'}, body))
}

// SetHeaders signs body at now and sets HeaderTimestamp and HeaderSignature on h.
func SetHeaders(h http.Header, secret []byte, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(secret, ts, body))
}

// Verify checks the signature headers in h against body: the HMAC must match
// (compared in constant time) and the timestamp must be within tolerance of now.
// The error matches ErrUnauthorized.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderTimestamp)), 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(h.Get(HeaderSignature)), "sha256=")
	if !ok {
		return ErrNoSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrNoSignature
	}
	if !sign.Check(sha256.New, secret, got, []byte(strconv.FormatInt(ts, 10)), []byte{'.'}, body) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

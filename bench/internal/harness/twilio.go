package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/adapters/sms"
)

// Twilio credentials of the fake account the webhooks are signed for and the
// SMS channel is configured with.
const (
	AccountSID = "AC0000000000000000000000000000beef"
	AuthToken  = "bench-auth-token"
	FromNumber = "+15005550006"
)

// SentSMS is one message omnigate asked the fake Twilio to send.
type SentSMS struct {
	To, Body string
	// At is when the request arrived.
	At time.Time
}

// Twilio is a fake Twilio REST API: it answers the account fetch that the SMS
// adapter's readiness makes, accepts every message send with 201, and, when
// recording, keeps what was sent. Its methods are safe for concurrent use.
type Twilio struct {
	// URL is the api_base_url of the SMS channel.
	URL string

	srv    *httptest.Server
	record bool
	seq    atomic.Uint64

	mu   sync.Mutex
	sent []SentSMS
}

// NewTwilio starts a fake Twilio on loopback; with record set it keeps every
// message sent (see Sent). Close stops it.
func NewTwilio(record bool) *Twilio {
	t := &Twilio{record: record}
	t.srv = httptest.NewServer(http.HandlerFunc(t.serve))
	t.URL = t.srv.URL
	return t
}

// Close stops the server.
func (t *Twilio) Close() { t.srv.Close() }

// Sent returns the messages received since the fake started, or since the
// last Sent call when drain is set.
func (t *Twilio) Sent(drain bool) []SentSMS {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.sent
	if drain {
		t.sent = nil
	} else {
		out = append([]SentSMS(nil), out...)
	}
	return out
}

func (t *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		fmt.Fprintf(w, `{"sid":%q,"status":"active"}`, AccountSID)
		return
	}
	if t.record && strings.HasSuffix(r.URL.Path, "/Messages.json") {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"code":20001,"message":"bad form","status":400}`)
			return
		}
		m := SentSMS{To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body"), At: time.Now()}
		t.mu.Lock()
		t.sent = append(t.sent, m)
		t.mu.Unlock()
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":"SM%032x","status":"queued"}`, t.seq.Add(1))
}

// SMSWebhook is one incoming SMS, as Twilio posts it.
type SMSWebhook struct {
	// SID is the MessageSid: the same SID posted twice is one message.
	SID string
	// From is the customer's number, Body the text.
	From, Body string
}

// MessageSID formats a 34-character Twilio message SID from a number.
func MessageSID(n uint64) string { return fmt.Sprintf("SM%032x", n) }

// Post sends the webhook, signed with AuthToken for base's URL, to
// base/channels/sms/webhook, and returns the HTTP status. An error means no
// status came back (connection refused, reset, timeout).
func (m SMSWebhook) Post(ctx context.Context, c *http.Client, base string) (int, error) {
	form := url.Values{
		"AccountSid": {AccountSID}, "ApiVersion": {"2010-04-01"}, "Body": {m.Body},
		"From": {m.From}, "To": {FromNumber},
		"MessageSid": {m.SID}, "SmsMessageSid": {m.SID}, "SmsSid": {m.SID}, "SmsStatus": {"received"},
		"NumMedia": {"0"}, "NumSegments": {"1"},
	}
	full := base + "/channels/sms/webhook"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, full, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, sms.Sign(AuthToken, full, form))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

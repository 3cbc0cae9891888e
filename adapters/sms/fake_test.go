package sms_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/sms"
)

// Credentials of the fake account.
const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "authtoken0123456789"
	testFrom    = "+15005550006"
)

// fakeTwilio is an httptest server that speaks Twilio's REST API as
// documented: POST /2010-04-01/Accounts/{AccountSid}/Messages.json with a
// form-encoded body and HTTP basic auth answers 201 with the Message resource
// as JSON; errors answer {code, message, more_info, status}. It records every
// request, and can be told to fail.
type fakeTwilio struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	attempts []url.Values          // every Messages.json request with valid auth
	accepted []url.Values          // those answered 201
	sids     map[string]url.Values // accepted, by the SID given
	fail     *fakeFailure
	media    map[string]fakeMedia
	accounts int // account fetches
}

// fakeFailure is how the fake answers sends while it is set.
type fakeFailure struct {
	status     int
	code       int
	message    string
	retryAfter string
	times      int // answers left; < 0: every one
}

type fakeMedia struct {
	contentType string
	data        []byte
	redirect    string // answer 302 to this URL instead
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{t: t, sids: map[string]url.Values{}, media: map[string]fakeMedia{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Messages.json", f.createMessage)
	mux.HandleFunc("GET /2010-04-01/Accounts/{file}", f.fetchAccount)
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/Messages/{msg}/Media/{media}", f.fetchMedia)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's base URL, for api_base_url.
func (f *fakeTwilio) URL() string { return f.srv.URL }

// failNext makes the next n sends (n < 0: all) fail with status and code;
// status 0 makes them hang until the client gives up.
func (f *fakeTwilio) failNext(n, status, code int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = &fakeFailure{status: status, code: code, retryAfter: retryAfter, times: n,
		message: fmt.Sprintf("fake failure %d", code)}
}

// Attempts returns every send request the fake received with valid auth.
func (f *fakeTwilio) Attempts() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.attempts...)
}

// Accepted returns the sends the fake accepted, in order.
func (f *fakeTwilio) Accepted() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.accepted...)
}

// Sent returns what each accepted message said: its Body, or for a template
// its ContentSid and ContentVariables.
func (f *fakeTwilio) Sent(*testing.T) []string {
	var out []string
	for _, v := range f.Accepted() {
		if v.Get("ContentSid") != "" {
			out = append(out, "template "+v.Get("ContentSid")+" "+v.Get("ContentVariables"))
			continue
		}
		out = append(out, v.Get("Body"))
	}
	return out
}

// addMedia serves a media file at the path of a Twilio media URL and returns
// the URL.
func (f *fakeTwilio) addMedia(name, contentType string, data []byte, redirect string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.media[name] = fakeMedia{contentType: contentType, data: data, redirect: redirect}
	return f.srv.URL + "/2010-04-01/Accounts/" + testAccount + "/Messages/MM" + strings.Repeat("0", 32) + "/Media/" + name
}

func (f *fakeTwilio) authorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != testAccount || pass != testToken {
		writeTwilioError(w, http.StatusUnauthorized, 20003, "Authenticate", "")
		return false
	}
	return true
}

func (f *fakeTwilio) createMessage(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	if r.PathValue("account") != testAccount {
		writeTwilioError(w, http.StatusNotFound, 20404, "The requested resource was not found", "")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeTwilioError(w, http.StatusBadRequest, 20001, "wrong content type", "")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeTwilioError(w, http.StatusBadRequest, 20001, "bad form", "")
		return
	}
	form := r.PostForm
	f.mu.Lock()
	f.attempts = append(f.attempts, form)
	fail := f.fail
	if fail != nil {
		if fail.times > 0 {
			fail.times--
		}
		if fail.times == 0 {
			f.fail = nil
		}
	}
	f.mu.Unlock()
	if fail != nil && fail.status == 0 {
		<-r.Context().Done() // hang, as an overloaded API does
		return
	}
	if fail != nil {
		writeTwilioError(w, fail.status, fail.code, fail.message, fail.retryAfter)
		return
	}
	switch {
	case form.Get("To") == "":
		writeTwilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.", "")
		return
	case form.Get("From") == "" && form.Get("MessagingServiceSid") == "":
		writeTwilioError(w, http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.", "")
		return
	case form.Get("Body") == "" && len(form["MediaUrl"]) == 0 && form.Get("ContentSid") == "":
		writeTwilioError(w, http.StatusBadRequest, 21602, "Message body is required.", "")
		return
	}
	sid := "SM" + randomHex(16)
	now := time.Now().UTC().Format(time.RFC1123Z)
	f.mu.Lock()
	f.accepted = append(f.accepted, form)
	f.sids[sid] = form
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"account_sid":           testAccount,
		"api_version":           "2010-04-01",
		"body":                  form.Get("Body"),
		"date_created":          now,
		"date_sent":             nil,
		"date_updated":          now,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  form.Get("From"),
		"messaging_service_sid": nilIfEmpty(form.Get("MessagingServiceSid")),
		"num_media":             fmt.Sprint(len(form["MediaUrl"])),
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   sid,
		"status":                "queued",
		"subresource_uris":      map[string]string{"media": "/2010-04-01/Accounts/" + testAccount + "/Messages/" + sid + "/Media.json"},
		"to":                    form.Get("To"),
		"uri":                   "/2010-04-01/Accounts/" + testAccount + "/Messages/" + sid + ".json",
	})
}

func (f *fakeTwilio) fetchAccount(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	if r.PathValue("file") != testAccount+".json" {
		writeTwilioError(w, http.StatusNotFound, 20404, "The requested resource was not found", "")
		return
	}
	f.mu.Lock()
	f.accounts++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": testAccount, "friendly_name": "omnigate test", "status": "active", "type": "Full",
	})
}

func (f *fakeTwilio) fetchMedia(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	m, ok := f.media[r.PathValue("media")]
	f.mu.Unlock()
	switch {
	case !ok:
		writeTwilioError(w, http.StatusNotFound, 20404, "The requested resource was not found", "")
	case m.redirect != "":
		http.Redirect(w, r, m.redirect, http.StatusFound)
	default:
		w.Header().Set("Content-Type", m.contentType)
		_, _ = w.Write(m.data)
	}
}

// writeTwilioError answers as Twilio does on an error.
func writeTwilioError(w http.ResponseWriter, status, code int, message, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

// statusCallback makes the fake call the StatusCallback of the message it
// accepted as sid, as Twilio does, signed; it returns the answer's status.
func (f *fakeTwilio) statusCallback(t *testing.T, sid, status string, extra url.Values) int {
	t.Helper()
	f.mu.Lock()
	sent, ok := f.sids[sid]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("fake: no message %s", sid)
	}
	cb := sent.Get("StatusCallback")
	if cb == "" {
		t.Fatalf("fake: message %s has no StatusCallback", sid)
	}
	form := url.Values{
		"AccountSid":    {testAccount},
		"MessageSid":    {sid},
		"SmsSid":        {sid},
		"MessageStatus": {status},
		"SmsStatus":     {status},
		"From":          {sent.Get("From")},
		"To":            {sent.Get("To")},
		"ApiVersion":    {"2010-04-01"},
	}
	for k, v := range extra {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, cb, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, sms.Sign(testToken, cb, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("fake: status callback: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

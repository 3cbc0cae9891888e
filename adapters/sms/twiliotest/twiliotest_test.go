package twiliotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
)

var sidRE = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

// send posts form to Messages.json with the account's credentials (or user
// and pass) and returns the status, the Retry-After header and the JSON body.
func send(t *testing.T, s *twiliotest.Server, user, pass string, form url.Values) (int, string, map[string]any) {
	t.Helper()
	return do(t, s, http.MethodPost, "/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages.json", user, pass, form)
}

func do(t *testing.T, s *twiliotest.Server, method, path, user, pass string, form url.Values) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, data)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// TestServer_CreateMessage checks the answer to a send against Twilio's
// Message resource (twilio.com/docs/messaging/api/message-resource): 201 with
// sid, status queued and the parameters echoed; the fake records it.
func TestServer_CreateMessage(t *testing.T) {
	s := twiliotest.NewServer(t)
	form := url.Values{
		"To":             {"+14155550100"},
		"From":           {twiliotest.From},
		"Body":           {"your order shipped"},
		"MediaUrl":       {"https://files.example.com/a.jpg", "https://files.example.com/b.pdf"},
		"StatusCallback": {"https://support.example.com/channels/sms/status"},
	}
	code, _, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form)
	if code != http.StatusCreated {
		t.Fatalf("answered %d %v, want 201", code, body)
	}
	sid, _ := body["sid"].(string)
	if !sidRE.MatchString(sid) || body["status"] != "queued" || body["to"] != "+14155550100" || body["from"] != twiliotest.From ||
		body["body"] != "your order shipped" || body["num_media"] != "2" || body["account_sid"] != twiliotest.AccountSID ||
		body["direction"] != "outbound-api" || body["uri"] != "/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages/"+sid+".json" {
		t.Errorf("Message resource %v", body)
	}
	sent := s.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want 1", len(sent))
	}
	m := sent[0]
	if m.SID != sid || m.To != "+14155550100" || m.From != twiliotest.From || m.Body != "your order shipped" ||
		!slices.Equal(m.MediaURLs, form["MediaUrl"]) || m.StatusCallback != form.Get("StatusCallback") || m.Form.Get("Body") != m.Body {
		t.Errorf("Sent()[0] = %+v", m)
	}
	if got := s.SentTexts(); !slices.Equal(got, []string{"your order shipped"}) {
		t.Errorf("SentTexts = %q", got)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Form.Get("To") != "+14155550100" || reqs[0].At.IsZero() {
		t.Errorf("Requests = %+v", reqs)
	}

	// A template message says its ContentSid and ContentVariables.
	tmpl := url.Values{"To": {"whatsapp:+14155550100"}, "From": {"whatsapp:" + twiliotest.WhatsAppFrom},
		"ContentSid": {"HX" + strings.Repeat("b", 32)}, "ContentVariables": {`{"1":"hi"}`}}
	if code, _, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, tmpl); code != http.StatusCreated {
		t.Fatalf("template: %d %v", code, body)
	}
	if got := s.SentTexts()[1]; got != "template HX"+strings.Repeat("b", 32)+` {"1":"hi"}` {
		t.Errorf("SentTexts of a template %q", got)
	}
}

// TestServer_Errors checks error answers against Twilio's documented shape
// ({code, message, more_info, status}) and codes.
func TestServer_Errors(t *testing.T) {
	s := twiliotest.NewServer(t)
	ok := url.Values{"To": {"+14155550100"}, "From": {twiliotest.From}, "Body": {"x"}}
	tests := []struct {
		name       string
		user, pass string
		form       url.Values
		status     int
		code       int
	}{
		{"wrong token", twiliotest.AccountSID, "wrong", ok, 401, 20003},
		{"no To", twiliotest.AccountSID, twiliotest.AuthToken, url.Values{"From": {twiliotest.From}, "Body": {"x"}}, 400, 21604},
		{"no sender", twiliotest.AccountSID, twiliotest.AuthToken, url.Values{"To": {"+14155550100"}, "Body": {"x"}}, 400, 21603},
		{"no body", twiliotest.AccountSID, twiliotest.AuthToken, url.Values{"To": {"+14155550100"}, "From": {twiliotest.From}}, 400, 21602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := send(t, s, tt.user, tt.pass, tt.form)
			if code != tt.status || body["code"] != float64(tt.code) || body["status"] != float64(tt.status) || body["message"] == "" ||
				body["more_info"] != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", tt.code) {
				t.Errorf("answered %d %v, want %d with code %d", code, body, tt.status, tt.code)
			}
		})
	}
	if code, _, body := do(t, s, http.MethodGet, "/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Nothing.json", twiliotest.AccountSID, twiliotest.AuthToken, nil); code != 404 || body["code"] != float64(20404) {
		t.Errorf("unknown resource: %d %v", code, body)
	}
	if n := len(s.Sent()); n != 0 {
		t.Errorf("%d messages accepted, want 0", n)
	}
	if n := len(s.Attempts()); n != 3 {
		t.Errorf("%d attempts with valid credentials, want 3", n)
	}
}

// TestServer_Fail: a failure answers as Twilio does, as many times as set,
// for the recipient set; Heal ends it; Hang holds the send until the client
// gives up.
func TestServer_Fail(t *testing.T) {
	s := twiliotest.NewServer(t)
	form := url.Values{"To": {"+14155550100"}, "From": {twiliotest.From}, "Body": {"x"}}
	other := url.Values{"To": {"+14155550199"}, "From": {twiliotest.From}, "Body": {"x"}}

	f := twiliotest.TooManyRequests(3)
	f.Times = 2
	s.Fail(f)
	for i := range 2 {
		code, retry, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form)
		if code != 429 || retry != "3" || body["code"] != float64(20429) || body["message"] != "Too Many Requests" {
			t.Errorf("send %d: %d Retry-After %q %v, want 429 with Retry-After 3", i+1, code, retry, body)
		}
	}
	if code, _, _ := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form); code != 201 {
		t.Errorf("third send: %d, want 201 after Times failures", code)
	}

	bad := twiliotest.InvalidTo()
	bad.To = "+14155550199"
	s.Fail(bad)
	if code, _, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, other); code != 400 || body["code"] != float64(21211) {
		t.Errorf("send to the failing To: %d %v, want 400 21211", code, body)
	}
	if code, _, _ := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form); code != 201 {
		t.Errorf("send to another To: %d, want 201", code)
	}
	s.Heal()
	if code, _, _ := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, other); code != 201 {
		t.Errorf("send after Heal: %d, want 201", code)
	}

	s.Fail(twiliotest.Failure{Code: 21999})
	if code, _, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form); code != 500 || body["message"] != "fake failure 21999" {
		t.Errorf("default failure: %d %v, want 500 fake failure 21999", code, body)
	}
	s.Heal()

	s.Fail(twiliotest.Hang())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(twiliotest.AccountSID, twiliotest.AuthToken)
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("hanging send: %v, want the client's deadline", err)
	}
	if got := len(s.Sent()); got != 3 {
		t.Errorf("%d sent, want 3", got)
	}
	if got := len(s.Attempts()); got != 8 {
		t.Errorf("%d attempts, want 8", got)
	}
}

// TestServer_MediaAndAccount: media is served only with the account's
// credentials, a redirect answers 302; the Account resource is counted.
func TestServer_MediaAndAccount(t *testing.T) {
	s := twiliotest.NewServer(t)
	u := s.AddMedia("ME"+strings.Repeat("1", 32), "image/jpeg", []byte("jpeg"))
	if u != s.MediaURL("ME"+strings.Repeat("1", 32)) || !strings.HasPrefix(u, s.URL+"/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages/MM") {
		t.Errorf("media URL %q", u)
	}
	get := func(u, pass string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		req.SetBasicAuth(twiliotest.AccountSID, pass)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := tr.RoundTrip(req) // no redirects followed
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get(u, twiliotest.AuthToken)
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || string(data) != "jpeg" {
		t.Errorf("media: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	if resp := get(u, "wrong"); resp.StatusCode != 401 {
		t.Errorf("media without credentials: %d, want 401", resp.StatusCode)
	}
	r := s.AddMediaRedirect("ME"+strings.Repeat("2", 32), "https://media.twiliocdn.com/x")
	if resp := get(r, twiliotest.AuthToken); resp.StatusCode != 302 || resp.Header.Get("Location") != "https://media.twiliocdn.com/x" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(s.MediaURL("missing"), twiliotest.AuthToken); resp.StatusCode != 404 {
		t.Errorf("missing media: %d, want 404", resp.StatusCode)
	}

	code, _, body := do(t, s, http.MethodGet, "/2010-04-01/Accounts/"+twiliotest.AccountSID+".json", twiliotest.AccountSID, twiliotest.AuthToken, nil)
	if code != 200 || body["sid"] != twiliotest.AccountSID || body["status"] != "active" || s.AccountFetches() != 1 {
		t.Errorf("account: %d %v, %d fetches", code, body, s.AccountFetches())
	}
}

// receiver is a webhook endpoint that checks X-Twilio-Signature with
// twilio-go's validator, independent of the fake's signing, and records what
// it got.
type receiver struct {
	srv *httptest.Server

	mu    sync.Mutex
	forms []url.Values
	valid []bool
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	v := twclient.NewRequestValidator(twiliotest.AuthToken)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		ok := v.Validate(rc.srv.URL+r.URL.RequestURI(), single(r.PostForm), r.Header.Get("X-Twilio-Signature"))
		rc.mu.Lock()
		rc.forms = append(rc.forms, r.PostForm)
		rc.valid = append(rc.valid, ok)
		rc.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "<Response/>")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func TestWebhook_Signed(t *testing.T) {
	rc := newReceiver(t)
	form := twiliotest.IncomingMessage("", "whatsapp:+14155550100", "whatsapp:"+twiliotest.WhatsAppFrom, "hello")
	if !sidRE.MatchString(form.Get("MessageSid")) || form.Get("SmsSid") != form.Get("MessageSid") || form.Get("WaId") != "14155550100" ||
		form.Get("AccountSid") != twiliotest.AccountSID || form.Get("NumMedia") != "0" {
		t.Errorf("IncomingMessage = %v", form)
	}
	code, body := twiliotest.PostWebhook(t, rc.srv.URL+"/channels/whatsapp/webhook?x=1", form)
	if code != 200 || body != "<Response/>" {
		t.Errorf("PostWebhook: %d %q, want 200 from a receiver that checks the signature", code, body)
	}
	req := twiliotest.WebhookRequest(t, "https://support.example.com/channels/sms/webhook", form)
	if req.URL.Path != "/channels/sms/webhook" || req.Method != http.MethodPost {
		t.Errorf("WebhookRequest %s %s", req.Method, req.URL)
	}
	v := twclient.NewRequestValidator(twiliotest.AuthToken)
	if !v.Validate(req.URL.String(), single(form), req.Header.Get("X-Twilio-Signature")) {
		t.Errorf("WebhookRequest signature does not validate")
	}
}

func TestServer_StatusCallback(t *testing.T) {
	s := twiliotest.NewServer(t)
	rc := newReceiver(t)
	form := url.Values{"To": {"+14155550100"}, "From": {twiliotest.From}, "Body": {"x"}, "StatusCallback": {rc.srv.URL + "/channels/sms/status"}}
	if code, _, body := send(t, s, twiliotest.AccountSID, twiliotest.AuthToken, form); code != 201 {
		t.Fatalf("send: %d %v", code, body)
	}
	sid := s.Sent()[0].SID
	if code := s.StatusCallback(t, sid, "undelivered", url.Values{"ErrorCode": {"30006"}}); code != 200 {
		t.Fatalf("StatusCallback answered %d", code)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.forms[0]
	if !rc.valid[0] || got.Get("MessageSid") != sid || got.Get("MessageStatus") != "undelivered" || got.Get("ErrorCode") != "30006" ||
		got.Get("To") != "+14155550100" || got.Get("From") != twiliotest.From || got.Get("AccountSid") != twiliotest.AccountSID {
		t.Errorf("callback form %v (signature valid %v)", got, rc.valid[0])
	}
}

func single(v url.Values) map[string]string {
	m := map[string]string{}
	for k, vs := range v {
		m[k] = vs[0]
	}
	return m
}

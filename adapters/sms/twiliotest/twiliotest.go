// Package twiliotest is a fake Twilio REST API for tests: an httptest server
// that speaks the parts of Twilio's API the sms and whatsapp channels use, in
// Twilio's documented shapes:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form body, HTTP basic auth -> 201, the Message resource
//	GET  /2010-04-01/Accounts/{AccountSid}.json            -> 200, the Account resource
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid} -> the media file
//
// Errors answer as Twilio does, with the HTTP status and
//
//	{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}
//
// It records every request, and can be told to fail sends the way Twilio
// does (Fail with TooManyRequests, InvalidTo, ...). It plays Twilio's other
// half too: WebhookRequest and PostWebhook deliver a customer's message to
// omnigate, signed as Twilio signs it, and StatusCallback reports a sent
// message's delivery status to the URL the adapter asked for.
//
// Point a channel at it with these keys of channels.sms (channels.whatsapp
// the same, with from: WhatsAppFrom):
//
//	account_sid: AccountSID
//	auth_token: AuthToken
//	from: From
//	api_base_url: Server.URL
//
// and public_url (or http.public_url) set to the URL at which the test
// reaches omnigate: webhook signatures cover it, and status callbacks go to
// it.
package twiliotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/sms"
)

// Credentials and numbers of the fake account. The fake accepts only
// AccountSID and AuthToken; it sends from whatever From the client gives.
const (
	// AccountSID is the fake account's Account SID.
	AccountSID = "AC0123456789abcdef0123456789abcdef"
	// AuthToken is the fake account's Auth Token: it authenticates API calls
	// and signs the webhooks the fake makes.
	AuthToken = "authtoken0123456789"
	// From is the account's SMS number, one of Twilio's test numbers.
	From = "+15005550006"
	// WhatsAppFrom is the account's WhatsApp sender, Twilio's WhatsApp
	// sandbox number (written whatsapp:+14155238886 on the wire).
	WhatsAppFrom = "+14155238886"
)

// apiVersion is the version in every path of Twilio's REST API.
const apiVersion = "2010-04-01"

// Request is one API call the fake received.
type Request struct {
	// Method and Path are the HTTP method and the URL path.
	Method, Path string
	// Form is the POST body's form; nil for other methods.
	Form url.Values
	// At is when it arrived.
	At time.Time
}

// Message is a message the fake accepted: the fields of the Messages.json
// POST that say what the customer receives, and the whole form.
type Message struct {
	// SID is the Message SID the fake gave it (SM followed by 32 hex digits).
	SID string
	// To and From are the addresses as posted: +E.164 for SMS,
	// whatsapp:+E.164 for WhatsApp. From is empty when the message went
	// through a Messaging Service.
	To, From string
	// MessagingServiceSID is the MessagingServiceSid parameter.
	MessagingServiceSID string
	// Body is the text.
	Body string
	// MediaURLs are the MediaUrl parameters, in order.
	MediaURLs []string
	// ContentSID and ContentVariables are the template of a WhatsApp
	// template message.
	ContentSID, ContentVariables string
	// StatusCallback is the URL the client asked status callbacks at.
	StatusCallback string
	// Form is every parameter of the request.
	Form url.Values
	// Created is when the fake took it (date_created).
	Created time.Time
}

// Failure makes matching sends (POSTs to Messages.json with valid
// credentials) fail as Twilio fails them.
type Failure struct {
	// Status is the HTTP status; 0 means 500.
	Status int
	// Code is Twilio's error code (twilio.com/docs/api/errors).
	Code int
	// Message is the error's message; empty means "fake failure <Code>".
	Message string
	// RetryAfter, when set, is the Retry-After header: seconds or an HTTP
	// date.
	RetryAfter string
	// Hang makes the send hang until the client gives up, as an overloaded
	// API does; Status, Code and Message are then unused.
	Hang bool
	// AfterAccept takes the message (the customer gets it, Sent lists it)
	// before failing the answer: the answer is lost, as when a connection
	// breaks or a proxy times out after Twilio took the request.
	AfterAccept bool
	// To limits the failure to sends to this To parameter; empty means any.
	To string
	// Times is how many sends fail; 0 means all from now on.
	Times int
}

// TooManyRequests is Twilio's answer to a client over its rate limit, with
// Retry-After retryAfter seconds (none when 0).
func TooManyRequests(retryAfter int) Failure {
	f := Failure{Status: http.StatusTooManyRequests, Code: 20429, Message: "Too Many Requests"}
	if retryAfter > 0 {
		f.RetryAfter = fmt.Sprint(retryAfter)
	}
	return f
}

// InvalidTo is the answer to a send to a number that is not a valid phone
// number.
func InvalidTo() Failure {
	return Failure{Status: http.StatusBadRequest, Code: 21211, Message: "Invalid 'To' Phone Number"}
}

// GeoPermission is the answer to a send to a number in a country the
// account's geographic permissions do not allow (21408): the recipient is
// refused until an operator allows the country.
func GeoPermission() Failure {
	return Failure{Status: http.StatusBadRequest, Code: 21408, Message: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"}
}

// Unsubscribed is the answer to a send to a number that replied STOP.
func Unsubscribed() Failure {
	return Failure{Status: http.StatusBadRequest, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}
}

// OutsideWindow is WhatsApp's answer to a free-form message more than 24
// hours after the customer's last message.
func OutsideWindow() Failure {
	return Failure{Status: http.StatusBadRequest, Code: 63016,
		Message: "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template."}
}

// InternalError is a 5xx answer, as Twilio gives during outages.
func InternalError() Failure {
	return Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"}
}

// Hang makes sends hang until the client gives up.
func Hang() Failure { return Failure{Hang: true} }

// Server is the fake Twilio REST API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the fake, like http://127.0.0.1:1234: the
	// api_base_url of a channel.
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	requests []Request
	attempts []url.Values // every Messages.json POST with valid auth
	sent     []Message    // those answered 201
	failures []*Failure
	media    map[string]media
	accounts int // Account fetches with valid auth
}

type media struct {
	contentType string
	data        []byte
	redirect    string // answer 302 to this URL instead
}

// NewServer starts a fake Twilio REST API for the account AccountSID, closed
// when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{media: map[string]media{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+apiVersion+"/Accounts/{account}/Messages.json", s.createMessage)
	mux.HandleFunc("GET /"+apiVersion+"/Accounts/{account}/Messages.json", s.listMessages)
	mux.HandleFunc("GET /"+apiVersion+"/Accounts/{file}", s.fetchAccount)
	mux.HandleFunc("GET /"+apiVersion+"/Accounts/{account}/Messages/{msg}/Media/{media}", s.fetchMedia)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeNotFound(w) })
	s.srv = httptest.NewServer(s.record(mux))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Close stops the server, as if Twilio were unreachable.
func (s *Server) Close() { s.srv.Close() }

// Requests returns every request received so far, in order, whatever its
// credentials.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Attempts returns the form of every send (Messages.json POST) received with
// valid credentials, failed or not, in order.
func (s *Server) Attempts() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

// Sent returns the messages the fake accepted, in order.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// SentTexts returns what each accepted message said, in order: its Body, or
// for a template "template <ContentSid> <ContentVariables>".
func (s *Server) SentTexts() []string {
	var out []string
	for _, m := range s.Sent() {
		if m.ContentSID != "" {
			out = append(out, "template "+m.ContentSID+" "+m.ContentVariables)
			continue
		}
		out = append(out, m.Body)
	}
	return out
}

// AccountFetches returns how many times the Account resource was fetched with
// valid credentials (the adapter's readiness check).
func (s *Server) AccountFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts
}

// Fail makes matching sends fail from now on (or the next f.Times ones). The
// first matching failure set applies.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &f)
}

// Heal removes every failure set with Fail.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// MediaURL is the URL at which media file name (a Media SID, ME followed by
// 32 hex digits) is served once added, as Twilio's media URLs are written:
// URL/2010-04-01/Accounts/<AccountSID>/Messages/<MessageSid>/Media/<name>.
// Fetching it needs the account's credentials.
func (s *Server) MediaURL(name string) string {
	return s.URL + "/" + apiVersion + "/Accounts/" + AccountSID + "/Messages/MM" + strings.Repeat("0", 32) + "/Media/" + name
}

// AddMedia serves data with contentType as media file name and returns its
// URL, for the MediaUrl0 of an incoming message.
func (s *Server) AddMedia(name, contentType string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media[name] = media{contentType: contentType, data: slices.Clone(data)}
	return s.MediaURL(name)
}

// AddMediaRedirect makes media file name answer 302 to location, as Twilio
// redirects to its CDN, and returns its URL.
func (s *Server) AddMediaRedirect(name, location string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media[name] = media{redirect: location}
	return s.MediaURL(name)
}

// StatusCallback makes the fake call the StatusCallback of the message it
// accepted as sid, as Twilio does: a signed form POST with MessageStatus
// status and the message's From and To, plus extra (e.g. ErrorCode). It
// returns the answer's HTTP status, and fails t when there is no such message
// or callback.
func (s *Server) StatusCallback(t testing.TB, sid, status string, extra url.Values) int {
	t.Helper()
	s.mu.Lock()
	i := slices.IndexFunc(s.sent, func(m Message) bool { return m.SID == sid })
	var m Message
	if i >= 0 {
		m = s.sent[i]
	}
	s.mu.Unlock()
	if i < 0 {
		t.Fatalf("twiliotest: no message %s", sid)
	}
	if m.StatusCallback == "" {
		t.Fatalf("twiliotest: message %s has no StatusCallback", sid)
	}
	form := url.Values{
		"AccountSid":    {AccountSID},
		"ApiVersion":    {apiVersion},
		"MessageSid":    {sid},
		"SmsSid":        {sid},
		"MessageStatus": {status},
		"SmsStatus":     {status},
		"From":          {m.From},
		"To":            {m.To},
	}
	maps.Copy(form, extra)
	code, _ := PostWebhook(t, m.StatusCallback, form)
	return code
}

// IncomingMessage is the form of Twilio's incoming-message webhook: a
// message from from to to (addresses as Twilio writes them: +E.164 for SMS,
// whatsapp:+E.164 for WhatsApp) saying body, with Message SID sid (a fresh
// one when ""), no media and, for WhatsApp, the sender's WaId. Set NumMedia,
// MediaUrl0 and MediaContentType0 for media.
func IncomingMessage(sid, from, to, body string) url.Values {
	if sid == "" {
		sid = NewSID("SM")
	}
	v := url.Values{
		"AccountSid":    {AccountSID},
		"ApiVersion":    {apiVersion},
		"Body":          {body},
		"From":          {from},
		"To":            {to},
		"MessageSid":    {sid},
		"SmsMessageSid": {sid},
		"SmsSid":        {sid},
		"SmsStatus":     {"received"},
		"NumMedia":      {"0"},
		"NumSegments":   {"1"},
	}
	if number, ok := strings.CutPrefix(from, "whatsapp:"); ok {
		v.Set("WaId", strings.TrimPrefix(number, "+"))
	}
	return v
}

// NewSID returns a fresh SID: prefix (SM, MM, ME, ...) followed by 32 hex
// digits.
func NewSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WebhookRequest builds the request Twilio makes to deliver form to a
// webhook at fullURL, the URL as Twilio calls it (public_url plus
// /channels/<name>/webhook, query included): a form-encoded POST with the
// X-Twilio-Signature of fullURL and form under AuthToken. It is a client
// request on t's context: send it with an http.Client, or serve it to a
// handler directly. To forge one, set the header to sms.Sign with another
// token or URL.
func WebhookRequest(t testing.TB, fullURL string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fullURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("twiliotest: webhook request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(sms.SignatureHeader, sms.Sign(AuthToken, fullURL, form))
	return req
}

// PostWebhook sends WebhookRequest(t, fullURL, form) over the network and
// returns the answer's HTTP status and body; it fails t when the request
// gets no answer.
func PostWebhook(t testing.TB, fullURL string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(WebhookRequest(t, fullURL, form))
	if err != nil {
		t.Fatalf("twiliotest: webhook %s: %v", fullURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// record notes every request in s.requests before h serves it.
func (s *Server) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{Method: r.Method, Path: r.URL.Path, At: time.Now()}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			req.Form, _ = url.ParseQuery(string(body))
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func authorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != AccountSID || pass != AuthToken {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"})
		return false
	}
	return true
}

// authorizedAccount answers a request without the account's credentials, or
// for another account, as Twilio does, and reports whether it may go on.
func authorizedAccount(w http.ResponseWriter, r *http.Request) bool {
	if !authorized(w, r) {
		return false
	}
	if r.PathValue("account") != AccountSID {
		writeNotFound(w)
		return false
	}
	return true
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	if !authorizedAccount(w, r) {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 20001, Message: "wrong content type"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 20001, Message: "bad form"})
		return
	}
	form := r.PostForm
	s.mu.Lock()
	s.attempts = append(s.attempts, form)
	fail, failed := s.injected(form)
	s.mu.Unlock()
	switch {
	case failed && fail.AfterAccept:
	case failed && fail.Hang:
		<-r.Context().Done()
		return
	case failed:
		writeError(w, fail)
		return
	case form.Get("To") == "":
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21604, Message: "A 'To' phone number is required."})
		return
	case form.Get("From") == "" && form.Get("MessagingServiceSid") == "":
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21603, Message: "A 'From' or 'MessagingServiceSid' parameter is required to send a message."})
		return
	case form.Get("Body") == "" && len(form["MediaUrl"]) == 0 && form.Get("ContentSid") == "":
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21602, Message: "Message body is required."})
		return
	}
	m := Message{
		SID:                 NewSID("SM"),
		To:                  form.Get("To"),
		From:                form.Get("From"),
		MessagingServiceSID: form.Get("MessagingServiceSid"),
		Body:                form.Get("Body"),
		MediaURLs:           slices.Clone(form["MediaUrl"]),
		ContentSID:          form.Get("ContentSid"),
		ContentVariables:    form.Get("ContentVariables"),
		StatusCallback:      form.Get("StatusCallback"),
		Form:                form,
		Created:             time.Now().UTC(),
	}
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	switch {
	case failed && fail.Hang:
		<-r.Context().Done()
		return
	case failed:
		writeError(w, fail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(messageResource(m))
}

// listMessages answers Twilio's Read multiple Message resources: the sent
// messages, newest first, filtered by To and From, in one page of PageSize
// (default 50).
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	if !authorizedAccount(w, r) {
		return
	}
	q := r.URL.Query()
	size := 50
	if n, err := strconv.Atoi(q.Get("PageSize")); err == nil && n > 0 {
		size = min(n, 1000)
	}
	s.mu.Lock()
	var page []map[string]any
	for i := len(s.sent) - 1; i >= 0 && len(page) < size; i-- {
		m := s.sent[i]
		if to := q.Get("To"); to != "" && m.To != to {
			continue
		}
		if from := q.Get("From"); from != "" && m.From != from {
			continue
		}
		page = append(page, messageResource(m))
	}
	s.mu.Unlock()
	uri := "/" + apiVersion + "/Accounts/" + AccountSID + "/Messages.json?" + q.Encode()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"messages":          page,
		"page":              0,
		"page_size":         size,
		"first_page_uri":    uri,
		"next_page_uri":     nil,
		"previous_page_uri": nil,
		"uri":               uri,
		"end":               max(len(page)-1, 0),
		"start":             0,
	})
}

// messageResource is m as Twilio's API shows a Message resource.
func messageResource(m Message) map[string]any {
	created := m.Created.Format(time.RFC1123Z)
	uri := "/" + apiVersion + "/Accounts/" + AccountSID + "/Messages/" + m.SID
	return map[string]any{
		"account_sid":           AccountSID,
		"api_version":           apiVersion,
		"body":                  m.Body,
		"date_created":          created,
		"date_sent":             nil,
		"date_updated":          created,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  m.From,
		"messaging_service_sid": nilIfEmpty(m.MessagingServiceSID),
		"num_media":             fmt.Sprint(len(m.MediaURLs)),
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   m.SID,
		"status":                "queued",
		"subresource_uris":      map[string]string{"media": uri + "/Media.json"},
		"to":                    m.To,
		"uri":                   uri + ".json",
	}
}

// injected returns the first failure matching a send of form, counting it
// down. s.mu is held.
func (s *Server) injected(form url.Values) (Failure, bool) {
	for i, f := range s.failures {
		if f.To != "" && f.To != form.Get("To") {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
		}
		return *f, true
	}
	return Failure{}, false
}

func (s *Server) fetchAccount(w http.ResponseWriter, r *http.Request) {
	if !authorized(w, r) {
		return
	}
	if r.PathValue("file") != AccountSID+".json" {
		writeNotFound(w)
		return
	}
	s.mu.Lock()
	s.accounts++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": AccountSID, "friendly_name": "omnigate test", "status": "active", "type": "Full",
	})
}

func (s *Server) fetchMedia(w http.ResponseWriter, r *http.Request) {
	if !authorized(w, r) {
		return
	}
	s.mu.Lock()
	m, ok := s.media[r.PathValue("media")]
	s.mu.Unlock()
	switch {
	case !ok || r.PathValue("account") != AccountSID:
		writeNotFound(w)
	case m.redirect != "":
		http.Redirect(w, r, m.redirect, http.StatusFound)
	default:
		w.Header().Set("Content-Type", m.contentType)
		_, _ = w.Write(m.data)
	}
}

func writeNotFound(w http.ResponseWriter) {
	writeError(w, Failure{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource was not found"})
}

// writeError answers f as Twilio answers an error.
func writeError(w http.ResponseWriter, f Failure) {
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	message := f.Message
	if message == "" {
		message = fmt.Sprintf("fake failure %d", f.Code)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code":      f.Code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", f.Code),
		"status":    status,
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

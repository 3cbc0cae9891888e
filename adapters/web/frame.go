package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
)

// Frame types. Clients send hello, message, typing, read and history; the
// server sends welcome, message, typing, read, history and error.
const (
	typeHello   = "hello"
	typeWelcome = "welcome"
	typeMessage = "message"
	typeTyping  = "typing"
	typeRead    = "read"
	typeHistory = "history"
	typeError   = "error"
	// typeAvailability is pushed when the site's availability changes.
	typeAvailability = "availability"
)

// Limits of the protocol.
const (
	// maxFrameBytes is the largest frame a client may send (WebSocket message or
	// HTTP body): a message of core.MaxTextBytes with JSON escapes fits.
	maxFrameBytes = 2*core.MaxTextBytes + 32<<10
	// maxHistoryLimit is the largest page of history.
	maxHistoryLimit = 200
	// defaultHistoryLimit is the page size when a history request has none.
	defaultHistoryLimit = 50
	// maxResume is the most messages a welcome carries after resume_after; the
	// client pages on with history {after}.
	maxResume = 500
	// maxPageBytes is the longest page URL kept in meta.
	maxPageBytes = 1024
	// maxNameBytes and maxFieldBytes bound what the pre-chat form sends.
	maxNameBytes  = 200
	maxFieldBytes = 500
)

// clientFrame is any frame a client sends; Type says which fields apply.
type clientFrame struct {
	Type string `json:"type"`

	// hello
	Site         string    `json:"site,omitempty"`
	VisitorToken string    `json:"visitor_token,omitempty"`
	Identity     *Identity `json:"identity,omitempty"`
	ResumeAfter  *cursor   `json:"resume_after,omitempty"`
	Lang         string    `json:"lang,omitempty"`
	Page         string    `json:"page,omitempty"`

	// message
	ClientID    string          `json:"client_id,omitempty"`
	Text        string          `json:"text,omitempty"`
	Attachments []attachmentRef `json:"attachments,omitempty"`
	Email       string          `json:"email,omitempty"`
	// Name and Fields are what the visitor typed in the pre-chat form;
	// Offline marks a message left in the offline form.
	Name    string            `json:"name,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
	Offline bool              `json:"offline,omitempty"`

	// read
	UpTo cursor `json:"up_to,omitempty"`

	// history
	Before cursor `json:"before,omitempty"`
	After  cursor `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// attachmentRef names an upload of the visitor's in a message frame.
type attachmentRef struct {
	ID string `json:"id"`
}

// cursor is a message sequence number: a JSON number or a string of digits
// (JavaScript keeps a string exact).
type cursor uint64

func (c *cursor) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "null" || s == "" {
		*c = 0
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a message sequence number")
	}
	*c = cursor(n)
	return nil
}

// Error codes of error frames (and of HTTP error bodies).
const (
	codeBadFrame         = "bad_frame"
	codeTooLarge         = "too_large"
	codeHelloFirst       = "hello_first"
	codeUnknownSite      = "unknown_site"
	codeOriginForbidden  = "origin_forbidden"
	codeTokenInvalid     = "token_invalid"
	codeTokenExpired     = "token_expired"
	codeIdentityInvalid  = "identity_invalid"
	codeIdentityExpired  = "identity_expired"
	codeRateLimited      = "rate_limited"
	codeInvalidMessage   = "invalid_message"
	codeUnknownUpload    = "unknown_upload"
	codeUnsupportedMedia = "unsupported_type"
	codeUnavailable      = "unavailable"
	codeNotFound         = "not_found"
)

// frameError is a problem to report to the client: an error frame, or an HTTP
// answer with status and a JSON body.
type frameError struct {
	Code       string
	Msg        string
	Status     int           // HTTP status
	RetryAfter time.Duration // for codeRateLimited
	Fatal      bool          // the WebSocket is closed after the error frame
}

func (e *frameError) Error() string { return e.Code + ": " + e.Msg }

func badFrame(format string, args ...any) *frameError {
	return &frameError{Code: codeBadFrame, Msg: fmt.Sprintf(format, args...), Status: 400}
}

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var uploadIDRE = regexp.MustCompile(`^[a-z0-9]{26}$`)

// decodeFrame parses and checks one client frame. It never panics, whatever
// data holds; a frame it returns without error has a known type and fields
// within limits. With an error, the frame is returned too when the JSON was
// readable, unchecked, for its client_id.
func decodeFrame(data []byte) (*clientFrame, *frameError) { return decodeFrameAs(data, "") }

// decodeFrameAs is decodeFrame for a frame whose "type" may be left out, as in
// the HTTP fallback, where the path says it: typ then applies.
func decodeFrameAs(data []byte, typ string) (*clientFrame, *frameError) {
	if len(data) > maxFrameBytes {
		return nil, &frameError{Code: codeTooLarge, Msg: fmt.Sprintf("frame of %d bytes, at most %d", len(data), maxFrameBytes), Status: 413}
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD; refuse it instead.
	if !utf8.Valid(data) {
		return nil, badFrame("not valid UTF-8")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, badFrame("a frame is a JSON object")
	}
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, badFrame("%v", err)
	}
	if f.Type == "" {
		f.Type = typ
	}
	if len(f.Attachments) == 0 {
		f.Attachments = nil // [] and absent are the same
	}
	if err := f.check(); err != nil {
		return &f, err // for the client_id the error refers to
	}
	return &f, nil
}

// check applies the rules of f's type.
func (f *clientFrame) check() *frameError {
	switch f.Type {
	case typeHello:
		if f.Site != "" && !siteNameRE.MatchString(f.Site) {
			return badFrame("site: not a site name")
		}
		if len(f.VisitorToken) > maxTokenBytes {
			return badFrame("visitor_token: too long")
		}
		if !cleanString(f.Lang, 35) {
			return badFrame("lang: at most 35 characters")
		}
		if !cleanString(f.Page, 4*maxPageBytes) {
			return badFrame("page: too long")
		}
		if id := f.Identity; id != nil && (len(id.UserID) > 256 || len(id.Email) > 254 || len(id.Phone) > 16 || len(id.Sig) > 128) {
			return &frameError{Code: codeIdentityInvalid, Msg: "identity fields too long", Status: 401, Fatal: true}
		}
	case typeMessage:
		return f.checkMessage()
	case typeTyping, typeRead:
	case typeHistory:
		if f.Limit < 0 || f.Limit > maxHistoryLimit {
			return badFrame("limit: between 0 and %d", maxHistoryLimit)
		}
		if f.Before != 0 && f.After != 0 {
			return badFrame("before and after: one or the other")
		}
	case "":
		return badFrame("type: required")
	default:
		return badFrame("type: unknown frame type %q", core.Truncate(f.Type, 32))
	}
	return nil
}

func (f *clientFrame) checkMessage() *frameError {
	invalid := func(format string, args ...any) *frameError {
		return &frameError{Code: codeInvalidMessage, Msg: fmt.Sprintf(format, args...), Status: 400}
	}
	if f.ClientID != "" && !clientIDRE.MatchString(f.ClientID) {
		return invalid("client_id: 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	if len(f.Text) > core.MaxTextBytes {
		return &frameError{Code: codeTooLarge, Msg: fmt.Sprintf("text of %d bytes, at most %d", len(f.Text), core.MaxTextBytes), Status: 413}
	}
	if len(f.Attachments) > core.MaxAttachments {
		return invalid("at most %d attachments", core.MaxAttachments)
	}
	for _, a := range f.Attachments {
		if !uploadIDRE.MatchString(a.ID) {
			return invalid("attachments: not an upload id")
		}
	}
	if f.Email != "" {
		if _, ok := normalizeEmail(f.Email); !ok {
			return invalid("email: not an email address")
		}
	}
	if !cleanString(f.Name, maxNameBytes) {
		return invalid("name: at most %d bytes, no control characters", maxNameBytes)
	}
	if len(f.Fields) > maxPrechatFields {
		return invalid("fields: at most %d", maxPrechatFields)
	}
	for k, v := range f.Fields {
		if !fieldNameRE.MatchString(k) || !cleanString(v, maxFieldBytes) {
			return invalid("fields: names of a-z 0-9 _, values at most %d bytes", maxFieldBytes)
		}
	}
	if f.Offline && f.Email == "" {
		return invalid("an offline message needs the visitor's email")
	}
	if isBlank(f.Text) && len(f.Attachments) == 0 {
		return invalid("a message needs text or an attachment")
	}
	return nil
}

// isBlank reports whether s holds only white space.
func isBlank(s string) bool { return len(bytes.TrimSpace([]byte(s))) == 0 }

// Server frames.

// messageFrame is one message of the conversation as clients see it: in
// history, in a welcome and live.
type messageFrame struct {
	Type     string `json:"type"`
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	From     string `json:"from"` // "visitor" or "agent"
	Agent    string `json:"agent,omitempty"`
	// Avatar is the agent's picture (an http(s) URL); Auto marks what
	// omnigate sent by itself (an acknowledgement: auto "ack").
	Avatar      string            `json:"avatar,omitempty"`
	Auto        string            `json:"auto,omitempty"`
	Text        string            `json:"text,omitempty"`
	Attachments []attachmentFrame `json:"attachments,omitempty"`
	At          time.Time         `json:"at"`
}

// attachmentFrame is a file of a message as clients see it.
type attachmentFrame struct {
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	URL         string `json:"url"`
}

// welcomeFrame answers a hello.
type welcomeFrame struct {
	Type         string `json:"type"`
	VisitorToken string `json:"visitor_token"`
	Visitor      string `json:"visitor"`
	Site         string `json:"site"`
	Channel      string `json:"channel"`
	Verified     bool   `json:"verified"`
	AgentsOnline bool   `json:"agents_online"`
	// Availability says who can answer, and the expected wait.
	Availability availabilityFrame `json:"availability"`
	History      []messageFrame    `json:"history"`
	// More: older messages exist (page back with history {before}); after a
	// resume, newer ones exist (page on with history {after}).
	More     bool   `json:"more"`
	LastSeq  uint64 `json:"last_seq"`
	ReadUpTo uint64 `json:"read_up_to"`
	Limits   limits `json:"limits"`
}

// limits tells clients what the server accepts.
type limits struct {
	MaxTextBytes   int      `json:"max_text_bytes"`
	MaxUploadBytes int64    `json:"max_upload_bytes"`
	UploadTypes    []string `json:"upload_types"`
	MaxAttachments int      `json:"max_attachments"`
}

// historyFrame answers a history request.
type historyFrame struct {
	Type     string         `json:"type"`
	Messages []messageFrame `json:"messages"`
	More     bool           `json:"more"`
}

// typingFrame says someone is typing.
type typingFrame struct {
	Type string `json:"type"`
	From string `json:"from"`
}

// readFrame says who read up to which message.
type readFrame struct {
	Type string `json:"type"`
	From string `json:"from"`
	UpTo uint64 `json:"up_to"`
}

// errorFrame reports a problem; Ref is the client_id of the message concerned.
type errorFrame struct {
	Type         string `json:"type"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	Ref          string `json:"ref,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

func (e *frameError) frame(ref string) errorFrame {
	f := errorFrame{Type: typeError, Code: e.Code, Message: e.Msg, Ref: ref}
	if e.RetryAfter > 0 {
		f.RetryAfterMS = max(1, e.RetryAfter.Milliseconds())
	}
	return f
}

// encodeFrame encodes a server frame; they hold only JSON-safe values.
func encodeFrame(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("web: encode frame: %v", err))
	}
	return b
}

func itoa(i int) string { return strconv.Itoa(i) }

func quote(s string) string { return strconv.Quote(s) }

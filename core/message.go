// Package core defines the envelope every channel produces and consumes: one
// versioned JSON document (Message) for every message and event on the bus,
// with the identities of its parties and the rules it must follow.
//
// The wire form is described by docs/envelope.schema.json; Decode and Encode
// are the only ways a Message should cross the bus.
package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EnvelopeVersion is the value of "v" this package reads and writes.
const EnvelopeVersion = 1

// Limits enforced by Validate, Decode and Encode. Lengths are in bytes.
const (
	// MaxEnvelopeBytes is the largest encoded envelope.
	MaxEnvelopeBytes = 1 << 20
	// MaxTextBytes is the longest Text.
	MaxTextBytes = 64 << 10
	// MaxHTMLBytes is the longest HTML.
	MaxHTMLBytes = 256 << 10
	// MaxAttachments is the most Attachments one message may carry.
	MaxAttachments = 20
	// MaxAttachmentNameBytes is the longest Attachment.Name.
	MaxAttachmentNameBytes = 255
	// MaxQuickReplies is the most QuickReplies one message may offer.
	MaxQuickReplies = 10
	// MaxQuickReplyBytes is the longest label in QuickReplies.
	MaxQuickReplyBytes = 128
	// MaxMetaEntries is the most entries Meta may hold.
	MaxMetaEntries = 64
	// MaxMetaKeyBytes is the longest key in Meta.
	MaxMetaKeyBytes = 128
	// MaxMetaValueBytes is the longest value in Meta.
	MaxMetaValueBytes = 4 << 10
)

// Kind says whether an envelope carries a message or an event.
type Kind string

// The kinds of envelope.
const (
	// KindMessage is something a person wrote: a customer or an agent.
	KindMessage Kind = "message"
	// KindEvent is something that happened to a message or a conversation; its
	// Type says what, e.g. "delivery.failed" or "conversation.assigned".
	KindEvent Kind = "event"
)

// Direction says which way an envelope travels relative to the customer.
type Direction string

// The directions.
const (
	// Inbound is from a customer towards the gateway.
	Inbound Direction = "inbound"
	// Outbound is from the gateway towards a customer.
	Outbound Direction = "outbound"
)

// Attachment is a file sent with a message. The bytes are not in the envelope:
// URL points at them, or Key names them in the object store; one is required.
type Attachment struct {
	// Name is the file name shown to people, at most MaxAttachmentNameBytes.
	Name string `json:"name,omitempty"`
	// ContentType is the MIME type, e.g. "image/png", parameters allowed.
	ContentType string `json:"content_type,omitempty"`
	// Size is the length in bytes; 0 when unknown.
	Size int64 `json:"size,omitempty"`
	// URL is where the bytes can be fetched.
	URL string `json:"url,omitempty"`
	// Key names the bytes in the object store.
	Key string `json:"key,omitempty"`
	// ContentID is the attachment's id within its message, without angle
	// brackets: an email part's Content-ID, which the HTML body refers to as
	// "cid:<ContentID>" (RFC 2392).
	ContentID string `json:"content_id,omitempty"`
	// Inline is true for a part shown within the body (an inline image) rather
	// than offered as a file (Content-Disposition: inline).
	Inline bool `json:"inline,omitempty"`
}

// External holds the provider's own ids, so replies and receipts can be matched
// with what the provider knows.
type External struct {
	// Message is the provider's message id (Twilio SID, Message-ID header,
	// Telegram message_id).
	Message string `json:"message,omitempty"`
	// Thread is the provider's thread id (email thread root, Slack thread ts).
	Thread string `json:"thread,omitempty"`
	// Chat is the provider's chat or room id (Telegram chat_id, Slack channel).
	Chat string `json:"chat,omitempty"`
}

// IsZero reports whether e holds no id; such an External is left out of JSON.
func (e External) IsZero() bool { return e == External{} }

// Message is the envelope: one message or event on one channel, in one
// direction. The zero value is not valid; start from NewMessage or Decode.
//
// A Message decoded from JSON keeps the top-level fields it does not know,
// verbatim but for insignificant white space, and writes them back when encoded, so an older build passes newer
// fields through unchanged. Unknown keys inside "external" and "attachments" are
// accepted and dropped. Keys are matched exactly: "Text" is an unknown field,
// not "text".
//
// A Message is not safe for concurrent mutation; use Clone to hand a copy to
// another goroutine.
type Message struct {
	// V is the envelope version, EnvelopeVersion.
	V int `json:"v"`
	// ID is a ULID from NewID, unique and time-ordered.
	ID string `json:"id"`
	// Kind is KindMessage or KindEvent.
	Kind Kind `json:"kind"`
	// Type refines Kind: required for events ("delivery.delivered",
	// "delivery.failed", "conversation.assigned", ...), optional for messages.
	Type string `json:"type,omitempty"`
	// Direction is Inbound or Outbound.
	Direction Direction `json:"direction"`
	// Channel is the adapter name the envelope came from or goes to: "sms",
	// "email", "web", ...
	Channel string `json:"channel"`
	// External holds the provider's ids.
	External External `json:"external,omitzero"`
	// From is the sender; required for inbound messages.
	From Identity `json:"from,omitempty"`
	// To is the recipient; an outbound message needs To or ConversationID.
	To Identity `json:"to,omitempty"`
	// ContactID is the contact the customer identity belongs to; set by core.
	ContactID string `json:"contact,omitempty"`
	// ConversationID is the conversation the envelope belongs to; set by core.
	ConversationID string `json:"conversation,omitempty"`
	// Text is the plain-text body, at most MaxTextBytes.
	Text string `json:"text,omitempty"`
	// HTML is an optional rich body, at most MaxHTMLBytes.
	HTML string `json:"html,omitempty"`
	// Attachments are files sent with the message, at most MaxAttachments.
	Attachments []Attachment `json:"attachments,omitempty"`
	// QuickReplies are answers offered to the customer with an outbound
	// message (an agent's reply, an auto-reply), to choose with one tap: at
	// most MaxQuickReplies non-empty labels of at most MaxQuickReplyBytes. A
	// channel that has buttons shows them (Telegram: an inline keyboard); the
	// others send the message without them. The customer's choice comes back
	// as an inbound message whose Text is the label chosen.
	QuickReplies []string `json:"quick_replies,omitempty"`
	// ReplyTo is the id of the envelope this one answers.
	ReplyTo string `json:"reply_to,omitempty"`
	// Language is a BCP 47 tag such as "en" or "pt-BR", when known.
	Language string `json:"language,omitempty"`
	// SentAt is when the provider says the message was sent.
	SentAt time.Time `json:"sent_at,omitzero"`
	// ReceivedAt is when omnigate received or created the envelope.
	ReceivedAt time.Time `json:"received_at,omitzero"`
	// Meta holds what a channel has that others do not, at most MaxMetaEntries.
	Meta map[string]string `json:"meta,omitempty"`

	// unknown holds top-level fields this build does not know, verbatim but
	// compacted. It never holds a key of a field above.
	unknown map[string]json.RawMessage
}

// NewMessage returns a message of the given kind, direction and channel with
// V, a fresh ID and ReceivedAt (now, UTC) set.
func NewMessage(kind Kind, dir Direction, channel string) *Message {
	return &Message{
		V:          EnvelopeVersion,
		ID:         NewID(),
		Kind:       kind,
		Direction:  dir,
		Channel:    channel,
		ReceivedAt: time.Now().UTC(),
	}
}

// Decode parses an envelope read from the bus. It returns an error matching
// ErrTooLarge when data is longer than MaxEnvelopeBytes, ErrUnsupportedVersion
// when "v" is not EnvelopeVersion, and ErrInvalid (a *ValidationError when the
// problem is in the fields) when data is not a valid envelope, a missing "v"
// included.
func Decode(data []byte) (*Message, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxEnvelopeBytes)
	}
	m := new(Message)
	hasV, err := m.decode(data)
	if err != nil {
		return nil, err
	}
	if !hasV {
		return nil, &ValidationError{Errors: []FieldError{{Field: "v", Problem: "required, must be " + strconv.Itoa(EnvelopeVersion)}}}
	}
	if m.V != EnvelopeVersion {
		return nil, fmt.Errorf("%w %d, this build reads %d", ErrUnsupportedVersion, m.V, EnvelopeVersion)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Encode validates m and returns its JSON form, ready to publish. The error is
// Validate's, or matches ErrTooLarge when the result would be longer than
// MaxEnvelopeBytes. Strings carry only the escapes JSON requires (no \u003c for
// '<'), so re-encoding a decoded envelope never makes it longer.
func (m *Message) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := m.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return nil, fmt.Errorf("core: encode %s: %w", m.ID, err)
	}
	if len(b) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxEnvelopeBytes)
	}
	return b, nil
}

// MarshalJSON writes m without validating it: the known fields in declaration
// order, empty optional ones left out, then the preserved unknown fields sorted
// by key. Encode is the checked way to the wire.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.appendJSON(make([]byte, 0, 512))
}

// UnmarshalJSON replaces m with the envelope in data, keeping unknown top-level
// fields. It checks types and UTF-8, not the envelope rules: use Decode, or call
// Validate. A JSON null leaves m unchanged; after any other error m may be
// partly filled.
func (m *Message) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	_, err := m.decode(data)
	return err
}

// Clone returns a deep copy of m, unknown fields included. Clone of nil is nil.
func (m *Message) Clone() *Message {
	if m == nil {
		return nil
	}
	c := *m
	c.Attachments = slices.Clone(m.Attachments)
	c.QuickReplies = slices.Clone(m.QuickReplies)
	c.Meta = maps.Clone(m.Meta)
	if m.unknown != nil {
		c.unknown = make(map[string]json.RawMessage, len(m.unknown))
		for k, v := range m.unknown {
			c.unknown[k] = slices.Clone(v)
		}
	}
	return &c
}

// decode replaces m with data and reports whether "v" was present and not null.
func (m *Message) decode(data []byte) (hasV bool, err error) {
	// encoding/json would turn invalid UTF-8 into U+FFFD silently; refuse instead,
	// as RFC 8259 requires UTF-8.
	if !utf8.Valid(data) {
		return false, &invalidError{msg: ErrInvalid.Error() + ": not valid utf-8"}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return false, &invalidError{msg: ErrInvalid.Error() + ": not a json object", err: err}
		}
		return false, &invalidError{msg: ErrInvalid.Error() + ": " + err.Error(), err: err}
	}
	if fields == nil {
		return false, &invalidError{msg: ErrInvalid.Error() + ": not a json object"}
	}

	*m = Message{}
	var d decoder
	for k, raw := range fields {
		switch k {
		case "v":
			hasV = string(raw) != "null"
			d.check(k, decodeValue(raw, &m.V), "an integer")
		case "id":
			d.check(k, decodeString(raw, &m.ID), "a string")
		case "kind":
			d.check(k, decodeString(raw, (*string)(&m.Kind)), "a string")
		case "type":
			d.check(k, decodeString(raw, &m.Type), "a string")
		case "direction":
			d.check(k, decodeString(raw, (*string)(&m.Direction)), "a string")
		case "channel":
			d.check(k, decodeString(raw, &m.Channel), "a string")
		case "external":
			d.external(raw, &m.External)
		case "from":
			d.check(k, decodeString(raw, (*string)(&m.From)), "a string")
		case "to":
			d.check(k, decodeString(raw, (*string)(&m.To)), "a string")
		case "contact":
			d.check(k, decodeString(raw, &m.ContactID), "a string")
		case "conversation":
			d.check(k, decodeString(raw, &m.ConversationID), "a string")
		case "text":
			d.check(k, decodeString(raw, &m.Text), "a string")
		case "html":
			d.check(k, decodeString(raw, &m.HTML), "a string")
		case "attachments":
			m.Attachments = d.attachments(raw)
		case "quick_replies":
			m.QuickReplies = d.quickReplies(raw)
		case "reply_to":
			d.check(k, decodeString(raw, &m.ReplyTo), "a string")
		case "language":
			d.check(k, decodeString(raw, &m.Language), "a string")
		case "sent_at":
			d.check(k, decodeValue(raw, &m.SentAt), "an rfc 3339 timestamp string")
		case "received_at":
			d.check(k, decodeValue(raw, &m.ReceivedAt), "an rfc 3339 timestamp string")
		case "meta":
			m.Meta = d.meta(raw)
		default:
			if m.unknown == nil {
				m.unknown = make(map[string]json.RawMessage)
			}
			// Insignificant white space goes, so the value encodes the same however
			// it travels (json.Marshal compacts Marshaler output too).
			if bytes.ContainsAny(raw, " \t\r\n") {
				var c bytes.Buffer
				if err := json.Compact(&c, raw); err != nil {
					return false, &invalidError{msg: ErrInvalid.Error() + ": " + err.Error(), err: err}
				}
				raw = c.Bytes()
			}
			m.unknown[k] = raw
		}
	}
	if len(d.errs) > 0 {
		// Map order is random; sorted, the report is the same every time.
		slices.SortFunc(d.errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return false, &ValidationError{Errors: d.errs}
	}
	return hasV, nil
}

// decoder fills known fields from raw JSON values, collecting type errors. Field
// names are built only for errors: decoding is on every message's path.
type decoder struct {
	errs []FieldError
}

// check records that field must be want unless ok.
func (d *decoder) check(field string, ok bool, want string) {
	if !ok {
		d.errs = append(d.errs, FieldError{Field: field, Problem: "must be " + want})
	}
}

func (d *decoder) external(raw json.RawMessage, e *External) {
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil {
		d.check("external", false, "an object")
		return
	}
	for k, raw := range members {
		switch k {
		case "message":
			d.check("external.message", decodeString(raw, &e.Message), "a string")
		case "thread":
			d.check("external.thread", decodeString(raw, &e.Thread), "a string")
		case "chat":
			d.check("external.chat", decodeString(raw, &e.Chat), "a string")
		}
	}
}

func (d *decoder) attachments(raw json.RawMessage) []Attachment {
	var items []map[string]json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		d.check("attachments", false, "an array of objects")
		return nil
	}
	if len(items) == 0 {
		return nil
	}
	as := make([]Attachment, len(items))
	for i, members := range items {
		a := &as[i]
		field := func(name string) string { return "attachments[" + strconv.Itoa(i) + "]" + name }
		for k, raw := range members {
			switch k {
			case "name":
				if !decodeString(raw, &a.Name) {
					d.check(field(".name"), false, "a string")
				}
			case "content_type":
				if !decodeString(raw, &a.ContentType) {
					d.check(field(".content_type"), false, "a string")
				}
			case "size":
				if !decodeValue(raw, &a.Size) {
					d.check(field(".size"), false, "an integer")
				}
			case "url":
				if !decodeString(raw, &a.URL) {
					d.check(field(".url"), false, "a string")
				}
			case "key":
				if !decodeString(raw, &a.Key) {
					d.check(field(".key"), false, "a string")
				}
			case "content_id":
				if !decodeString(raw, &a.ContentID) {
					d.check(field(".content_id"), false, "a string")
				}
			case "inline":
				if !decodeValue(raw, &a.Inline) {
					d.check(field(".inline"), false, "a boolean")
				}
			}
		}
	}
	return as
}

// quickReplies decodes the quick_replies array; null and [] are nil.
func (d *decoder) quickReplies(raw json.RawMessage) []string {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		d.check("quick_replies", false, "an array of strings")
		return nil
	}
	if len(items) == 0 {
		return nil
	}
	labels := make([]string, len(items))
	for i, raw := range items {
		if !decodeString(raw, &labels[i]) {
			d.check("quick_replies["+strconv.Itoa(i)+"]", false, "a string")
		}
	}
	return labels
}

// meta decodes the meta object; null and {} are nil.
func (d *decoder) meta(raw json.RawMessage) map[string]string {
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil {
		d.check("meta", false, "an object of strings")
		return nil
	}
	if len(members) == 0 {
		return nil
	}
	meta := make(map[string]string, len(members))
	for k, raw := range members {
		var s string
		if !decodeString(raw, &s) {
			d.check("meta["+quote(k)+"]", false, "a string")
		}
		meta[k] = s
	}
	return meta
}

// decodeString sets *s from raw, a JSON string or null, and reports success.
func decodeString(raw json.RawMessage, s *string) bool {
	// Fast path: raw has passed json.Unmarshal's syntax check and the UTF-8
	// check, so a string without escapes is exactly its bytes between quotes.
	if n := len(raw); n >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		*s = string(raw[1 : n-1])
		return true
	}
	return decodeValue(raw, s)
}

// decodeValue unmarshals raw into v and reports success.
func decodeValue(raw json.RawMessage, v any) bool {
	return json.Unmarshal(raw, v) == nil
}

// appendJSON appends m's JSON form to b. It writes strings with only the escapes
// JSON requires (no \u003c for '<', no \u2028), so re-encoding a decoded
// envelope never makes it longer and Decode(Encode(m)) stays within
// MaxEnvelopeBytes.
func (m *Message) appendJSON(b []byte) ([]byte, error) {
	w := objectWriter{b: append(b, '{')}
	w.key("v")
	w.b = strconv.AppendInt(w.b, int64(m.V), 10)
	w.str("id", m.ID, true)
	w.str("kind", string(m.Kind), true)
	w.str("type", m.Type, false)
	w.str("direction", string(m.Direction), true)
	w.str("channel", m.Channel, true)
	if !m.External.IsZero() {
		w.key("external")
		x := objectWriter{b: append(w.b, '{')}
		x.str("message", m.External.Message, false)
		x.str("thread", m.External.Thread, false)
		x.str("chat", m.External.Chat, false)
		w.b = append(x.b, '}')
	}
	w.str("from", string(m.From), false)
	w.str("to", string(m.To), false)
	w.str("contact", m.ContactID, false)
	w.str("conversation", m.ConversationID, false)
	w.str("text", m.Text, false)
	w.str("html", m.HTML, false)
	if len(m.Attachments) > 0 {
		w.key("attachments")
		w.b = append(w.b, '[')
		for i, a := range m.Attachments {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			x := objectWriter{b: append(w.b, '{')}
			x.str("name", a.Name, false)
			x.str("content_type", a.ContentType, false)
			if a.Size != 0 {
				x.key("size")
				x.b = strconv.AppendInt(x.b, a.Size, 10)
			}
			x.str("url", a.URL, false)
			x.str("key", a.Key, false)
			x.str("content_id", a.ContentID, false)
			if a.Inline {
				x.key("inline")
				x.b = append(x.b, "true"...)
			}
			w.b = append(x.b, '}')
		}
		w.b = append(w.b, ']')
	}
	if len(m.QuickReplies) > 0 {
		w.key("quick_replies")
		w.b = append(w.b, '[')
		for i, label := range m.QuickReplies {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendString(w.b, label)
		}
		w.b = append(w.b, ']')
	}
	w.str("reply_to", m.ReplyTo, false)
	w.str("language", m.Language, false)
	if err := w.time("sent_at", m.SentAt); err != nil {
		return nil, err
	}
	if err := w.time("received_at", m.ReceivedAt); err != nil {
		return nil, err
	}
	if len(m.Meta) > 0 {
		w.key("meta")
		x := objectWriter{b: append(w.b, '{')}
		for _, k := range slices.Sorted(maps.Keys(m.Meta)) {
			x.str(k, m.Meta[k], true)
		}
		w.b = append(x.b, '}')
	}
	if len(m.unknown) > 0 {
		for _, k := range slices.Sorted(maps.Keys(m.unknown)) {
			w.key(k)
			w.b = append(w.b, m.unknown[k]...)
		}
	}
	return append(w.b, '}'), nil
}

// objectWriter appends the members of one JSON object; the caller writes the
// braces.
type objectWriter struct {
	b []byte
	n int
}

func (w *objectWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

// str writes k: v, leaving the member out when v is empty unless always is set.
func (w *objectWriter) str(k, v string, always bool) {
	if v == "" && !always {
		return
	}
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *objectWriter) time(k string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	v, err := t.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	w.key(k)
	w.b = append(w.b, v...)
	return nil
}

// appendString appends s as a JSON string with the shortest escapes JSON allows;
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package core

import (
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrInvalid is matched by every error that reports data breaking the
	// envelope's rules: malformed JSON, a *ValidationError, an invalid Identity.
	// Retrying cannot help; such a message belongs in a dead-letter queue.
	ErrInvalid = errors.New("core: invalid envelope")
	// ErrUnsupportedVersion is returned by Decode for an envelope whose "v" is
	// present but is not EnvelopeVersion, typically one written by a newer build.
	// It does not match ErrInvalid: the data may be fine for another reader.
	ErrUnsupportedVersion = errors.New("core: unsupported envelope version")
	// ErrTooLarge is returned by Decode for input, and by Encode for output,
	// longer than MaxEnvelopeBytes. It does not match ErrInvalid.
	ErrTooLarge = errors.New("core: envelope too large")
)

// FieldError is one broken rule of a Message.
type FieldError struct {
	// Field is the JSON path of the offending value: "text",
	// "attachments[2].url", `meta["lang"]`.
	Field string
	// Problem says, in lower case, what is wrong and which limit applies, e.g.
	// "70000 bytes, at most 65536".
	Problem string
}

// String returns "field: problem".
func (e FieldError) String() string { return e.Field + ": " + e.Problem }

// ValidationError lists every rule a Message breaks, in field order. It matches
// ErrInvalid. Message.Validate and Decode return it as *ValidationError.
type ValidationError struct {
	Errors []FieldError
}

// Error returns all problems on one line, separated by "; ".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, fe := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// invalidError is a problem that is not about one field: malformed JSON, a bad
// identity given to ParseIdentity. It matches ErrInvalid and unwraps to its cause.
type invalidError struct {
	msg string
	err error
}

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// typePattern is the rule for Message.Type, as error messages and the schema spell it.
const typePattern = `^[a-z][a-z0-9_.-]{0,63}$`

// maxTypeBytes is the longest Message.Type.
const maxTypeBytes = 64

// Validate checks m against every envelope rule and returns nil or a
// *ValidationError listing all problems, not just the first. The rules:
//
//   - v is EnvelopeVersion; id is a canonical ULID (see ValidID);
//   - kind is "message" or "event", direction "inbound" or "outbound";
//   - channel is a valid channel name (see ValidChannel);
//   - type, when set, matches ^[a-z][a-z0-9_.-]{0,63}$, and an event needs one;
//   - from and to, when set, are valid identities (see ParseIdentity); an
//     inbound message needs from, an outbound message needs to or conversation;
//   - text at most MaxTextBytes, html at most MaxHTMLBytes;
//   - at most MaxAttachments attachments, each with a url or a key, a size of
//     at least 0, a name of at most MaxAttachmentNameBytes and, when set, a
//     content type that mime.ParseMediaType accepts and that has a subtype;
//   - at most MaxQuickReplies quick replies, each non-empty and at most
//     MaxQuickReplyBytes;
//   - at most MaxMetaEntries meta entries with non-empty keys of at most
//     MaxMetaKeyBytes and values of at most MaxMetaValueBytes;
//   - every string is valid UTF-8 and both timestamps fit RFC 3339.
//
// Lengths are in bytes. Validate does not look at unknown fields.
func (m *Message) Validate() error {
	if m == nil {
		return &ValidationError{Errors: []FieldError{{Field: "message", Problem: "nil"}}}
	}
	var v validator

	switch {
	case m.V == 0:
		v.addf("v", "required, must be %d", EnvelopeVersion)
	case m.V != EnvelopeVersion:
		v.addf("v", "%d, must be %d", m.V, EnvelopeVersion)
	}

	switch {
	case m.ID == "":
		v.add("id", "required")
	case !ValidID(m.ID):
		v.add("id", "not a ulid (26 characters of upper-case crockford base32)")
	}

	switch m.Kind {
	case KindMessage, KindEvent:
	case "":
		v.add("kind", "required")
	default:
		v.addf("kind", "%s, must be %q or %q", quote(string(m.Kind)), KindMessage, KindEvent)
	}

	switch {
	case m.Type != "" && !validType(m.Type):
		v.addf("type", "%s does not match %s", quote(m.Type), typePattern)
	case m.Type == "" && m.Kind == KindEvent:
		v.add("type", "required for an event")
	}

	switch m.Direction {
	case Inbound, Outbound:
	case "":
		v.add("direction", "required")
	default:
		v.addf("direction", "%s, must be %q or %q", quote(string(m.Direction)), Inbound, Outbound)
	}

	switch {
	case m.Channel == "":
		v.add("channel", "required")
	case !ValidChannel(m.Channel):
		v.addf("channel", "%s does not match %s", quote(m.Channel), channelPattern)
	}

	v.str("external.message", m.External.Message, 0)
	v.str("external.thread", m.External.Thread, 0)
	v.str("external.chat", m.External.Chat, 0)

	switch {
	case m.From != "":
		if p := identityProblem(string(m.From)); p != "" {
			v.add("from", p)
		}
	case m.Kind == KindMessage && m.Direction == Inbound:
		v.add("from", "required for an inbound message")
	}
	switch {
	case m.To != "":
		if p := identityProblem(string(m.To)); p != "" {
			v.add("to", p)
		}
	case m.Kind == KindMessage && m.Direction == Outbound && m.ConversationID == "":
		v.add("to", "required for an outbound message without a conversation")
	}

	v.str("contact", m.ContactID, 0)
	v.str("conversation", m.ConversationID, 0)
	v.str("text", m.Text, MaxTextBytes)
	v.str("html", m.HTML, MaxHTMLBytes)

	if n := len(m.Attachments); n > MaxAttachments {
		v.addf("attachments", "%d attachments, at most %d", n, MaxAttachments)
	}
	for i, a := range m.Attachments {
		v.attachment(i, a)
	}

	if n := len(m.QuickReplies); n > MaxQuickReplies {
		v.addf("quick_replies", "%d quick replies, at most %d", n, MaxQuickReplies)
	}
	for i, label := range m.QuickReplies {
		field := "quick_replies[" + strconv.Itoa(i) + "]"
		if label == "" {
			v.add(field, "empty")
			continue
		}
		v.str(field, label, MaxQuickReplyBytes)
	}

	v.str("reply_to", m.ReplyTo, 0)
	v.str("language", m.Language, 0)
	v.time("sent_at", m.SentAt)
	v.time("received_at", m.ReceivedAt)

	if n := len(m.Meta); n > MaxMetaEntries {
		v.addf("meta", "%d entries, at most %d", n, MaxMetaEntries)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Meta)) {
		field := func() string { return "meta[" + quote(k) + "]" }
		switch {
		case k == "":
			v.add(field(), "empty key")
		case len(k) > MaxMetaKeyBytes:
			v.addf(field(), "key %d bytes, at most %d", len(k), MaxMetaKeyBytes)
		case !utf8.ValidString(k):
			v.add(field(), "key not valid utf-8")
		}
		if p := stringProblem(m.Meta[k], MaxMetaValueBytes); p != "" {
			v.add(field(), p)
		}
	}

	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs}
}

// validator collects FieldErrors.
type validator struct {
	errs []FieldError
}

func (v *validator) add(field, problem string) {
	v.errs = append(v.errs, FieldError{Field: field, Problem: problem})
}

func (v *validator) addf(field, format string, args ...any) {
	v.add(field, fmt.Sprintf(format, args...))
}

// str checks that s is valid UTF-8 and, when limit > 0, at most limit bytes.
func (v *validator) str(field, s string, limit int) {
	if p := stringProblem(s, limit); p != "" {
		v.add(field, p)
	}
}

// stringProblem returns what is wrong with s, or "": it must be valid UTF-8
// and, when limit > 0, at most limit bytes.
func stringProblem(s string, limit int) string {
	switch {
	case limit > 0 && len(s) > limit:
		return fmt.Sprintf("%d bytes, at most %d", len(s), limit)
	case !utf8.ValidString(s):
		return "not valid utf-8"
	}
	return ""
}

func (v *validator) attachment(i int, a Attachment) {
	field := func(name string) string { return "attachments[" + strconv.Itoa(i) + "]" + name }
	if p := stringProblem(a.Name, MaxAttachmentNameBytes); p != "" {
		v.add(field(".name"), p)
	}
	if a.ContentType != "" {
		if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || !strings.Contains(mt, "/") {
			v.add(field(".content_type"), `not a media type like "image/png"`)
		}
	}
	if a.Size < 0 {
		v.addf(field(".size"), "%d, must be at least 0", a.Size)
	}
	if a.URL == "" && a.Key == "" {
		v.add(field(""), "url or key required")
	}
	if p := stringProblem(a.URL, 0); p != "" {
		v.add(field(".url"), p)
	}
	if p := stringProblem(a.Key, 0); p != "" {
		v.add(field(".key"), p)
	}
	if p := stringProblem(a.ContentID, 0); p != "" {
		v.add(field(".content_id"), p)
	}
}

func (v *validator) time(field string, t time.Time) {
	if t.IsZero() {
		return
	}
	if _, err := t.MarshalText(); err != nil {
		v.add(field, "not representable in rfc 3339: year must be 0 to 9999 and the zone offset under 24 hours")
	}
}

func validType(s string) bool {
	if len(s) == 0 || len(s) > maxTypeBytes || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// quote quotes s for an error message, cut to 40 bytes so that a huge value does
// not flood the log.
func quote(s string) string {
	const max = 40
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:max]) + "..."
}

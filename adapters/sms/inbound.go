package sms

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/event"
)

// maxFormBytes bounds a webhook's body; Twilio's are a few kilobytes.
const maxFormBytes = 256 << 10

// sidPattern is a Twilio SID: two letters and 32 hex digits.
var sidPattern = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)

// errBadForm is returned by readForm for a body Twilio never sends.
var errBadForm = errors.New("malformed form")

// readForm reads r's application/x-www-form-urlencoded body. Twilio never
// repeats a parameter; a repeated one is refused, since only one of its values
// could be checked against the signature and used. A body too large or too
// slow returns edge's errors (edge.Status gives their 413 and 408).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("%w: content type must be application/x-www-form-urlencoded", errBadForm)
	}
	body, err := edge.ReadBody(w, r, maxFormBytes)
	if err != nil {
		if edge.Status(err) != http.StatusBadRequest {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errBadForm, err)
	}
	return parseForm(string(body))
}

// parseForm parses a urlencoded body strictly.
func parseForm(body string) (url.Values, error) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadForm, err)
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return nil, fmt.Errorf("%w: parameter %s repeated", errBadForm, quote(k))
		}
	}
	return form, nil
}

// serveWebhook handles Twilio's incoming-message webhook: checks the
// signature, parses and normalizes the message, records opt-outs, publishes it
// (an opt-out or opt-in keyword followed by contact.unreachable or
// contact.reachable) and answers empty TwiML once JetStream holds it.
func (a *Adapter) serveWebhook(w http.ResponseWriter, r *http.Request) {
	form, ok := a.accept(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	m, kw, err := parseInbound(a.name, form, a.cfg.DefaultRegion)
	if err != nil {
		a.log.Debug("webhook: malformed message", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	optIn := false
	switch kw.kind {
	case kwOptOut:
		// Recorded before the answer: a failure makes Twilio see an error, not
		// an opt-out silently lost.
		if err := a.recordOptOut(ctx, m.From, kw.word); err != nil {
			a.log.Error("webhook: opt-out not recorded", "err", err)
			http.Error(w, "opt-out not recorded", http.StatusServiceUnavailable)
			return
		}
		setMeta(m, "opt_out", "true")
	case kwOptIn:
		had, err := a.recordOptIn(ctx, m.From)
		if err != nil {
			a.log.Error("webhook: opt-in not recorded", "err", err)
			http.Error(w, "opt-in not recorded", http.StatusServiceUnavailable)
			return
		}
		// YES is an answer more often than an opt-in: it counts only for a
		// number that had opted out.
		if optIn = had || kw.word != "YES"; optIn {
			setMeta(m, "opt_in", "true")
		}
	case kwHelp:
		setMeta(m, "help", "true")
	}
	dup, err := a.pub.Inbound(ctx, m)
	if err != nil {
		if errors.Is(err, core.ErrInvalid) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.log.Error("webhook: not published, Twilio will see an error", "msg_sid", m.External.Message, "err", err)
		http.Error(w, "not stored", http.StatusServiceUnavailable)
		return
	}
	// After the keyword itself: the pipeline takes a customer's message as a
	// sign that they can be reached, the STOP included.
	if ev := a.reachEvent(m, kw, optIn); ev != nil {
		if _, err := a.pub.Inbound(ctx, ev); err != nil {
			a.log.Error("webhook: reachability not published, Twilio will see an error", "msg_sid", m.External.Message, "type", ev.Type, "err", err)
			http.Error(w, "not stored", http.StatusServiceUnavailable)
			return
		}
	}
	if a.name == channelWhatsApp {
		if err := a.touchWindow(ctx, m.From); err != nil {
			a.log.Warn("webhook: 24-hour window not recorded; replies may need the template", "msg_sid", m.External.Message, "err", err)
		}
	}
	a.log.Debug("webhook: published", "msg_id", m.ID, "msg_sid", m.External.Message, "duplicate", dup)
	reply := ""
	if kw.kind == kwHelp {
		reply = a.cfg.HelpReply
	}
	writeTwiML(w, reply)
}

// accept reads and authenticates a webhook. It answers 400 for a malformed
// body and 403 for a bad signature or another account's request, and then
// returns false.
func (a *Adapter) accept(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, err := readForm(w, r)
	if err != nil {
		http.Error(w, err.Error(), edge.Status(err))
		return nil, false
	}
	if !a.verified(r, form) {
		// Warn: a human may need to fix public_url or the token; the request's
		// URL is what Twilio's signature must cover. Throttled: anyone can
		// send forged webhooks.
		edge.Reject(r, a.log, a.name, edge.Signature, "webhook: signature missing or invalid, refused", "url", a.signedURL(r))
		http.Error(w, "invalid "+SignatureHeader, http.StatusForbidden)
		return nil, false
	}
	if sid := form.Get("AccountSid"); sid != "" && sid != a.cfg.AccountSID {
		edge.Reject(r, a.log, a.name, edge.Account, "webhook: request of another Twilio account, refused")
		http.Error(w, "wrong account", http.StatusForbidden)
		return nil, false
	}
	return form, true
}

// twimlEmpty is the answer that tells Twilio to do nothing more.
const twimlEmpty = `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response/>\n"

// writeTwiML answers 200 with TwiML: empty, or one message replying text.
func writeTwiML(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if text == "" {
		_, _ = io.WriteString(w, twimlEmpty)
		return
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response><Message>")
	escapeXML(&b, text)
	b.WriteString("</Message></Response>\n")
	_, _ = io.WriteString(w, b.String())
}

func escapeXML(b *strings.Builder, s string) {
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
}

// matched is the keyword an inbound message is, and the word that matched.
type matched struct {
	kind keyword
	word string
}

// parseInbound turns the parameters of Twilio's incoming-message webhook into
// an inbound envelope of channel: From normalized to E.164, MessageSid as
// External.Message (Twilio's retries of one message are stored once), Body as
// Text, media as attachments (URL and content type, fetched with FetchMedia),
// WhatsApp's profile name and similar extras in Meta. It also reports whether
// the message is an opt-out, opt-in or help keyword. Errors describe what is
// malformed, for a 400 answer.
func parseInbound(channel string, form url.Values, region string) (*core.Message, matched, error) {
	sid := firstOf(form, "MessageSid", "SmsMessageSid", "SmsSid")
	if !sidPattern.MatchString(sid) {
		return nil, matched{}, errors.New("MessageSid: missing or not a Twilio SID")
	}
	rawFrom := form.Get("From")
	if rawFrom == "" {
		return nil, matched{}, errors.New("From: missing")
	}
	from, err := partyAddress(channel, rawFrom, region)
	if err != nil {
		return nil, matched{}, fmt.Errorf("From: %w", err)
	}
	body := form.Get("Body")
	if !utf8.ValidString(body) {
		return nil, matched{}, errors.New("Body: not valid utf-8")
	}
	if len(body) > core.MaxTextBytes {
		return nil, matched{}, fmt.Errorf("Body: %d bytes, at most %d", len(body), core.MaxTextBytes)
	}

	m := core.NewMessage(core.KindMessage, core.Inbound, channel)
	m.External.Message = sid
	m.From = core.NewIdentity(channel, from)
	if to, err := partyAddress(channel, form.Get("To"), region); err == nil {
		m.To = core.NewIdentity(channel, to)
	}
	m.Text = body

	n := 0
	if s := form.Get("NumMedia"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 0 || n > core.MaxAttachments {
			return nil, matched{}, fmt.Errorf("NumMedia: want 0 to %d", core.MaxAttachments)
		}
	}
	for i := range n {
		idx := strconv.Itoa(i)
		raw := form.Get("MediaUrl" + idx)
		u, err := url.Parse(raw)
		if raw == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !utf8.ValidString(raw) {
			return nil, matched{}, fmt.Errorf("MediaUrl%d: missing or not an absolute http(s) URL", i)
		}
		at := core.Attachment{URL: raw, Name: mediaName(u)}
		if ct := form.Get("MediaContentType" + idx); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.Contains(mt, "/") && utf8.ValidString(ct) {
				at.ContentType = ct
			}
		}
		m.Attachments = append(m.Attachments, at)
	}

	for _, p := range metaParams {
		setMeta(m, p.meta, form.Get(p.param))
	}

	var kw matched
	if t, ok := optOutTypes[strings.ToUpper(form.Get("OptOutType"))]; ok {
		kw = matched{kind: t, word: strings.ToUpper(form.Get("OptOutType"))}
	} else if n == 0 {
		kw.kind, kw.word = matchKeyword(body)
	}
	return m, kw, nil
}

// metaParams are the webhook parameters kept in Meta, where present.
var metaParams = []struct{ param, meta string }{
	{"ProfileName", event.MetaProfileName},
	{"WaId", "wa_id"},
	{"MessagingServiceSid", "messaging_service_sid"},
	{"NumSegments", "num_segments"},
	{"FromCountry", "from_country"},
	{"FromState", "from_state"},
	{"FromCity", "from_city"},
	{"ButtonText", "button_text"},
	{"ButtonPayload", "button_payload"},
	{"Latitude", "latitude"},
	{"Longitude", "longitude"},
	{"Address", "address"},
	{"Label", "label"},
	{"OriginalRepliedMessageSid", "replied_to_sid"},
	{"Forwarded", "forwarded"},
	{"OptOutType", "opt_out_type"},
}

// setMeta sets m.Meta[k] to v unless v is empty, making v valid UTF-8 of at
// most core.MaxMetaValueBytes.
func setMeta(m *core.Message, k, v string) {
	if v == "" {
		return
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) > core.MaxMetaValueBytes {
		cut := core.MaxMetaValueBytes
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	if m.Meta == nil {
		m.Meta = map[string]string{}
	}
	m.Meta[k] = v
}

// mediaName is the last element of a media URL's path (Twilio's Media SID),
// at most core.MaxAttachmentNameBytes, or "".
func mediaName(u *url.URL) string {
	p := strings.TrimRight(u.Path, "/")
	name := p[strings.LastIndexByte(p, '/')+1:]
	if len(name) > core.MaxAttachmentNameBytes || !utf8.ValidString(name) {
		return ""
	}
	return name
}

// firstOf returns the first non-empty value among the named parameters.
func firstOf(form url.Values, names ...string) string {
	for _, n := range names {
		if v := form.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// quote quotes s for an error message, cut to 40 bytes.
func quote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

package email

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// Meta keys of inbound envelopes (and, for in_reply_to, references and
// subject, of outbound ones).
const (
	// MetaReplyToken is the token of the plus address the mail was sent to
	// (support+<token>@...).
	MetaReplyToken = "reply_token"
	// MetaOriginalText is the whole text body, quoted history and signature
	// included, when it differs from Text and fits in a meta value.
	MetaOriginalText = "original_text"
	// MetaFromAddress is the From address when the identity was taken from
	// Reply-To (web forms send "From: noreply@..., Reply-To: customer").
	MetaFromAddress = "from_address"
	// MetaCc holds the Cc addresses, comma-separated.
	MetaCc = "cc"
	// MetaTruncated is "true" when the mail was larger than
	// limits.max_message_bytes and only its start was read.
	MetaTruncated = "truncated"
	// MetaAttachmentsOmitted lists the attachments whose bytes are not in the
	// envelope: "name (type, size bytes, part N); ...".
	MetaAttachmentsOmitted = "attachments_omitted"
	// MetaHTMLOmitted is "true" when the HTML body did not fit the envelope.
	MetaHTMLOmitted = "html_omitted"
	// MetaInReplyTo and MetaReferences, on an outbound envelope, set the
	// In-Reply-To and References of the reply (Message-IDs, with or without
	// angle brackets; references space- or comma-separated).
	MetaInReplyTo  = "in_reply_to"
	MetaReferences = "references"
	// MetaDSNStatus, on a delivery.failed event from a bounce, is the DSN status
	// code, e.g. "5.1.1".
	MetaDSNStatus = "dsn_status"
)

// Lifetimes of the records in threadBucket.
const (
	threadTTL = 90 * 24 * time.Hour
	sentTTL   = 30 * 24 * time.Hour
)

// maxReferences is the most Message-IDs a reply's References carries: the root
// and the latest ones, as mail clients trim long threads.
const maxReferences = 20

// tokenRE is what meta reply_token accepts of a plus address: omnigate
// writes a lower-case envelope id (replyTokenOf); others (support+billing@)
// are kept for routing rules.
var tokenRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// inbound builds the envelope of a customer mail.
func (a *Adapter) inbound(p *Parsed, raw []byte, truncated bool) (*core.Message, error) {
	sender := a.customer(p)
	meta := map[string]string{}
	if sender != p.From {
		meta[MetaFromAddress] = p.From
	}
	from, err := core.ParseIdentity(string(identity(sender)))
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	m := core.NewMessage(core.KindMessage, core.Inbound, Name)
	m.From = from
	m.To = identity(a.cfg.Address)
	m.External.Message = externalID(p, raw)
	m.External.Thread = threadRoot(p)
	m.Text = core.Truncate(p.Text, core.MaxTextBytes)
	if strings.TrimSpace(m.Text) == "" {
		m.Text = p.Subject
	}
	if len(p.HTML) <= core.MaxHTMLBytes {
		m.HTML = p.HTML
	} else {
		meta[MetaHTMLOmitted] = "true"
	}
	if !p.Date.IsZero() && p.Date.Year() > 1970 && p.Date.Year() < 10000 {
		m.SentAt = p.Date
	}
	setMeta(meta, event.MetaSubject, p.Subject)
	setMeta(meta, event.MetaName, p.FromName)
	setMeta(meta, MetaCc, strings.Join(p.Cc, ","))
	if p.FullText != p.Text {
		if len(p.FullText) <= core.MaxMetaValueBytes {
			setMeta(meta, MetaOriginalText, p.FullText)
		}
	}
	if truncated || p.Partial {
		meta[MetaTruncated] = "true"
	}
	token := a.replyToken(p)
	setMeta(meta, MetaReplyToken, token)
	setMeta(meta, event.MetaThreadKeys, a.threadKeys(p, token))
	m.Meta = meta
	a.attach(m, p)
	resolveInline(m)
	fit(m)
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
	return m, nil
}

// customer is the customer's address: the single Reply-To address when there
// is one (replies go there; web forms send "From: noreply@..., Reply-To:
// <customer>"), else From.
func (a *Adapter) customer(p *Parsed) string {
	if len(p.ReplyTo) == 1 && p.ReplyTo[0] != p.From && !strings.EqualFold(p.ReplyTo[0], a.cfg.Address) {
		return p.ReplyTo[0]
	}
	return p.From
}

// setMeta sets meta[k] to v when v is not empty, cut to the longest meta value.
func setMeta(meta map[string]string, k, v string) {
	if v = strings.TrimSpace(v); v != "" {
		meta[k] = core.Truncate(v, core.MaxMetaValueBytes)
	}
}

// externalID is the provider id of a mail: its Message-ID, or for a mail
// without one a hash of its bytes, so fetching it again gives the same id.
func externalID(p *Parsed, raw []byte) string {
	if p.MessageID != "" {
		return p.MessageID
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// threadRoot is the key of the mail's thread: the first Message-ID of
// References (the root), else In-Reply-To, else the mail's own Message-ID
// (a mail that starts a thread is its root).
func threadRoot(p *Parsed) string {
	switch {
	case len(p.References) > 0:
		return p.References[0]
	case len(p.InReplyTo) > 0:
		return p.InReplyTo[0]
	}
	return p.MessageID
}

// threadKeys lists, comma-separated and within one meta value, the thread
// keys of a mail: first the envelope ids of omnigate's replies it answers
// (its reply token's, then those of its In-Reply-To and References ids that
// omnigate made), which the pipeline recorded when it sent them, then every
// Message-ID of In-Reply-To and References.
func (a *Adapter) threadKeys(p *Parsed, token string) string {
	var keys []string
	add := func(k string) {
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	add(tokenEnvelope(token))
	ids := slices.Concat(p.InReplyTo, p.References)
	for _, id := range ids {
		add(a.ownEnvelope(id))
	}
	for _, id := range ids {
		add(id)
	}
	var b strings.Builder
	for _, k := range keys {
		if b.Len()+len(k)+1 > core.MaxMetaValueBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
	}
	return b.String()
}

// replyTokenOf is the plus-address token of the reply with envelope id: its
// id in lower case (ULIDs are case-insensitive), which tokenEnvelope reads
// back. Replies use it for their Reply-To and their return path.
func replyTokenOf(id string) string { return strings.ToLower(id) }

// plusAddress is the support address with the reply token of envelope id:
// <local>+<token>@<domain of address>, which the mailbox receives.
func (a *Adapter) plusAddress(id string) string {
	local, domain, _ := strings.Cut(a.cfg.Address, "@")
	return local + "+" + replyTokenOf(id) + "@" + domain
}

// tokenEnvelope returns the envelope id a plus-address token names, or ""
// for a token omnigate did not make (support+billing@...).
func tokenEnvelope(token string) string {
	if id := strings.ToUpper(token); core.ValidID(id) {
		return id
	}
	return ""
}

// ownEnvelope returns the envelope id of a Message-ID omnigate made
// (<envelope-id@domain>), or "".
func (a *Adapter) ownEnvelope(messageID string) string {
	local, domain, ok := strings.Cut(messageID, "@")
	if id := strings.ToUpper(local); ok && strings.EqualFold(domain, a.cfg.Domain) && core.ValidID(id) {
		return id
	}
	return ""
}

// replyToken returns the token of a plus address of the support address
// among the mail's recipients: support+<token>@domain.
func (a *Adapter) replyToken(p *Parsed) string {
	local, domain, _ := strings.Cut(strings.ToLower(a.cfg.Address), "@")
	for _, r := range slices.Concat(p.DeliveredTo, p.To, p.Cc) {
		l, d, ok := strings.Cut(r, "@")
		if !ok || (d != domain && d != a.cfg.Domain) {
			continue
		}
		base, token, ok := strings.Cut(l, "+")
		if ok && base == local && tokenRE.MatchString(token) {
			return token
		}
	}
	return ""
}

// attach puts the mail's attachments into m: as data: URLs while they fit
// limits.inline_attachment_bytes and limits.inline_total_bytes, else
// described only, with a mid: URL (RFC 2392) naming the mail, and listed in
// meta attachments_omitted.
func (a *Adapter) attach(m *core.Message, p *Parsed) {
	var total int64
	var omitted []string
	for _, at := range p.Attachments {
		if len(m.Attachments) >= core.MaxAttachments {
			omitted = append(omitted, describe(at))
			continue
		}
		n := int64(len(at.Data))
		if at.Data != nil && n <= a.cfg.Limits.InlineAttachmentBytes && total+n <= a.cfg.Limits.InlineTotalBytes {
			total += n
			m.Attachments = append(m.Attachments, core.Attachment{
				Name: at.Name, ContentType: at.ContentType, Size: at.Size, URL: dataURL(at.ContentType, at.Data),
				ContentID: at.ContentID, Inline: at.Inline,
			})
			continue
		}
		m.Attachments = append(m.Attachments, omittedAttachment(m, at))
		omitted = append(omitted, describe(at))
	}
	if len(omitted) > 0 {
		setMeta(m.Meta, MetaAttachmentsOmitted, strings.Join(omitted, "; "))
	}
}

// omittedAttachment describes at without its bytes: they stay in the mail,
// which its mid: URL names (with the part's Content-ID when it has one).
func omittedAttachment(m *core.Message, at Attachment) core.Attachment {
	c := core.Attachment{Name: at.Name, ContentType: at.ContentType, Size: at.Size, ContentID: at.ContentID, Inline: at.Inline}
	if strings.HasPrefix(m.External.Message, "sha256:") {
		c.Key = "email:" + m.External.Message + "/" + at.Part
		return c
	}
	c.URL = "mid:" + url.PathEscape(m.External.Message)
	if at.ContentID != "" {
		c.URL += "/" + url.PathEscape(at.ContentID)
	}
	return c
}

// describe is an omitted attachment's entry in meta attachments_omitted.
func describe(at Attachment) string {
	return fmt.Sprintf("%s (%s, %d bytes, part %s)", at.Name, at.ContentType, at.Size, at.Part)
}

// dataURL is a data: URL of b.
func dataURL(mt string, b []byte) string {
	if mt == "" {
		mt = "application/octet-stream"
	}
	return "data:" + mt + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// fit shrinks m until its encoding fits core.MaxEnvelopeBytes: the HTML body
// goes first, then the largest inline attachments, then text.
func fit(m *core.Message) {
	for range 64 {
		_, err := m.Encode()
		if !errors.Is(err, core.ErrTooLarge) {
			return
		}
		if m.HTML != "" {
			m.HTML = ""
			m.Meta[MetaHTMLOmitted] = "true"
			continue
		}
		largest, size := -1, 0
		for i, at := range m.Attachments {
			if strings.HasPrefix(at.URL, "data:") && len(at.URL) > size {
				largest, size = i, len(at.URL)
			}
		}
		if largest >= 0 {
			at := m.Attachments[largest]
			m.Attachments[largest] = omittedAttachment(m, Attachment{Name: at.Name, ContentType: at.ContentType, Size: at.Size, Part: "?", ContentID: at.ContentID, Inline: at.Inline})
			entry := describe(Attachment{Name: at.Name, ContentType: at.ContentType, Size: at.Size, Part: "?"})
			if prev := m.Meta[MetaAttachmentsOmitted]; prev != "" {
				entry = prev + "; " + entry
			}
			setMeta(m.Meta, MetaAttachmentsOmitted, entry)
			continue
		}
		if len(m.Text) > 1024 {
			m.Text = core.Truncate(m.Text, len(m.Text)/2)
			m.Meta[MetaTruncated] = "true"
			continue
		}
		return
	}
}

// threadInfo is what a reply needs to thread under a mail: its Message-ID,
// the References a reply to it carries, and its subject.
type threadInfo struct {
	MessageID  string    `json:"message_id"`
	References []string  `json:"references,omitempty"`
	Subject    string    `json:"subject,omitempty"`
	At         time.Time `json:"at"`
}

// sentInfo is what the adapter remembers of a sent reply, for its bounce.
type sentInfo struct {
	Conversation string        `json:"conversation,omitempty"`
	Contact      string        `json:"contact,omitempty"`
	To           core.Identity `json:"to,omitempty"`
}

// Record keys in threadBucket.
func addrKey(address string) string { return "addr:" + address }
func convKey(conv string) string    { return "conv:" + conv }
func sentKey(id string) string      { return "sent:" + id }

// replyReferences is the References of a reply to the mail with id, whose
// own References (or In-Reply-To) are refs: refs then id, trimmed to the root
// and the latest ones.
func replyReferences(refs []string, id string) []string {
	out := slices.Clone(refs)
	if id != "" && !slices.Contains(out, id) {
		out = append(out, id)
	}
	if len(out) > maxReferences {
		out = append(out[:1], out[len(out)-maxReferences+1:]...)
	}
	return out
}

// rememberInbound records p as the latest mail of its sender, for threading a
// reply to it. A failure is logged: the reply will thread less well.
func (a *Adapter) rememberInbound(ctx context.Context, p *Parsed, log *slog.Logger) {
	if p.MessageID == "" {
		return
	}
	refs := p.References
	if len(refs) == 0 {
		refs = p.InReplyTo
	}
	sender := a.customer(p)
	info := threadInfo{MessageID: p.MessageID, References: replyReferences(refs, p.MessageID), Subject: p.Subject, At: now()}
	var cur threadInfo
	if _, err := a.threads.Update(ctx, addrKey(sender), &cur, threadTTL, func(bool) error {
		cur = info
		return nil
	}); err != nil {
		log.Warn("could not remember the mail for threading replies", "err", err)
	}
}

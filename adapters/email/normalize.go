package email

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/omnigate/omnigate/core"
	// Every charset go-message knows: UTF-8, GBK/GB18030, Big5, ISO-8859-x,
	// Windows-125x, KOI8, Shift_JIS, EUC-KR, ...
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

// Kind classifies a mail: only KindCustomer is published as a message.
type Kind string

// The kinds of mail.
const (
	// KindCustomer is mail a person wrote.
	KindCustomer Kind = "customer"
	// KindAutoReply is an automatic answer: out-of-office, vacation notice,
	// autoresponder, read receipt.
	KindAutoReply Kind = "auto_reply"
	// KindBulk is mailing-list or bulk mail (List-Id, Precedence: bulk).
	KindBulk Kind = "bulk"
	// KindBounce is a delivery status notification or another bounce.
	KindBounce Kind = "bounce"
)

// Default limits of Normalize.
const (
	// DefaultAttachmentBytes is the largest attachment whose bytes Normalize keeps.
	DefaultAttachmentBytes = 256 << 10
	// maxTextPartBytes bounds what is read of one text or HTML part.
	maxTextPartBytes = 2 << 20
	// maxParts bounds the parts Normalize looks at, against hostile nesting.
	maxParts = 200
	// maxDepth bounds multipart nesting.
	maxDepth = 16
	// maxIDs bounds the Message-IDs taken from In-Reply-To and References.
	maxIDs = 50
)

// Limits tunes Normalize. The zero value uses the defaults.
type Limits struct {
	// AttachmentBytes is the largest attachment whose bytes are kept in
	// Attachment.Data; larger ones are described only. 0 means
	// DefaultAttachmentBytes, a negative value keeps no bytes.
	AttachmentBytes int64
}

// Parsed is one mail, decoded and normalized.
type Parsed struct {
	// MessageID is the Message-ID without angle brackets, "" when missing.
	MessageID string
	// From is the sender's address, lower-cased; FromName its display name.
	From, FromName string
	// ReplyTo holds the Reply-To addresses, lower-cased.
	ReplyTo []string
	// To and Cc hold the recipients' addresses, lower-cased.
	To, Cc []string
	// DeliveredTo holds the envelope recipients the receiving server recorded
	// (Delivered-To, X-Original-To), lower-cased.
	DeliveredTo []string
	// Subject is the decoded subject.
	Subject string
	// Date is the Date header, zero when missing or unreadable.
	Date time.Time
	// InReplyTo and References are the Message-IDs of those headers, without
	// angle brackets, in order.
	InReplyTo, References []string
	// Text is what the sender wrote: the text/plain body (or the HTML body as
	// text when there is none) without quoted history and signature.
	Text string
	// FullText is the whole text body Text was taken from.
	FullText string
	// HTML is the HTML body as sent, "" when the mail had none.
	HTML string
	// Attachments are the files and inline images, in the order of the mail.
	Attachments []Attachment
	// Kind says whether a person wrote it; Reason, for other kinds, which
	// header or part told.
	Kind   Kind
	Reason string
	// ListID is the List-Id header's id (between angle brackets), if any.
	ListID string
	// OmnigateID is the X-Omnigate-Id header, set on mail omnigate sent.
	OmnigateID string
	// Bounce describes a bounce (Kind KindBounce).
	Bounce *Bounce
	// Partial is true when the mail could not be read to its end (a broken
	// MIME structure); what was read is kept.
	Partial bool
}

// Attachment is a file or an inline image of a mail.
type Attachment struct {
	// Name is the file name, or one made up from the part's position and type.
	Name string
	// ContentType is the media type, without parameters.
	ContentType string
	// ContentID is the Content-ID without angle brackets (inline images).
	ContentID string
	// Inline is true for parts shown in the body (Content-Disposition: inline).
	Inline bool
	// Size is the decoded size in bytes.
	Size int64
	// Data holds the bytes when Size is within Limits.AttachmentBytes, else nil.
	Data []byte
	// Part is the IMAP part number, e.g. "2" or "1.2".
	Part string
}

// HeaderOmnigateID is the header carrying the envelope id on mail omnigate sends.
const HeaderOmnigateID = "X-Omnigate-Id"

// errStop ends a walk early.
var errStop = errors.New("stop")

// Normalize reads one RFC 5322 mail from r and returns it decoded: headers
// (encoded words in any charset), the body text (quoted-printable and base64
// decoded, converted to UTF-8 from its charset; text/plain preferred, HTML
// rendered as text otherwise, quoted history and signature removed),
// attachments and inline images, and its kind (customer mail, auto-reply,
// bulk, bounce). It reads r to its end or to the first error.
//
// It is lenient: a broken MIME structure, an unknown charset or encoding
// gives what could be read, with Partial set. It returns an error only when r
// holds no mail header at all. Normalize is a pure function, safe for
// concurrent use.
func Normalize(r io.Reader, lim Limits) (*Parsed, error) {
	if lim.AttachmentBytes == 0 {
		lim.AttachmentBytes = DefaultAttachmentBytes
	}
	e, err := message.Read(r)
	if err != nil && e == nil {
		return nil, fmt.Errorf("email: read mail: %w", err)
	}
	p := &Parsed{Kind: KindCustomer}
	if err != nil {
		p.Partial = true
	}
	h := mail.Header{Header: e.Header}
	p.headers(h)
	p.classify(h)

	n := &normalizer{p: p, lim: lim, types: map[string]string{}, altText: map[string]bool{}, altHTML: map[string]bool{}}
	if err := e.Walk(n.part); err != nil && !errors.Is(err, errStop) {
		p.Partial = true
	}
	p.FullText = strings.TrimSpace(n.text.String())
	p.HTML = strings.TrimSpace(n.html.String())
	if strings.TrimSpace(p.FullText) == "" && p.HTML != "" {
		p.FullText = HTMLToText(p.HTML)
	}
	p.FullText = inlinePlaceholders(clean(p.FullText), p.Attachments)
	p.Text = StripQuoted(p.FullText)
	if p.Kind == KindBounce {
		n.bounceFallback()
	}
	return p, nil
}

// headers fills the fields read from the top-level header.
func (p *Parsed) headers(h mail.Header) {
	if addrs := addressList(h, "From"); len(addrs) > 0 {
		p.From, p.FromName = addrs[0].Address, addrs[0].Name
	} else if addrs := addressList(h, "Sender"); len(addrs) > 0 {
		p.From, p.FromName = addrs[0].Address, addrs[0].Name
	}
	for _, a := range addressList(h, "Reply-To") {
		p.ReplyTo = append(p.ReplyTo, a.Address)
	}
	for _, a := range addressList(h, "To") {
		p.To = append(p.To, a.Address)
	}
	for _, a := range addressList(h, "Cc") {
		p.Cc = append(p.Cc, a.Address)
	}
	for _, k := range []string{"Delivered-To", "X-Original-To"} {
		for _, v := range h.Values(k) {
			if a := addrSpecRE.FindString(v); a != "" && len(p.DeliveredTo) < 10 {
				p.DeliveredTo = append(p.DeliveredTo, strings.ToLower(a))
			}
		}
	}
	if s, err := h.Subject(); err == nil || s != "" {
		p.Subject = clean(collapse(s))
	}
	if d, err := h.Date(); err == nil {
		p.Date = d.UTC()
	}
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		p.MessageID = ids[0]
	}
	p.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	p.References = msgIDs(h.Get("References"))
	if ids := msgIDs(h.Get("List-Id")); len(ids) > 0 {
		p.ListID = strings.ToLower(ids[0])
	}
	p.OmnigateID = strings.TrimSpace(h.Get(HeaderOmnigateID))
}

// address is one parsed address.
type address struct {
	Name, Address string
}

// addrSpecRE finds an address in a header go-message cannot parse.
var addrSpecRE = regexp.MustCompile(`[^\s<>"(),;:]+@[^\s<>"(),;:]+\.[^\s<>"(),;:]+`)

// addressList parses the address header key leniently: what net/mail rejects
// (unquoted specials in display names, stray brackets) still yields the
// addresses in it.
func addressList(h mail.Header, key string) []address {
	raw := h.Get(key)
	if raw == "" {
		return nil
	}
	var out []address
	if list, err := h.AddressList(key); err == nil {
		for _, a := range list {
			if a.Address != "" {
				out = append(out, address{Name: clean(a.Name), Address: strings.ToLower(a.Address)})
			}
		}
		return out
	}
	for _, a := range addrSpecRE.FindAllString(raw, 20) {
		out = append(out, address{Address: strings.ToLower(strings.Trim(a, ".'`[]"))})
	}
	return out
}

// msgIDRE finds a Message-ID between angle brackets.
var msgIDRE = regexp.MustCompile(`<([^<>\s]{1,500})>`)

// msgIDs returns the Message-IDs in a header value, without brackets and
// repeats, at most maxIDs. A bare id without brackets is accepted too.
func msgIDs(v string) []string {
	var out []string
	add := func(id string) {
		id = strings.TrimSpace(id)
		if id == "" || !utf8.ValidString(id) || strings.ContainsAny(id, ",\x00") || len(out) >= maxIDs {
			return
		}
		for _, o := range out {
			if o == id {
				return
			}
		}
		out = append(out, id)
	}
	ms := msgIDRE.FindAllStringSubmatch(v, -1)
	for _, m := range ms {
		add(m[1])
	}
	if len(ms) == 0 {
		if v = strings.TrimSpace(v); v != "" && !strings.ContainsAny(v, " \t<>") && strings.Contains(v, "@") {
			add(v)
		}
	}
	return out
}

// classify decides the mail's kind from its top-level header.
func (p *Parsed) classify(h mail.Header) {
	set := func(k Kind, reason string) {
		if p.Kind == KindCustomer {
			p.Kind, p.Reason = k, reason
		}
	}
	mt, params, _ := h.ContentType()
	local, _, _ := strings.Cut(p.From, "@")
	switch {
	case mt == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status"),
		mt == "multipart/report" && strings.EqualFold(params["report-type"], "global-delivery-status"):
		set(KindBounce, "delivery status notification")
	case mt == "multipart/report":
		set(KindAutoReply, "report "+strings.ToLower(params["report-type"]))
	default:
		if ok, reason := bounceByHeader(local, p.Subject, strings.TrimSpace(h.Get("Return-Path"))); ok {
			set(KindBounce, reason)
		}
	}
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		set(KindAutoReply, "Auto-Submitted: "+v)
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated"} {
		if h.Has(k) {
			set(KindAutoReply, k)
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); v {
	case "auto_reply":
		set(KindAutoReply, "Precedence: "+v)
	case "bulk", "list", "junk":
		if h.Has("List-Id") {
			set(KindBulk, "List-Id")
		}
		set(KindBulk, "Precedence: "+v)
	}
	if h.Has("List-Id") {
		set(KindBulk, "List-Id")
	}
	if h.Has("List-Unsubscribe") {
		set(KindBulk, "List-Unsubscribe")
	}
	if rp := strings.TrimSpace(h.Get("Return-Path")); rp == "<>" {
		set(KindAutoReply, "null Return-Path")
	}
	if p.Kind == KindBounce {
		p.Bounce = &Bounce{}
	}
}

// normalizer walks the parts of one mail.
type normalizer struct {
	p     *Parsed
	lim   Limits
	parts int
	// types maps a part's path to its media type, for finding the
	// multipart/alternative a part belongs to.
	types map[string]string
	// altText and altHTML hold the alternatives that gave their text or HTML.
	altText, altHTML map[string]bool
	text, html       strings.Builder
	// bounceText is the human-readable part of a bounce.
	bounceText strings.Builder
	// dsn is set once a delivery-status part named a recipient.
	dsn      bool
	inReport bool
}

// part handles one part of the walk.
func (n *normalizer) part(path []int, e *message.Entity, err error) error {
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		n.p.Partial = true
	}
	if e == nil {
		return nil
	}
	n.parts++
	if n.parts > maxParts || len(path) > maxDepth {
		n.p.Partial = true
		return errStop
	}
	mt, params, perr := e.Header.ContentType()
	if perr != nil || mt == "" {
		mt = "text/plain"
	}
	mt = strings.ToLower(mt)
	key := pathKey(path)
	n.types[key] = mt
	if strings.HasPrefix(mt, "multipart/") {
		if mt == "multipart/report" {
			n.inReport = true
		}
		return nil
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	disp = strings.ToLower(disp)
	name := decodeWords(cmp.Or(dparams["filename"], params["name"]))

	switch {
	case n.p.Bounce != nil && (mt == "message/delivery-status" || mt == "message/global-delivery-status"):
		n.deliveryStatus(e.Body)
		return nil
	case n.p.Bounce != nil && (mt == "message/rfc822" || mt == "text/rfc822-headers" || mt == "message/global" || mt == "message/global-headers"):
		n.returned(e.Body)
		return nil
	case (mt == "text/plain" || mt == "text/html") && disp != "attachment" && name == "":
		b, _ := io.ReadAll(io.LimitReader(e.Body, maxTextPartBytes))
		body := string(b)
		if !utf8.ValidString(body) {
			body = strings.ToValidUTF8(body, "\uFFFD")
		}
		alt := n.alternative(path)
		if mt == "text/plain" {
			if alt != "" {
				if n.altText[alt] {
					return nil
				}
				n.altText[alt] = true
			}
			if n.p.Bounce != nil {
				n.bounceText.WriteString(body)
			}
			appendBody(&n.text, body)
			return nil
		}
		if alt != "" {
			if n.altHTML[alt] {
				return nil
			}
			n.altHTML[alt] = true
			// The alternative's plain text, when it has one, is the text.
		}
		appendBody(&n.html, body)
		return nil
	}
	n.attachment(path, e, mt, disp, name)
	return nil
}

// alternative returns the key of the innermost multipart/alternative holding
// the part at path, or "".
func (n *normalizer) alternative(path []int) string {
	for i := len(path) - 1; i >= 0; i-- {
		k := pathKey(path[:i])
		if n.types[k] == "multipart/alternative" {
			return k
		}
	}
	return ""
}

// attachment records a part that is a file or an inline image.
func (n *normalizer) attachment(path []int, e *message.Entity, mt, disp, name string) {
	a := Attachment{ContentType: mt, Inline: disp == "inline" || (disp == "" && strings.HasPrefix(mt, "image/")), Part: imapPart(path)}
	if ids := msgIDs(e.Header.Get("Content-Id")); len(ids) > 0 {
		a.ContentID = ids[0]
	}
	a.Name = clean(name)
	if a.Name == "" {
		a.Name = "part-" + a.Part + extension(mt)
	}
	if len(a.Name) > 255 {
		a.Name = core.Truncate(a.Name, 255)
	}
	var buf bytes.Buffer
	keep := n.lim.AttachmentBytes
	if keep < 0 {
		keep = 0
	}
	read, err := io.Copy(&buf, io.LimitReader(e.Body, keep+1))
	if err != nil {
		n.p.Partial = true
	}
	rest, err := io.Copy(io.Discard, e.Body)
	if err != nil {
		n.p.Partial = true
	}
	a.Size = read + rest
	if a.Size <= keep && n.lim.AttachmentBytes > 0 {
		a.Data = buf.Bytes()
		if a.Data == nil {
			a.Data = []byte{}
		}
	}
	n.p.Attachments = append(n.p.Attachments, a)
}

// pathKey is a map key for a walk path.
func pathKey(path []int) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// imapPart turns a go-message walk path (0-based, nil for the root) into an
// IMAP part number ("1" for a single-part body, "1.2" for nested parts).
func imapPart(path []int) string {
	if len(path) == 0 {
		return "1"
	}
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(p + 1))
	}
	return b.String()
}

// appendBody adds one body part's text to b, separating parts by a blank line.
func appendBody(b *strings.Builder, s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	if b.Len() > 0 {
		b.WriteString("\n\n")
	}
	b.WriteString(s)
}

// wordDecoder decodes RFC 2047 encoded words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	if message.CharsetReader == nil {
		return nil, fmt.Errorf("charset %q", cs)
	}
	return message.CharsetReader(cs, r)
}}

// decodeWords decodes encoded words in s (non-standard in file names, and
// common), returning s unchanged when it cannot.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// extension returns a file extension for media type mt, or "".
func extension(mt string) string {
	switch mt {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "application/pdf":
		return ".pdf"
	case "text/plain":
		return ".txt"
	case "text/html":
		return ".html"
	case "text/calendar":
		return ".ics"
	case "message/rfc822":
		return ".eml"
	}
	if exts, err := mime.ExtensionsByType(mt); err == nil && len(exts) > 0 {
		return exts[0]
	}
	return ""
}

// clean makes s safe to carry: valid UTF-8, no NUL or other control characters
// but tab and newline, CRLF as LF.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f || r == '\uFEFF':
			return -1
		}
		return r
	}, s)
}

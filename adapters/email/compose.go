package email

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/emersion/go-message/mail"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// compose writes the reply m as a MIME mail: multipart/alternative of the text
// and HTML bodies, inside multipart/mixed with the attachments when there are
// any. It fails with adapters.Permanent when an attachment can never be had.
func (a *Adapter) compose(ctx context.Context, m *core.Message, to, messageID string, th threadInfo) ([]byte, error) {
	files, err := a.files(ctx, m)
	if err != nil {
		return nil, err
	}
	var h mail.Header
	h.SetDate(now())
	h.SetAddressList("From", []*mail.Address{{Name: a.cfg.Name, Address: a.cfg.Address}})
	h.SetAddressList("To", []*mail.Address{{Name: m.Meta[event.MetaName], Address: to}})
	if a.cfg.ReplyToken {
		// The token names this reply, which the pipeline recorded with its
		// conversation before handing it over: an answer to the address
		// carries it back even from a client that drops In-Reply-To.
		h.SetAddressList("Reply-To", []*mail.Address{{Name: a.cfg.Name, Address: a.plusAddress(m.ID)}})
	}
	subject := collapse(clean(th.Subject))
	if th.MessageID != "" {
		subject = replySubject(subject)
	}
	if strings.TrimSpace(subject) == "" {
		subject = "Message from " + cmp.Or(a.cfg.Name, a.cfg.Address)
	}
	h.SetSubject(subject)
	h.SetMessageID(messageID)
	if th.MessageID != "" {
		h.SetMsgIDList("In-Reply-To", []string{th.MessageID})
	}
	if len(th.References) > 0 {
		h.SetMsgIDList("References", th.References)
	}
	// Agent replies are written by people: no Auto-Submitted (RFC 3834), so
	// the customer's auto-responder may answer; X-Omnigate-Id recognizes a
	// bounce or a loop of it.
	h.Set(HeaderOmnigateID, m.ID)
	h.Set("MIME-Version", "1.0")

	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = HTMLToText(m.HTML)
	}
	body := m.HTML
	if body == "" {
		body = textToHTML(text)
	}

	var buf bytes.Buffer
	if len(files) == 0 {
		w, err := mail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
		}
		if err := writeAlternatives(w, text, body); err != nil {
			return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
		}
		return buf.Bytes(), nil
	}
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
	}
	iw, err := w.CreateInline()
	if err != nil {
		return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
	}
	if err := writeAlternatives(iw, text, body); err != nil {
		return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
	}
	for _, f := range files {
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", mime.FormatMediaType(f.contentType, nil))
		ah.SetFilename(f.name)
		aw, err := w.CreateAttachment(ah)
		if err != nil {
			return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
		}
		if _, err := aw.Write(f.data); err != nil {
			return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
		}
		if err := aw.Close(); err != nil {
			return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("email: compose %s: %w", m.ID, err)
	}
	return buf.Bytes(), nil
}

// writeAlternatives writes the text and HTML parts and closes w.
func writeAlternatives(w *mail.InlineWriter, text, body string) error {
	for _, p := range []struct{ mt, s string }{{"text/plain", text}, {"text/html", body}} {
		var ph mail.InlineHeader
		ph.SetContentType(p.mt, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(pw, strings.ReplaceAll(p.s, "\r\n", "\n")); err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return err
		}
	}
	return w.Close()
}

// textToHTML renders plain text as safe HTML: escaped, paragraphs at blank
// lines, line breaks kept.
func textToHTML(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><body><div dir=\"auto\">\n")
	for _, para := range strings.Split(strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		lines := strings.Split(para, "\n")
		for i, l := range lines {
			lines[i] = html.EscapeString(l)
		}
		b.WriteString("<p>" + strings.Join(lines, "<br>\n") + "</p>\n")
	}
	b.WriteString("</div></body></html>\n")
	return b.String()
}

// file is one attachment of a reply, with its bytes.
type file struct {
	name, contentType string
	data              []byte
}

// files gets the bytes of every attachment of m: decoded from data: URLs,
// downloaded from http(s) URLs.
func (a *Adapter) files(ctx context.Context, m *core.Message) ([]file, error) {
	out := make([]file, 0, len(m.Attachments))
	for i, at := range m.Attachments {
		name := at.Name
		if name == "" {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
		f := file{name: name, contentType: at.ContentType}
		var err error
		switch {
		case strings.HasPrefix(at.URL, "data:"):
			var mt string
			f.data, mt, err = decodeDataURL(at.URL)
			if err != nil {
				return nil, adapters.Permanent(fmt.Errorf("email: send %s: attachment %d: %w", m.ID, i+1, err))
			}
			if f.contentType == "" {
				f.contentType = mt
			}
		case strings.HasPrefix(at.URL, "https://") || strings.HasPrefix(at.URL, "http://"):
			var mt string
			f.data, mt, err = a.fetch(ctx, at.URL)
			if err != nil {
				return nil, fmt.Errorf("email: send %s: attachment %d: %w", m.ID, i+1, err)
			}
			if f.contentType == "" {
				f.contentType = mt
			}
		default:
			// A key names bytes in an object store the email adapter cannot
			// read; a mid: URL, bytes in a mailbox it does not fetch.
			return nil, adapters.Permanent(fmt.Errorf("email: send %s: attachment %d has no data: or http(s) URL", m.ID, i+1))
		}
		if int64(len(f.data)) > a.cfg.Limits.FetchAttachmentBytes {
			return nil, adapters.Permanent(fmt.Errorf("email: send %s: attachment %d: %d bytes, at most %d (limits.fetch_attachment_bytes)",
				m.ID, i+1, len(f.data), a.cfg.Limits.FetchAttachmentBytes))
		}
		if mt, _, err := mime.ParseMediaType(f.contentType); err == nil && strings.Contains(mt, "/") {
			f.contentType = mt
		} else {
			f.contentType = "application/octet-stream"
		}
		out = append(out, f)
	}
	return out, nil
}

// decodeDataURL decodes a data: URL (RFC 2397), base64 or percent-encoded.
func decodeDataURL(u string) ([]byte, string, error) {
	meta, payload, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
	if !ok {
		return nil, "", errors.New("malformed data: URL")
	}
	b64 := strings.HasSuffix(meta, ";base64")
	mt := strings.TrimSuffix(meta, ";base64")
	if mt == "" {
		mt = "text/plain"
	}
	if b64 {
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(payload); err != nil {
				return nil, "", fmt.Errorf("data: URL: %w", err)
			}
		}
		return b, mt, nil
	}
	s, err := url.PathUnescape(payload)
	if err != nil {
		return nil, "", fmt.Errorf("data: URL: %w", err)
	}
	return []byte(s), mt, nil
}

// fetch downloads an attachment, at most limits.fetch_attachment_bytes of it.
// A 4xx answer (but 408 and 429) is Permanent; anything else is retried.
func (a *Adapter) fetch(ctx context.Context, raw string) ([]byte, string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, "", adapters.Permanent(errors.New("malformed URL"))
	}
	listed := a.hostListed(u.Host)
	if len(a.cfg.AttachmentHosts) > 0 && !listed {
		return nil, "", adapters.Permanent(fmt.Errorf("host %s is not in attachment_hosts", u.Hostname()))
	}
	if u.Scheme != "https" && !listed {
		return nil, "", adapters.Permanent(errors.New("only https URLs are fetched from hosts not in attachment_hosts"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, "", adapters.Permanent(err)
	}
	if listed {
		req = req.WithContext(context.WithValue(req.Context(), listedKey{}, true))
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if errors.Is(err, errPrivateAddress) {
			return nil, "", adapters.Permanent(err)
		}
		return nil, "", err
	}
	defer resp.Body.Close()
	switch c := resp.StatusCode; {
	case c == http.StatusOK:
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return nil, "", fmt.Errorf("download answered %s", resp.Status)
	default:
		return nil, "", adapters.Permanent(fmt.Errorf("download answered %s", resp.Status))
	}
	limit := a.cfg.Limits.FetchAttachmentBytes
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, "", adapters.Permanent(fmt.Errorf("larger than %d bytes (limits.fetch_attachment_bytes)", limit))
	}
	return b, resp.Header.Get("Content-Type"), nil
}

// hostListed reports whether host (with its port, if any) is in
// attachment_hosts.
func (a *Adapter) hostListed(host string) bool {
	host = strings.ToLower(host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	for _, p := range a.cfg.AttachmentHosts {
		switch {
		case p == host || p == name:
			return true
		case strings.HasPrefix(p, "*.") && strings.HasSuffix(name, p[1:]):
			return true
		}
	}
	return false
}

// listedKey marks a request to a host of attachment_hosts, which may be on a
// private address.
type listedKey struct{}

// errPrivateAddress refuses a download from a loopback, private or link-local
// address, which could reach internal services.
var errPrivateAddress = errors.New("refusing to download from a private address; list the host in attachment_hosts")

// newFetchClient is the HTTP client for attachment downloads: a timeout, and
// a dialer that refuses private addresses for hosts not listed.
func newFetchClient(cfg Config) *http.Client {
	dialer := &net.Dialer{
		Timeout: cfg.Timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
				return errPrivateAddress
			}
			return nil
		},
	}
	plain := &net.Dialer{Timeout: cfg.Timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if listed, _ := ctx.Value(listedKey{}).(bool); listed {
				return plain.DialContext(ctx, network, addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   2,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// A redirect to another host would skip the list: stay on the host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || req.URL.Host != via[0].URL.Host {
				return errors.New("redirect to another host refused")
			}
			return nil
		},
	}
}

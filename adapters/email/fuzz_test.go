package email_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/omnigate/omnigate/adapters/email"
)

// FuzzNormalize feeds Normalize arbitrary mail, starting from the corpus of
// testdata: it must never panic, and what it returns must be safe to put in
// an envelope (valid UTF-8, attachments within the limit).
func FuzzNormalize(f *testing.F) {
	for _, file := range corpus(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Subject: no body"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x--"))
	f.Add([]byte("Content-Type: text/html; charset=x-unknown\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n<p>hi"))
	const keep = 1 << 10
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := email.Normalize(bytes.NewReader(raw), email.Limits{AttachmentBytes: keep})
		if err != nil {
			return
		}
		for name, s := range map[string]string{"text": p.Text, "full text": p.FullText, "subject": p.Subject, "from": p.From, "name": p.FromName} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not valid UTF-8: %q", name, s)
			}
		}
		if strings.ContainsRune(p.Text, 0) || strings.ContainsRune(p.Subject, '\r') {
			t.Errorf("control characters kept: %q %q", p.Text, p.Subject)
		}
		for _, a := range p.Attachments {
			if len(a.Data) > keep || (a.Data != nil && int64(len(a.Data)) != a.Size) || a.Name == "" || len(a.Name) > 255 {
				t.Errorf("attachment %q: %d bytes kept of %d", a.Name, len(a.Data), a.Size)
			}
		}
		if len(p.Text) > len(p.FullText) {
			t.Errorf("text (%d bytes) longer than the full text (%d bytes)", len(p.Text), len(p.FullText))
		}
	})
}

// bounceFrames are the two shapes a bounce arrives in: a DSN whose
// delivery-status part is %[1]s and whose text is %[2]s, and a bounce from
// MAILER-DAEMON that is only the text.
const (
	dsnFrame = "From: MAILER-DAEMON@mx.example.com\r\nTo: support+01jh31abcdefghjkmnpqrstvwx@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n%[2]s\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n%[1]s\r\n--b--\r\n"
	textFrame = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@example.com\r\nSubject: Mail delivery failed\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%[2]s"
)

// FuzzBounce feeds the bounce parsers (the DSN's fields, a bounce's text)
// arbitrary content inside real bounce frames, from the seeds of
// testdata/fuzz/FuzzBounce: they must never panic, and what they find must
// be safe to put in an envelope and consistent.
func FuzzBounce(f *testing.F) {
	f.Add([]byte("Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"), []byte("550 5.1.1 no"))
	statusRE := regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
	f.Fuzz(func(t *testing.T, status, text []byte) {
		for i, frame := range []string{dsnFrame, textFrame} {
			raw := fmt.Sprintf(frame, status, text)
			p, err := email.Normalize(strings.NewReader(raw), email.Limits{})
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			b := p.Bounce
			if p.Kind != email.KindBounce || b == nil {
				t.Fatalf("frame %d: kind %s, want a bounce", i, p.Kind)
			}
			for name, s := range map[string]string{"recipient": b.Recipient, "original recipient": b.OriginalRecipient, "action": b.Action,
				"status": b.Status, "diagnostic": b.Diagnostic, "envelope id": b.EnvelopeID, "message id": b.MessageID, "omnigate id": b.OmnigateID} {
				if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\x00") {
					t.Errorf("frame %d: %s %q is not clean UTF-8", i, name, s)
				}
			}
			if len(b.Diagnostic) > 1000 || len(b.Recipient) > 254 || len(b.Status) > 20 || len(b.EnvelopeID) > 100 {
				t.Errorf("frame %d: fields too long: %+v", i, b)
			}
			if b.Recipient != "" && !strings.Contains(b.Recipient, "@") {
				t.Errorf("frame %d: recipient %q is no address", i, b.Recipient)
			}
			if b.Permanent() && (!b.Failed() || !statusRE.MatchString(b.Status)) {
				t.Errorf("frame %d: permanent with action %q status %q", i, b.Action, b.Status)
			}
			if i == 1 && b.Action != "failed" && b.Action != "delayed" {
				t.Errorf("text bounce: action %q, want failed or delayed", b.Action)
			}
			if i == 1 && b.Status != "" && !statusRE.MatchString(b.Status) {
				t.Errorf("text bounce: status %q", b.Status)
			}
		}
	})
}

// FuzzStripQuoted feeds the quote cutter arbitrary text, starting from the
// replies of testdata/quote and the seeds of testdata/fuzz/FuzzStripQuoted:
// it must never panic, and it may only leave lines out, never make text up.
func FuzzStripQuoted(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "quote", "*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no replies in testdata/quote: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := email.StripQuoted(text)
		norm := strings.ReplaceAll(text, "\r\n", "\n")
		if len(got) > len(norm) {
			t.Fatalf("output (%d bytes) longer than the input (%d bytes)", len(got), len(norm))
		}
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Fatalf("valid UTF-8 in, invalid out: %q", got)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(norm, "\n") {
			lines[strings.TrimRightFunc(l, unicode.IsSpace)] = true
			lines[strings.TrimSpace(l)] = true
		}
		for _, l := range strings.Split(got, "\n") {
			if l != "" && !lines[l] && !strings.Contains(norm, l) {
				t.Fatalf("line %q is not in the input", l)
			}
		}
	})
}

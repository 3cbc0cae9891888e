package email_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
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

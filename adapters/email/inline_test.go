package email_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core"
)

// htmlOnlyInline is a mail of an HTML body and one inline image of n bytes
// that the body shows with src="cid:chart%40mail.example" (RFC 2392
// percent-encodes the cid: URL; the Content-ID is chart@mail.example).
func htmlOnlyInline(n int) []byte {
	img := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x89PNG", n/4)))
	return []byte("From: Ann <" + mailtest.CustomerAddress + ">\r\nTo: " + mailtest.Address + "\r\nSubject: Chart\r\n" +
		"Message-ID: <chart-mail@customer.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/related; boundary=r; type=\"text/html\"\r\n\r\n" +
		"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<p>The numbers:</p><p><img alt=\"\" src=\"cid:chart%40mail.example\"></p><p>Odd, no?</p>\r\n" +
		"--r\r\nContent-Type: image/png; name=chart.png\r\nContent-ID: <chart@mail.example>\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		img + "\r\n--r--\r\n")
}

// TestAdapter_InlineImages: inline images keep their Content-ID and inline
// disposition in the envelope; the HTML's cid: references point at the
// image's data: URL when the envelope carries its bytes, and stay cid: (the
// attachment's ContentID resolves them) when it does not; the text marks
// where each image was with its name.
func TestAdapter_InlineImages(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	w.imap.Deliver(t, "INBOX", readCorpus(t, "apple_inline_image"))
	w.imap.Deliver(t, "INBOX", readCorpus(t, "outlook_inline_image"))
	w.imap.Deliver(t, "INBOX", htmlOnlyInline(400))
	run(t, w.adapter(t, cfg{top: []string{"limits:", "  inline_attachment_bytes: 200"}}))
	got := w.inbound(t, 3)

	for _, tc := range []struct {
		name      string
		m         *core.Message
		att       core.Attachment
		text      string
		inHTML    string // what the HTML must contain
		notInHTML string
	}{
		{
			name: "apple mail", m: got[0],
			att:  core.Attachment{Name: "box.png", ContentType: "image/png", Size: 73, ContentID: "4F1E2D3C-5B6A-4798-8A9B-C0D1E2F3A4B5", Inline: true},
			text: "[image: box.png]", inHTML: `src="data:image/png;base64,iVBOR`, notInHTML: "cid:",
		},
		{
			name: "outlook", m: got[1],
			att:  core.Attachment{Name: "image001.png", ContentType: "image/png", Size: 73, ContentID: "image001.png@01DB5F1A.2B3C4D50", Inline: true},
			text: "since this morning:\n\n[image: image001.png]\n\nKind regards,", inHTML: `src="data:image/png;base64,iVBOR`, notInHTML: "cid:",
		},
		{
			name: "too large to carry", m: got[2],
			att:  core.Attachment{Name: "chart.png", ContentType: "image/png", Size: 400, ContentID: "chart@mail.example", Inline: true},
			text: "The numbers:\n\n[image: chart.png]\n\nOdd, no?", inHTML: `src="cid:chart%40mail.example"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.m.Attachments) != 1 {
				t.Fatalf("%d attachments, want 1", len(tc.m.Attachments))
			}
			a := tc.m.Attachments[0]
			url := a.URL
			a.URL = ""
			if a != tc.att {
				t.Errorf("attachment %+v, want %+v", a, tc.att)
			}
			switch {
			case tc.notInHTML != "" && !strings.HasPrefix(url, "data:image/png;base64,"):
				t.Errorf("url %.40q, want the image's data: URL", url)
			case tc.notInHTML == "" && url != "mid:chart-mail@customer.example/chart@mail.example":
				t.Errorf("url %q, want the mid: URL of the part", url)
			}
			if !strings.Contains(tc.m.Text, tc.text) {
				t.Errorf("text %q lacks %q", tc.m.Text, tc.text)
			}
			if !strings.Contains(tc.m.HTML, tc.inHTML) || (tc.notInHTML != "" && strings.Contains(tc.m.HTML, tc.notInHTML)) {
				t.Errorf("html %q: want %q in it, and not %q", tc.m.HTML, tc.inHTML, tc.notInHTML)
			}
		})
	}
}

// TestAdapter_InlineImagesEnvelopeFull: when the HTML with an image's bytes
// in it would not fit the envelope next to the attachments, the HTML keeps
// its cid: reference instead of being given up.
func TestAdapter_InlineImagesEnvelopeFull(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	var b strings.Builder
	b.WriteString("From: Ann <" + mailtest.CustomerAddress + ">\r\nTo: " + mailtest.Address + "\r\nSubject: Scans\r\n" +
		"Message-ID: <scans@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
		"--m\r\nContent-Type: multipart/related; boundary=r\r\n\r\n" +
		"--r\r\nContent-Type: text/html\r\n\r\n<p>Photo:</p><img src=\"cid:photo@customer.example\">\r\n" +
		"--r\r\nContent-Type: image/jpeg\r\nContent-ID: <photo@customer.example>\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	lines := func(n int) {
		data := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", n)))
		for len(data) > 0 {
			k := min(76, len(data))
			b.WriteString(data[:k] + "\r\n")
			data = data[k:]
		}
	}
	lines(195_000)
	b.WriteString("--r--\r\n")
	for i := range 2 {
		b.WriteString("--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=scan" + string(rune('1'+i)) + ".pdf\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n")
		lines(230_000)
	}
	b.WriteString("--m--\r\n")
	w.imap.Deliver(t, "INBOX", []byte(b.String()))
	run(t, w.adapter(t, cfg{top: []string{"limits:", "  inline_total_bytes: 655360"}}))
	m := w.inbound(t, 1)[0]
	if len(m.Attachments) != 3 || !strings.HasPrefix(m.Attachments[0].URL, "data:image/jpeg;base64,") || m.Attachments[0].ContentID != "photo@customer.example" {
		t.Fatalf("attachments: %d, first %.60q", len(m.Attachments), m.Attachments[0].URL)
	}
	if !strings.Contains(m.HTML, `src="cid:photo@customer.example"`) {
		t.Errorf("html of %d bytes (%.80q...), want its cid: reference kept", len(m.HTML), m.HTML)
	}
}

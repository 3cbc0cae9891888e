package email_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// golden is what a corpus mail normalizes to, as stored in testdata/<name>.golden.json.
type golden struct {
	Kind        email.Kind        `json:"kind"`
	Reason      string            `json:"reason,omitempty"`
	MessageID   string            `json:"message_id,omitempty"`
	From        string            `json:"from"`
	FromName    string            `json:"from_name,omitempty"`
	To          []string          `json:"to,omitempty"`
	DeliveredTo []string          `json:"delivered_to,omitempty"`
	Subject     string            `json:"subject"`
	Date        string            `json:"date,omitempty"`
	InReplyTo   []string          `json:"in_reply_to,omitempty"`
	References  []string          `json:"references,omitempty"`
	Text        string            `json:"text"`
	FullText    string            `json:"full_text"`
	HasHTML     bool              `json:"has_html"`
	ListID      string            `json:"list_id,omitempty"`
	Attachments []goldenAttach    `json:"attachments,omitempty"`
	Bounce      *email.Bounce     `json:"bounce,omitempty"`
	Partial     bool              `json:"partial,omitempty"`
	Extra       map[string]string `json:"-"`
}

type goldenAttach struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	Part        string `json:"part"`
}

func toGolden(p *email.Parsed) golden {
	g := golden{
		Kind: p.Kind, Reason: p.Reason, MessageID: p.MessageID, From: p.From, FromName: p.FromName,
		To: p.To, DeliveredTo: p.DeliveredTo, Subject: p.Subject, InReplyTo: p.InReplyTo, References: p.References,
		Text: p.Text, FullText: p.FullText, HasHTML: p.HTML != "", ListID: p.ListID, Bounce: p.Bounce, Partial: p.Partial,
	}
	if !p.Date.IsZero() {
		g.Date = p.Date.Format("2006-01-02T15:04:05Z07:00")
	}
	for _, a := range p.Attachments {
		ga := goldenAttach{Name: a.Name, ContentType: a.ContentType, ContentID: a.ContentID, Inline: a.Inline, Size: a.Size, Part: a.Part}
		if a.Data != nil {
			sum := sha256.Sum256(a.Data)
			ga.SHA256 = hex.EncodeToString(sum[:])
		}
		g.Attachments = append(g.Attachments, ga)
	}
	return g
}

// corpus lists the mails of testdata.
func corpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata: %v", err)
	}
	return files
}

// TestNormalize_Corpus checks every mail of testdata against its golden
// expectation; go test -run Corpus -update rewrites them (review the diff).
func TestNormalize_Corpus(t *testing.T) {
	for _, file := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := email.Normalize(bytes.NewReader(raw), email.Limits{})
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			got, err := json.MarshalIndent(toGolden(p), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := strings.TrimSuffix(file, ".eml") + ".golden.json"
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestNormalize_Corpus -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Normalize(%s) differs from %s:\ngot:\n%s\nwant:\n%s", file, path, got, want)
			}
		})
	}
}

// TestNormalize_CorpusFacts states, independently of the golden files, what
// matters most about each corpus mail.
func TestNormalize_CorpusFacts(t *testing.T) {
	parse := func(t *testing.T, name string) *email.Parsed {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := email.Normalize(bytes.NewReader(raw), email.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("gmail_reply", func(t *testing.T) {
		p := parse(t, "gmail_reply")
		want := "Hi,\n\nThanks for the quick answer. The refund still hasn’t arrived, though — could you check order #4821 again?\n\nBest,\nAnn"
		if p.Kind != email.KindCustomer || p.Text != want {
			t.Errorf("kind %s text %q, want customer %q", p.Kind, p.Text, want)
		}
		if p.From != "ann.lee@gmail.com" || p.FromName != "Ann Lee" {
			t.Errorf("from %q %q", p.From, p.FromName)
		}
		if len(p.References) != 2 || p.References[0] != "CAJ7x9Qh1ZrFs2b3=kP0aYv@mail.gmail.com" {
			t.Errorf("references %q", p.References)
		}
		if !strings.Contains(p.FullText, "> We have issued the refund") {
			t.Errorf("full text lost the quote: %q", p.FullText)
		}
	})
	t.Run("outlook_html", func(t *testing.T) {
		p := parse(t, "outlook_html")
		for _, s := range []string{"We can’t log in to the portal since this morning – the error page says “Account locked”. Our café opens at 7",
			"See the status page (https://status.example.com/incidents/77) too.", "Jürgen Müller"} {
			if !strings.Contains(p.Text, s) {
				t.Errorf("text %q lacks %q", p.Text, s)
			}
		}
		for _, s := range []string{"Sent:", "password was reset", "alert", "Cambria"} {
			if strings.Contains(p.Text, s) {
				t.Errorf("text %q still has %q", p.Text, s)
			}
		}
		if p.FromName != "Jürgen Müller" || p.Subject != "AW: Portal access" {
			t.Errorf("from name %q subject %q", p.FromName, p.Subject)
		}
	})
	t.Run("apple_inline_image", func(t *testing.T) {
		p := parse(t, "apple_inline_image")
		if strings.Contains(p.Text, "Could you send") || !strings.Contains(p.Text, "mug inside is broken") {
			t.Errorf("text %q", p.Text)
		}
		if len(p.Attachments) != 1 {
			t.Fatalf("%d attachments, want the inline image", len(p.Attachments))
		}
		a := p.Attachments[0]
		if a.Name != "box.png" || a.ContentType != "image/png" || !a.Inline || a.ContentID != "4F1E2D3C-5B6A-4798-8A9B-C0D1E2F3A4B5" ||
			!bytes.HasPrefix(a.Data, []byte("\x89PNG")) {
			t.Errorf("attachment %+v", a)
		}
	})
	t.Run("gbk_chinese", func(t *testing.T) {
		p := parse(t, "gbk_chinese")
		if p.Subject != "回复：订单还没有发货" || p.FromName != "王小明" {
			t.Errorf("subject %q from %q", p.Subject, p.FromName)
		}
		if !strings.Contains(p.Text, "订单号 20250103-7781") || strings.Contains(p.Text, "写道") || strings.Contains(p.Text, "预计三个工作日") {
			t.Errorf("text %q", p.Text)
		}
	})
	t.Run("dsn_bounce", func(t *testing.T) {
		p := parse(t, "dsn_bounce")
		b := p.Bounce
		if p.Kind != email.KindBounce || b == nil {
			t.Fatalf("kind %s bounce %v", p.Kind, b)
		}
		if b.Recipient != "no.such.user@customer.example" || b.Status != "5.1.1" || !b.Failed() ||
			b.MessageID != "01jh31abcdefghjkmnpqrstvwx@example.com" || b.OmnigateID != "01JH31ABCDEFGHJKMNPQRSTVWX" ||
			!strings.Contains(b.Diagnostic, "550 5.1.1") {
			t.Errorf("bounce %+v", b)
		}
	})
	t.Run("out_of_office", func(t *testing.T) {
		if p := parse(t, "out_of_office"); p.Kind != email.KindAutoReply {
			t.Errorf("kind %s (%s), want auto_reply", p.Kind, p.Reason)
		}
	})
	t.Run("mailing_list", func(t *testing.T) {
		if p := parse(t, "mailing_list"); p.Kind != email.KindBulk || p.ListID != "1122334455aabbccddeeff00a.112233.list-id.mcsv.net" {
			t.Errorf("kind %s list %q", p.Kind, p.ListID)
		}
	})
	t.Run("pdf_attachment", func(t *testing.T) {
		p := parse(t, "pdf_attachment")
		if p.MessageID != "" || !strings.Contains(p.Text, "Merci beaucoup à vous.") || p.FromName != "O'Brien, Siobhan" {
			t.Errorf("message id %q from %q text %q", p.MessageID, p.FromName, p.Text)
		}
		if len(p.Attachments) != 1 || p.Attachments[0].Name != "Rechnung Nº 42.pdf" || p.Attachments[0].Inline {
			t.Errorf("attachments %+v", p.Attachments)
		}
	})
}

package email_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

const wait = 10 * time.Second

// recorder is a slog handler that keeps every record, so a test can see what
// the adapter did that the bus would hide (a publish deduplicated by
// JetStream), and passes them on to the test's log.
type recorder struct {
	next slog.Handler
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newRecorder(next slog.Handler) *recorder {
	return &recorder{next: next, mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.recs = append(*r.recs, rec.Clone())
	r.mu.Unlock()
	if r.next.Enabled(ctx, rec.Level) {
		return r.next.Handle(ctx, rec)
	}
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.next = r.next.WithAttrs(as)
	return &withAttrs{recorder: &c, attrs: as}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// withAttrs keeps the attributes a logger was scoped with on its records.
type withAttrs struct {
	*recorder
	attrs []slog.Attr
}

func (w *withAttrs) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(w.attrs...)
	return w.recorder.Handle(ctx, rec)
}
func (w *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	c := *w.recorder
	c.next = w.recorder.next.WithAttrs(as)
	return &withAttrs{recorder: &c, attrs: slices.Concat(w.attrs, as)}
}

// count returns how many records have message msg and, when key is set,
// attribute key with value val.
func (r *recorder) count(msg, key, val string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range *r.recs {
		if rec.Message != msg {
			continue
		}
		if key == "" {
			n++
			continue
		}
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == val {
				n++
				return false
			}
			return true
		})
	}
	return n
}

// world is one test's bus, store, mailbox and mail server.
type world struct {
	env  *adaptertest.Env
	imap *mailtest.IMAPServer
	smtp *mailtest.SMTPServer
	log  *recorder
}

func newWorld(t *testing.T, caps imap.CapSet) *world {
	env := adaptertest.NewEnv(t, email.Name)
	w := &world{env: env, imap: mailtest.NewIMAP(t, caps), smtp: mailtest.NewSMTP(t), log: newRecorder(env.Logger.Handler())}
	env.Deps.Logger = slog.New(w.log).With("adapter", email.Name)
	return w
}

// adapter builds an adapter on the world's servers with extra config.
func (w *world) adapter(t *testing.T, c cfg) adapters.Adapter {
	t.Helper()
	c.imapPort, c.smtpPort = w.imap.Port, w.smtp.Port
	return build(t, w.env.Deps, c.yaml())
}

// run runs a's Run until the returned stop is called (or the test ends), and
// checks that it returns nil then.
func run(t *testing.T, a adapters.Adapter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(wait):
				t.Errorf("Run still running %s after cancel", wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// inbound waits until OMNI_IN holds n messages and returns them.
func (w *world) inbound(t *testing.T, n int) []*core.Message {
	t.Helper()
	bustest.Eventually(t, wait, func() error {
		if got := w.env.Count(t, bus.StreamIn); got < uint64(n) {
			return fmt.Errorf("%d message(s) on %s, want %d", got, bus.StreamIn, n)
		}
		return nil
	})
	var out []*core.Message
	for _, s := range w.env.Stored(t, bus.StreamIn) {
		if s.Message == nil {
			t.Fatalf("undecodable envelope: %v", s.Err)
		}
		out = append(out, s.Message)
	}
	if len(out) != n {
		t.Fatalf("%d messages on %s, want %d", len(out), bus.StreamIn, n)
	}
	return out
}

// processed waits until every message of INBOX is flagged \Seen, and the
// mailbox holds n messages.
func (w *world) processed(t *testing.T, mailbox string, n int) {
	t.Helper()
	bustest.Eventually(t, wait, func() error {
		msgs := w.imap.List(t, mailbox)
		if len(msgs) != n {
			return fmt.Errorf("%s holds %d messages, want %d", mailbox, len(msgs), n)
		}
		for _, m := range msgs {
			if !slices.Contains(m.Flags, imap.FlagSeen) {
				return fmt.Errorf("uid %d of %s not flagged \\Seen", m.UID, mailbox)
			}
		}
		return nil
	})
}

func readCorpus(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mailID(n int) string { return fmt.Sprintf("mail-%d@customer.example", n) }

// TestAdapter_ExactlyOnceAcrossRestart: mail is published once, in order,
// across a restart of the adapter (a new instance, as after a crash or a
// deploy): nothing is skipped and nothing is even attempted twice.
func TestAdapter_ExactlyOnceAcrossRestart(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	for n := 1; n <= 3; n++ {
		w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(n), "Order", fmt.Sprintf("message %d", n)))
	}
	stop := run(t, w.adapter(t, cfg{}))
	w.inbound(t, 3)
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(4), "Order", "message 4")) // while idling
	w.inbound(t, 4)
	stop()

	// Mail that arrives while omnigate is down.
	for n := 5; n <= 6; n++ {
		w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(n), "Order", fmt.Sprintf("message %d", n)))
	}
	stop = run(t, w.adapter(t, cfg{}))
	got := w.inbound(t, 6)
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(7), "Order", "message 7"))
	got = w.inbound(t, 7)
	stop()
	for i, m := range got {
		if want := mailID(i + 1); m.External.Message != want || m.Text != fmt.Sprintf("message %d", i+1) {
			t.Errorf("message %d on the bus is %q %q, want %s", i+1, m.External.Message, m.Text, want)
		}
	}
	if n := w.log.count("inbound", "duplicate", "true"); n != 0 {
		t.Errorf("the adapter published %d mail(s) a second time (JetStream dropped them): it must not even try", n)
	}
	if n := w.log.count("inbound", "", ""); n != 7 {
		t.Errorf("%d publishes for 7 mails", n)
	}
	w.processed(t, "INBOX", 7)
}

// TestAdapter_UIDValidityChange: when the mailbox is recreated (UIDVALIDITY
// changes, old UIDs mean nothing), the adapter scans it again; what it had
// published already is deduplicated by Message-ID, what is new is published.
func TestAdapter_UIDValidityChange(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	c := cfg{imap: []string{"initial_scan: unseen"}}
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Order", "message 1"))
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(2), "Order", "message 2"))
	stop := run(t, w.adapter(t, c))
	w.inbound(t, 2)
	w.processed(t, "INBOX", 2)
	stop()

	// A server migration: the mailbox is rebuilt, and its mail comes back
	// with new UIDs and without flags, among new mail.
	w.imap.Recreate(t, "INBOX")
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Order", "message 1"))
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(3), "Order", "message 3"))
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(2), "Order", "message 2"))
	stop = run(t, w.adapter(t, c))
	w.processed(t, "INBOX", 3)
	got := w.inbound(t, 3)
	stop()
	if got[2].External.Message != mailID(3) {
		t.Errorf("third message is %s, want %s", got[2].External.Message, mailID(3))
	}
	if n := w.log.count("imap UIDVALIDITY changed: scanning the mailbox again", "", ""); n != 1 {
		t.Errorf("%d UIDVALIDITY warnings, want 1", n)
	}
	if n := w.log.count("inbound", "duplicate", "true"); n != 2 {
		t.Errorf("%d publishes deduplicated by Message-ID, want the 2 old mails", n)
	}
}

// TestAdapter_InitialScan: what is processed of a mailbox seen for the first
// time.
func TestAdapter_InitialScan(t *testing.T) {
	for _, tc := range []struct {
		scan string
		want []string // Message-IDs published
	}{
		{"unseen", []string{mailID(2), mailID(4)}},
		{"all", []string{mailID(1), mailID(2), mailID(3), mailID(4)}},
		{"none", []string{mailID(4)}},
	} {
		t.Run(tc.scan, func(t *testing.T) {
			w := newWorld(t, mailtest.WithIdle)
			w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Old", "read already"), imap.FlagSeen)
			w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(2), "Old", "not read yet"))
			w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(3), "Old", "read already"), imap.FlagSeen)
			a := w.adapter(t, cfg{imap: []string{"initial_scan: " + tc.scan}})
			run(t, a)
			bustest.Eventually(t, wait, func() error { return a.(adapters.Readier).Ready(t.Context()) })
			w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(4), "New", "new mail"))
			got := w.inbound(t, len(tc.want))
			var ids []string
			for _, m := range got {
				ids = append(ids, m.External.Message)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("published %q, want %q", ids, tc.want)
			}
		})
	}
}

// TestAdapter_InboundEnvelope: a Gmail reply becomes an envelope with its
// thread, plus-address token, sender and cleaned text, and is filed.
func TestAdapter_InboundEnvelope(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	w.imap.Deliver(t, "INBOX", readCorpus(t, "gmail_reply"))
	run(t, w.adapter(t, cfg{imap: []string{"processed_mailbox: Processed"}}))
	m := w.inbound(t, 1)[0]
	w.processed(t, "Processed", 1)
	w.processed(t, "INBOX", 0)

	if m.From != "email:ann.lee@gmail.com" || m.To != "email:support@example.com" {
		t.Errorf("from %s to %s", m.From, m.To)
	}
	if m.External.Message != "CAJ7x9Qh3mWq_Lt8D+uRfT0bY5c1=fXkE7nQ2vZpA4sWz9oL6cQ@mail.gmail.com" ||
		m.External.Thread != "CAJ7x9Qh1ZrFs2b3=kP0aYv@mail.gmail.com" {
		t.Errorf("external %+v", m.External)
	}
	wantMeta := map[string]string{
		// The envelope ids of the token and of the reply it answers first:
		// the pipeline recorded them when it sent those replies.
		event.MetaThreadKeys: "01JH2X7A9B8C7D6E5F4G3H2J1K,01JH2X8K4M5N6P7Q8R9S0T1V2W,01jh2x8k4m5n6p7q8r9s0t1v2w@example.com,CAJ7x9Qh1ZrFs2b3=kP0aYv@mail.gmail.com",
		email.MetaReplyToken: "01jh2x7a9b8c7d6e5f4g3h2j1k",
		event.MetaSubject:    "Re: Refund for order #4821",
		event.MetaName:       "Ann Lee",
	}
	for k, v := range wantMeta {
		if m.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, m.Meta[k], v)
		}
	}
	if !strings.Contains(m.Meta[email.MetaOriginalText], "> We have issued the refund") || strings.Contains(m.Text, "We have issued") {
		t.Errorf("text %q, original %q", m.Text, m.Meta[email.MetaOriginalText])
	}
	if m.HTML == "" || m.SentAt.IsZero() {
		t.Errorf("html %d bytes, sent_at %s", len(m.HTML), m.SentAt)
	}
}

// TestAdapter_NotCustomerMail: out-of-office, mailing-list mail and bounces
// are filed but not published as messages; a hard bounce of a reply becomes
// a delivery.failed event for that reply and a contact.unreachable for the
// address (TestAdapter_Bounces has the details).
func TestAdapter_NotCustomerMail(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	for _, name := range []string{"out_of_office", "mailing_list", "dsn_bounce", "pdf_attachment"} {
		w.imap.Deliver(t, "INBOX", readCorpus(t, name))
	}
	// The adapter's own reply coming back (a BCC, a forwarding loop).
	w.imap.Deliver(t, "INBOX", []byte("From: Example Support <support@example.com>\r\nTo: ann@customer.example\r\n"+
		"Subject: Re: x\r\nMessage-ID: <01jh40000000000000000000aa@example.com>\r\nX-Omnigate-Id: 01JH40000000000000000000AA\r\n\r\nour reply\r\n"))
	run(t, w.adapter(t, cfg{}))
	w.processed(t, "INBOX", 5)
	got := w.inbound(t, 2)
	if got[0].Type != event.ContactUnreachable || got[0].From != "email:no.such.user@customer.example" ||
		got[1].Kind != core.KindMessage || got[1].Meta[event.MetaName] != "O'Brien, Siobhan" {
		t.Errorf("published %s %s and %s %s, want the bounce's contact.unreachable and the customer's mail",
			got[0].Kind, got[0].Type, got[1].Kind, got[1].External.Message)
	}
	var evs []*core.Message
	bustest.Eventually(t, wait, func() error {
		evs = w.env.Events(t, event.DeliveryFailed, "")
		if len(evs) == 0 {
			return fmt.Errorf("no %s event", event.DeliveryFailed)
		}
		return nil
	})
	ev := evs[0]
	if len(evs) != 1 || ev.ReplyTo != "01JH31ABCDEFGHJKMNPQRSTVWX" || ev.To != "email:no.such.user@customer.example" ||
		ev.Meta[email.MetaDSNStatus] != "5.1.1" || !strings.Contains(ev.Meta[event.MetaError], "User unknown") {
		t.Errorf("%d events, first %+v", len(evs), ev)
	}
}

// TestAdapter_InboundAttachments: small attachments travel as data: URLs,
// larger ones are described, with a mid: URL and meta attachments_omitted.
func TestAdapter_InboundAttachments(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	w.imap.Deliver(t, "INBOX", readCorpus(t, "apple_inline_image"))
	w.imap.Deliver(t, "INBOX", readCorpus(t, "pdf_attachment"))
	run(t, w.adapter(t, cfg{top: []string{"limits:", "  inline_attachment_bytes: 100"}}))
	got := w.inbound(t, 2)
	img, pdf := got[0], got[1]
	if len(img.Attachments) != 1 || img.Attachments[0].Name != "box.png" || !strings.HasPrefix(img.Attachments[0].URL, "data:image/png;base64,iVBOR") {
		t.Errorf("image attachments %+v", img.Attachments)
	}
	if len(pdf.Attachments) != 1 || pdf.Attachments[0].Size != 125 || pdf.Attachments[0].URL != "" ||
		!strings.HasPrefix(pdf.Attachments[0].Key, "email:sha256:") || !strings.Contains(pdf.Meta[email.MetaAttachmentsOmitted], "Rechnung Nº 42.pdf (application/pdf, 125 bytes, part 2)") {
		t.Errorf("pdf attachments %+v meta %q", pdf.Attachments, pdf.Meta)
	}
}

// TestAdapter_PollingWithoutIdle: a server without IDLE (nor MOVE) is polled,
// and processed mail is moved with COPY, STORE and EXPUNGE.
func TestAdapter_PollingWithoutIdle(t *testing.T) {
	w := newWorld(t, mailtest.WithoutIdle)
	run(t, w.adapter(t, cfg{imap: []string{"processed_mailbox: Processed"}}))
	w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Polled", "found by polling"))
	if m := w.inbound(t, 1)[0]; m.Text != "found by polling" {
		t.Errorf("text %q", m.Text)
	}
	w.processed(t, "Processed", 1)
	w.processed(t, "INBOX", 0)
}

// TestAdapter_LoginRefused: credentials no reconnect can fix end Run with an
// error at once, for the runtime to report; Ready says why meanwhile.
func TestAdapter_LoginRefused(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := build(t, w.env.Deps, strings.Replace(cfg{imapPort: w.imap.Port}.yaml(), mailtest.IMAPPassword, "wrong", 1))
	done := make(chan error, 1)
	go func() { done <- a.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "login") {
			t.Errorf("Run = %v, want a login error", err)
		}
	case <-time.After(wait):
		t.Fatal("Run keeps retrying refused credentials")
	}
	if err := a.(adapters.Readier).Ready(t.Context()); err == nil {
		t.Error("Ready = nil after a refused login")
	}
}

// TestAdapter_ReconnectsAfterServerLoss: when the server goes away, Run
// returns an error after a few quick retries, and a new Run resumes where
// the last one stopped.
func TestAdapter_ReconnectsAfterServerLoss(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	c := cfg{imapPort: 1} // nothing listens on port 1
	a := build(t, w.env.Deps, c.yaml())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := a.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v after %s, want a dial error before its context ends", err, time.Since(start))
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Run took %s to give up: keep the own reconnect loop short", d)
	}
}

// TestAdapter_IdlePush: with IDLE, new mail is processed as soon as the
// server announces it, long before the next poll.
func TestAdapter_IdlePush(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{imap: []string{"poll_interval: 1h"}})
	run(t, a)
	bustest.Eventually(t, wait, func() error { return a.(adapters.Readier).Ready(t.Context()) })
	for n := 1; n <= 3; n++ {
		w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(n), "Pushed", fmt.Sprintf("pushed %d", n)))
		w.inbound(t, n)
	}
}

// TestAdapter_EnvelopeFits: a mail whose parts together exceed the
// envelope's 1 MiB is still published, giving up the HTML body and then the
// largest inline attachments.
func TestAdapter_EnvelopeFits(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	var b strings.Builder
	b.WriteString("From: Ann <" + mailtest.CustomerAddress + ">\r\nTo: " + mailtest.Address + "\r\nSubject: Big\r\nMessage-ID: <big@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n" +
		"--a\r\nContent-Type: text/plain\r\n\r\nSee the scans.\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>See the scans.</p>" +
		strings.Repeat("<p>padding padding padding padding</p>\r\n", 6400) + "\r\n--a--\r\n")
	for i := range 3 {
		fmt.Fprintf(&b, "--m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=scan%d.bin\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n", i)
		data := strings.Repeat("QUJD", 200_000/3) // "ABC" repeated: 200 kB
		for len(data) > 0 {
			n := min(76, len(data))
			b.WriteString(data[:n] + "\r\n")
			data = data[n:]
		}
	}
	b.WriteString("--m--\r\n")
	w.imap.Deliver(t, "INBOX", []byte(b.String()))
	run(t, w.adapter(t, cfg{top: []string{"limits:", "  inline_total_bytes: 655360"}}))
	m := w.inbound(t, 1)[0]
	if m.Text != "See the scans." || m.HTML != "" || m.Meta[email.MetaHTMLOmitted] != "true" || len(m.Attachments) != 3 {
		t.Errorf("text %q, html %d bytes, meta %q, %d attachments", m.Text, len(m.HTML), m.Meta, len(m.Attachments))
	}
	if enc, err := m.Encode(); err != nil || len(enc) > core.MaxEnvelopeBytes {
		t.Errorf("envelope of %d bytes: %v", len(enc), err)
	}
}

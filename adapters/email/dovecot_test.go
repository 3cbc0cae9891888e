//go:build linux

package email_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// dovecotBin is where Debian's dovecot-core installs the server
// (apt-get install dovecot-imapd; .ci/run does it).
const dovecotBin = "/usr/sbin/dovecot"

// dovecotConf is the configuration of a private Dovecot: everything under
// Dir, an IMAP listener (STARTTLS offered, plain text allowed on loopback) on
// 127.0.0.1:Port, one passwd-file user, maildir storage. It runs unprivileged
// ("rootless"): the master, login, auth and mail processes all run as User,
// so no service chroots and no ports below 1024 (imaps is off).
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# Written by TestDovecot_EndToEnd.
protocols = imap
listen = 127.0.0.1
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
default_login_user = {{.User}}
default_internal_user = {{.User}}
default_internal_group = {{.Group}}
first_valid_uid = {{.UID}}
first_valid_gid = {{.GID}}
ssl = yes
ssl_cert = <{{.Dir}}/cert.pem
ssl_key = <{{.Dir}}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# IDLE notices changes through inotify at once; this is only the fallback.
mailbox_idle_check_interval = 1 secs
# Process titles show each session's current command: the test sees IDLE.
verbose_proctitle = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{.Dir}}/passwd
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.GID}} home={{.Dir}}/home/%u
}
mail_location = maildir:~/Maildir
protocol imap {
  mail_max_userip_connections = 50
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
`))

// dovecot is a private Dovecot instance serving the mailbox of
// mailtest.Address, with mailtest's certificate.
type dovecot struct {
	dir  string
	port int
	pid  int // of the master process
}

// startDovecot starts Dovecot in a temporary directory and stops it when the
// test ends; its log is printed if the test fails. Without Dovecot installed
// the test is skipped.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotBin); err != nil {
		t.Skipf("%s not found: install Debian's dovecot-imapd to run the end-to-end test against a real IMAP server", dovecotBin)
	}
	version, err := exec.Command(dovecotBin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", dovecotBin, err)
	}
	t.Logf("Dovecot %s", bytes.TrimSpace(version))

	// Dovecot runs as the current user; as root (CI), as nobody, since it
	// refuses to run its login and mail processes as root.
	u, err := user.Current()
	if err == nil && os.Geteuid() == 0 {
		u, err = user.Lookup("nobody")
	}
	if err != nil {
		t.Skipf("no user to run Dovecot as: %v", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Skipf("no group %s to run Dovecot with: %v", u.Gid, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)

	dir := t.TempDir()
	d := &dovecot{dir: dir, port: freePort(t)}
	var conf bytes.Buffer
	if err := dovecotConf.Execute(&conf, map[string]any{
		"Dir": dir, "Port": d.port, "User": u.Username, "Group": g.Name, "UID": uid, "GID": gid,
	}); err != nil {
		t.Fatal(err)
	}
	cert, key := mailtest.CertificatePEM(t)
	files := map[string][]byte{
		"dovecot.conf": conf.Bytes(),
		"passwd":       []byte(mailtest.Address + ":{PLAIN}" + mailtest.IMAPPassword + "\n"),
		"cert.pem":     cert,
		"key.pem":      key,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// base_dir must be world-readable (Dovecot fixes it with a warning otherwise).
	for sub, perm := range map[string]os.FileMode{"run": 0o755, "state": 0o700, "home": 0o700} {
		if err := os.Mkdir(filepath.Join(dir, sub), perm); err != nil {
			t.Fatal(err)
		}
	}
	logFile := filepath.Join(dir, "dovecot.log")
	stderrFile := filepath.Join(dir, "dovecot.stderr")
	stderr, err := os.Create(stderrFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	cmd := exec.Command(dovecotBin, "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// Should the test binary die, Dovecot goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if os.Geteuid() == 0 {
		// Hand the directory to the user Dovecot runs as, and let it through
		// t.TempDir's private parent.
		if err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(uid), int(gid))
		}); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}

	// Registered before the process starts, so it runs after it is stopped.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range []string{stderrFile, logFile} {
			b, _ := os.ReadFile(f)
			t.Logf("%s:\n%s", f, b)
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	d.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("dovecot still running 10s after SIGTERM: killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	addr := d.addr()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("dovecot exited before listening on %s: %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot not listening on %s after 10s", addr)
		}
	}
	return d
}

func (d *dovecot) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)) }

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// login connects as mailtest.Address, in plain text: the test's own clients
// are the mail server delivering and an admin looking at the mailbox, not the
// adapter (which uses STARTTLS).
func (d *dovecot) login(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.addr(), nil)
	if err != nil {
		t.Fatalf("dial dovecot: %v", err)
	}
	if err := c.Login(mailtest.Address, mailtest.IMAPPassword).Wait(); err != nil {
		_ = c.Close()
		t.Fatalf("login to dovecot: %v", err)
	}
	return c
}

// create creates mailbox.
func (d *dovecot) create(t *testing.T, mailbox string) {
	t.Helper()
	c := d.login(t)
	defer c.Close()
	if err := c.Create(mailbox, nil).Wait(); err != nil {
		t.Fatalf("create %s: %v", mailbox, err)
	}
	_ = c.Logout().Wait()
}

// deliver appends raw to mailbox over its own connection, as another
// sender's mail arriving.
func (d *dovecot) deliver(t *testing.T, mailbox string, raw []byte) {
	t.Helper()
	c := d.login(t)
	defer c.Close()
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	_ = c.Logout().Wait()
}

// waitIdle waits until one of the instance's IMAP sessions is in IDLE, as its
// process title says (verbose_proctitle).
func (d *dovecot) waitIdle(t *testing.T) {
	t.Helper()
	bustest.Eventually(t, wait, func() error {
		procs, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		var titles []string
		for _, p := range procs {
			if _, err := strconv.Atoi(p.Name()); err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
			if err != nil {
				continue // gone meanwhile
			}
			// pid (comm) state ppid ...: comm may hold anything but ')'.
			_, rest, _ := bytes.Cut(stat, []byte(") "))
			if f := strings.Fields(string(rest)); len(f) < 2 || f[1] != strconv.Itoa(d.pid) {
				continue
			}
			title, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			title = bytes.TrimRight(bytes.ReplaceAll(title, []byte{0}, []byte{' '}), " ")
			if bytes.HasPrefix(title, []byte("dovecot/imap [")) {
				if bytes.HasSuffix(title, []byte(" IDLE]")) {
					return nil
				}
				titles = append(titles, string(title))
			}
		}
		return fmt.Errorf("no IMAP session of dovecot (pid %d) in IDLE: %q", d.pid, titles)
	})
}

// tlsLogins returns the lines of the log that record a login over TLS.
func (d *dovecot) tlsLogins(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, "imap-login: Info: Login: user=<"+mailtest.Address+">") && strings.Contains(l, ", TLS,") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// mailboxMsg is one message of a mailbox, as a separate client sees it.
type mailboxMsg struct {
	messageID string
	seen      bool
}

// list returns the messages of mailbox, in UID order, read-only.
func (d *dovecot) list(t *testing.T, mailbox string) []mailboxMsg {
	t.Helper()
	c := d.login(t)
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	var out []mailboxMsg
	if sel.NumMessages > 0 {
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		if err != nil {
			t.Fatalf("fetch %s: %v", mailbox, err)
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
		for _, m := range msgs {
			out = append(out, mailboxMsg{messageID: strings.Trim(m.Envelope.MessageID, "<>"), seen: slices.Contains(m.Flags, imap.FlagSeen)})
		}
	}
	_ = c.Logout().Wait()
	return out
}

// filed waits until mailbox holds exactly the mails with Message-IDs ids, in
// that order, every one flagged \Seen.
func (d *dovecot) filed(t *testing.T, mailbox string, ids ...string) {
	t.Helper()
	bustest.Eventually(t, wait, func() error {
		msgs := d.list(t, mailbox)
		var got []string
		for _, m := range msgs {
			got = append(got, m.messageID)
			if !m.seen {
				return fmt.Errorf("%s of %s not flagged \\Seen", m.messageID, mailbox)
			}
		}
		if !slices.Equal(got, ids) {
			return fmt.Errorf("%s holds %q, want %q", mailbox, got, ids)
		}
		return nil
	})
}

// dovecotMail is one mail of the end-to-end test and what the bus must carry
// for it.
type dovecotMail struct {
	raw                    []byte
	id                     string // Message-ID
	text, subject          string // normalized text and meta subject
	thread, threadKeys     string // External.Thread and meta thread_keys
	replyToken, senderName string
}

// TestDovecot_EndToEnd runs the adapter against a real IMAP server, Dovecot,
// over STARTTLS: mail already in the mailbox, mail pushed while it idles, and
// mail that arrives while it is down is each published once, normalized and
// threaded; processed mail is flagged \Seen, and moved once processed_mailbox
// is set.
func TestDovecot_EndToEnd(t *testing.T) {
	d := startDovecot(t)
	d.create(t, "Processed")

	env := adaptertest.NewEnv(t, email.Name)
	rec := newRecorder(env.Logger.Handler())
	env.Deps.Logger = slog.New(rec).With("adapter", email.Name)
	w := &world{env: env, log: rec}
	config := func(extra ...string) string {
		return cfg{imapPort: d.port, imap: append([]string{
			"security: starttls", "insecure_skip_verify: true",
			// Only IDLE can bring new mail in time.
			"poll_interval: 1h",
		}, extra...)}.yaml()
	}

	const token = "01jh2x7a9b8c7d6e5f4g3h2j1k"
	id := func(n int) string { return fmt.Sprintf("dovecot-%d@customer.example", n) }
	plain := func(n int, text string) dovecotMail {
		return dovecotMail{raw: mailtest.CustomerMail(id(n), "Order 4821", text), id: id(n), text: text,
			subject: "Order 4821", thread: id(n), senderName: "Ann Lee"}
	}
	mails := []dovecotMail{
		plain(1, "Where is my order 4821?"),
		{
			// A reply to the support's answer, to its plus address, quoting it.
			raw: []byte(strings.Join([]string{
				"From: Ann Lee <" + mailtest.CustomerAddress + ">",
				"To: Example Support <support+" + token + "@example.com>",
				"Subject: Re: Order 4821",
				"Date: Tue, 7 Jan 2025 12:01:00 +0100",
				"Message-ID: <" + id(2) + ">",
				"In-Reply-To: <" + token + "@example.com>",
				"References: <" + id(1) + "> <" + token + "@example.com>",
				"MIME-Version: 1.0",
				"Content-Type: text/plain; charset=utf-8",
				"",
				"It arrived, thanks!",
				"",
				"On Tue, 7 Jan 2025 at 11:00, Example Support <support@example.com> wrote:",
				"> It ships today.",
				"> Best, Support",
				"",
			}, "\r\n")),
			id: id(2), text: "It arrived, thanks!", subject: "Re: Order 4821",
			thread: id(1), threadKeys: strings.ToUpper(token) + "," + token + "@example.com," + id(1), replyToken: token, senderName: "Ann Lee",
		},
		{
			// Encoded words and quoted-printable UTF-8, as most clients send.
			raw: []byte(strings.Join([]string{
				"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@kunde.example>",
				"To: support@example.com",
				"Subject: =?UTF-8?Q?Bestellung_=C3=BCber_5_=E2=82=AC?=",
				"Date: Tue, 7 Jan 2025 12:30:00 +0100",
				"Message-ID: <" + id(3) + ">",
				"MIME-Version: 1.0",
				"Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: quoted-printable",
				"",
				"Gr=C3=BC=C3=9Fe aus K=C3=B6ln",
				"",
				"-- ",
				"J=C3=BCrgen",
				"",
			}, "\r\n")),
			id: id(3), text: "Grüße aus Köln", subject: "Bestellung über 5 €", thread: id(3), senderName: "Jürgen Müller",
		},
		plain(4, "Pushed while idling."),
		plain(5, "Sent while omnigate was down."),
		plain(6, "Also sent while it was down."),
		plain(7, "Pushed after the restart."),
	}
	outOfOffice := readCorpus(t, "out_of_office")
	const outOfOfficeID = "e3a9b7c4d2f1404c8a6b5d4e3f2a1b0c@DB9PR01MB7368.eurprd01.prod.exchangelabs.com"

	// 1. Mail waiting in the mailbox; an auto-reply among it is filed, not published.
	d.deliver(t, "INBOX", mails[0].raw)
	d.deliver(t, "INBOX", mails[1].raw)
	d.deliver(t, "INBOX", outOfOffice)
	d.deliver(t, "INBOX", mails[2].raw)
	a := build(t, env.Deps, config())
	stop := run(t, a)
	bustest.Eventually(t, wait, func() error { return a.(adapters.Readier).Ready(t.Context()) })
	w.inbound(t, 3)
	d.filed(t, "INBOX", id(1), id(2), outOfOfficeID, id(3))

	// 2. Mail that arrives while the adapter idles.
	d.waitIdle(t)
	d.deliver(t, "INBOX", mails[3].raw)
	w.inbound(t, 4)
	d.filed(t, "INBOX", id(1), id(2), outOfOfficeID, id(3), id(4))
	stop()

	// 3. Mail that arrives while it is down, and after a restart with
	// processed_mailbox: a new adapter on the same store goes on where the
	// last one stopped.
	d.deliver(t, "INBOX", mails[4].raw)
	d.deliver(t, "INBOX", mails[5].raw)
	a = build(t, env.Deps, config("processed_mailbox: Processed"))
	stop = run(t, a)
	w.inbound(t, 6)
	d.waitIdle(t)
	d.deliver(t, "INBOX", mails[6].raw)
	w.inbound(t, 7)
	d.filed(t, "Processed", id(5), id(6), id(7))
	d.filed(t, "INBOX", id(1), id(2), outOfOfficeID, id(3), id(4))
	stop()

	stored := env.Stored(t, bus.StreamIn)
	if len(stored) != len(mails) {
		t.Fatalf("%d messages on %s, want %d", len(stored), bus.StreamIn, len(mails))
	}
	for i, s := range stored {
		want, m := mails[i], s.Message
		if m == nil {
			t.Errorf("message %d: undecodable envelope: %v", i+1, s.Err)
			continue
		}
		if !strings.HasPrefix(s.Subject, bus.RootIn+"."+email.Name+".") {
			t.Errorf("message %d published to %s, want %s.%s.*", i+1, s.Subject, bus.RootIn, email.Name)
		}
		if m.External.Message != want.id || m.External.Thread != want.thread {
			t.Errorf("message %d: external %+v, want message %s in thread %s", i+1, m.External, want.id, want.thread)
		}
		if m.Text != want.text {
			t.Errorf("message %d: text %q, want %q", i+1, m.Text, want.text)
		}
		for k, v := range map[string]string{
			event.MetaSubject:    want.subject,
			event.MetaName:       want.senderName,
			event.MetaThreadKeys: want.threadKeys,
			email.MetaReplyToken: want.replyToken,
		} {
			if m.Meta[k] != v {
				t.Errorf("message %d: meta %s = %q, want %q", i+1, k, m.Meta[k], v)
			}
		}
		if m.Channel != email.Name || m.To != "email:"+mailtest.Address || m.SentAt.IsZero() {
			t.Errorf("message %d: channel %s, to %s, sent_at %s", i+1, m.Channel, m.To, m.SentAt)
		}
	}
	if n := rec.count("inbound", "duplicate", "true"); n != 0 {
		t.Errorf("the adapter published %d mail(s) a second time (JetStream dropped them): it must not even try", n)
	}
	if n := rec.count("inbound", "", ""); n != len(mails) {
		t.Errorf("%d publishes for %d customer mails", n, len(mails))
	}
	if n := rec.count("automatic mail skipped", "", ""); n != 1 {
		t.Errorf("the out-of-office reply was skipped %d times, want once", n)
	}
	// The adapter's two sessions, and only they, logged in over STARTTLS.
	bustest.Eventually(t, wait, func() error {
		if got := d.tlsLogins(t); len(got) != 2 {
			return fmt.Errorf("%d logins over TLS, want the adapter's 2: %q", len(got), got)
		}
		return nil
	})
	if warns := warnings(rec); len(warns) != 0 {
		t.Errorf("warnings logged against a healthy server: %q", warns)
	}
}

// warnings returns the messages of the records at level WARN and above.
func warnings(r *recorder) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range *r.recs {
		if rec.Level >= slog.LevelWarn {
			out = append(out, rec.Message)
		}
	}
	return out
}

// TestDovecot_BouncesAndReplies runs the features of bounces, reply tokens
// and quote cutting against Dovecot: a reply is sent (to the fake SMTP
// server) with its plus-addressed return path; the recipient's DSN, which
// returns nothing of the reply, an Exim text bounce and a Gmail reply in
// Chinese arrive in Dovecot. The DSN finds its reply by its
// Original-Envelope-Id (its return path would too) and becomes
// delivery.failed and contact.unreachable, the Exim bounce likewise by its
// copy of the reply, and the reply reaches the bus cut to what the customer
// wrote; all three are filed.
func TestDovecot_BouncesAndReplies(t *testing.T) {
	d := startDovecot(t)
	env := adaptertest.NewEnv(t, email.Name)
	rec := newRecorder(env.Logger.Handler())
	env.Deps.Logger = slog.New(rec).With("adapter", email.Name)
	w := &world{env: env, log: rec, smtp: mailtest.NewSMTP(t)}
	a := build(t, env.Deps, cfg{imapPort: d.port, smtpPort: w.smtp.Port, top: []string{"reply_token: true"},
		imap: []string{"security: starttls", "insecure_skip_verify: true", "poll_interval: 1h"}}.yaml())

	r := reply("gone@customer.example", "Your order ships today.")
	if _, err := a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	sm, _, _ := lastMail(t, w.smtp)
	dsn := mailtest.DSN(sm, mailtest.Bounce{NoHeaders: true})
	d.deliver(t, "INBOX", dsn)
	d.deliver(t, "INBOX", readCorpus(t, "exim_bounce"))
	d.deliver(t, "INBOX", readCorpus(t, "gmail_zh_reply"))
	run(t, a)

	var failed []*core.Message
	bustest.Eventually(t, wait, func() error {
		if failed = env.Events(t, event.DeliveryFailed, ""); len(failed) < 2 {
			return fmt.Errorf("%d delivery.failed events, want 2", len(failed))
		}
		return nil
	})
	got := w.inbound(t, 3) // two contact.unreachable and the reply
	byReply := map[string]*core.Message{}
	for _, ev := range failed {
		byReply[ev.ReplyTo] = ev
	}
	if ev := byReply[r.ID]; ev == nil || ev.ConversationID != r.ConversationID || ev.Meta[event.MetaReason] != event.ReasonBounced {
		t.Errorf("delivery.failed of the reply: %+v", ev)
	}
	if ev := byReply["01JHQYYJTEW0TGFE0JKN9K1EG1"]; ev == nil || ev.To != "email:olga@customer.example" {
		t.Errorf("delivery.failed of the Exim bounce: %+v", ev)
	}
	var unreachable []core.Identity
	var text string
	for _, m := range got {
		switch {
		case m.Type == event.ContactUnreachable:
			unreachable = append(unreachable, m.From)
		case m.Kind == core.KindMessage:
			text = m.Text
		}
	}
	slices.Sort(unreachable)
	if !slices.Equal(unreachable, []core.Identity{"email:gone@customer.example", "email:olga@customer.example"}) {
		t.Errorf("unreachable %q", unreachable)
	}
	if want := "您好，\n\n包裹今天还没有到，请帮我查一下订单 20260105-7781。\n\n谢谢！\n王小明"; text != want {
		t.Errorf("reply text %q, want %q", text, want)
	}
	if n := rec.count("bounce: reply not delivered", "matched_by", "original-envelope-id"); n != 1 {
		t.Errorf("the DSN was matched by Original-Envelope-Id %d times, want 1 (ENVID set by the fake SMTP server)", n)
	}
	d.filed(t, "INBOX", strings.Trim(msgIDOf(dsn), "<>"), "E1vXkQe-000Gh2-2b@mx.hosting.example",
		"CAHx5zQ1mWk9Ua8e3Yb7Lp0Nq2Rs4Tv6Xz8=Ab1Cd3Ef5Gh7@mail.gmail.com")
}

// msgIDOf returns the Message-Id header of raw.
func msgIDOf(raw []byte) string {
	for _, l := range strings.Split(string(raw), "\r\n") {
		if v, ok := strings.CutPrefix(l, "Message-Id: "); ok {
			return v
		}
	}
	return ""
}

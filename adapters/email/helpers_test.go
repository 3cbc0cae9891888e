package email_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/email"
)

const (
	supportAddr  = "support@example.com"
	imapPassword = "imap-secret"
	smtpUser     = "support@example.com"
	smtpPassword = "smtp-secret"
	customerAddr = "ann.lee@customer.example"
)

// imapServer is an in-memory IMAP server (go-imap's imapmemserver) on a
// loopback port, with one user whose mailboxes are INBOX and Processed.
type imapServer struct {
	port int
	user *imapmemserver.User
}

// withIdle is the capability set of a server with IDLE and MOVE; without it
// the server speaks plain IMAP4rev1 and the adapter must poll.
var (
	withIdle    = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	withoutIdle = imap.CapSet{imap.CapIMAP4rev1: {}}
)

func startIMAP(t *testing.T, caps imap.CapSet) *imapServer {
	t.Helper()
	return startIMAPSecurity(t, caps, email.SecurityNone)
}

// startIMAPSecurity starts the server speaking implicit TLS, STARTTLS or
// plain text, with a self-signed certificate for 127.0.0.1.
func startIMAPSecurity(t *testing.T, caps imap.CapSet, security string) *imapServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(supportAddr, imapPassword)
	for _, mb := range []string{"INBOX", "Processed"} {
		if err := user.Create(mb, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return pushingSession{mem.NewSession().(imapserver.SessionIMAP4rev2)}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
		TLSConfig:    starttls(t, security),
	})
	ln := listen(t, security)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &imapServer{port: ln.Addr().(*net.TCPAddr).Port, user: user}
}

// pushingSession is a memserver session whose IDLE reports every change,
// as real servers do: imapmemserver's own IDLE misses an update queued between
// the previous command and the IDLE, which would make tests flaky.
type pushingSession struct {
	imapserver.SessionIMAP4rev2
}

func (s pushingSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := s.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
	}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// deliver appends raw to mailbox, as the mail server does when mail arrives.
func (s *imapServer) deliver(t *testing.T, mailbox string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	data, err := s.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Flags: flags})
	if err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	return data.UID
}

// recreate deletes and creates mailbox again: its UIDVALIDITY changes.
func (s *imapServer) recreate(t *testing.T, mailbox string) {
	t.Helper()
	if err := s.user.Delete(mailbox); err != nil {
		t.Fatal(err)
	}
	if err := s.user.Create(mailbox, nil); err != nil {
		t.Fatal(err)
	}
}

// stored is one message of a mailbox as a client sees it.
type stored struct {
	uid   imap.UID
	flags []imap.Flag
}

// list returns the messages of mailbox with their flags.
func (s *imapServer) list(t *testing.T, mailbox string) []stored {
	t.Helper()
	c, err := imapclient.DialInsecure("127.0.0.1:"+strconv.Itoa(s.port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(supportAddr, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil && !strings.Contains(err.Error(), "No matching messages") {
		t.Fatal(err)
	}
	var out []stored
	for _, m := range msgs {
		out = append(out, stored{uid: m.UID, flags: m.Flags})
	}
	_ = c.Logout().Wait()
	return out
}

// customerMail is a plain mail from the customer with Message-ID id.
func customerMail(id, subject, text string, extra ...string) []byte {
	h := []string{
		"From: Ann Lee <" + customerAddr + ">",
		"To: Example Support <" + supportAddr + ">",
		"Subject: " + subject,
		"Date: Tue, 7 Jan 2025 10:14:57 +0100",
		"Message-ID: <" + id + ">",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
	}
	h = append(h, extra...)
	return []byte(strings.Join(h, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(text, "\n", "\r\n") + "\r\n")
}

// smtpServer is the receiving mail server: go-smtp in process, with AUTH
// PLAIN (and LOGIN), recording what it accepts. Its mode makes it throttle or
// refuse recipients.
type smtpServer struct {
	port int

	mu    sync.Mutex
	mode  *smtp.SMTPError // answer to every RCPT, nil to accept
	mech  []string        // mechanisms offered
	mails []sentMail
	auth  []string // users that authenticated
}

// sentMail is one mail the server accepted.
type sentMail struct {
	From string
	To   []string
	Data []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	return startSMTPSecurity(t, email.SecurityNone)
}

func startSMTPSecurity(t *testing.T, security string) *smtpServer {
	t.Helper()
	s := &smtpServer{mech: []string{sasl.Plain, sasl.Login}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	srv.TLSConfig = starttls(t, security)
	ln := listen(t, security)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.port = ln.Addr().(*net.TCPAddr).Port
	return s
}

func (s *smtpServer) setMode(e *smtp.SMTPError) {
	s.mu.Lock()
	s.mode = e
	s.mu.Unlock()
}

func (s *smtpServer) offer(mechs ...string) {
	s.mu.Lock()
	s.mech = mechs
	s.mu.Unlock()
}

// Mails returns what the server accepted.
func (s *smtpServer) Mails() []sentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

// Auths returns "<mechanism>:<user>" of every successful AUTH.
func (s *smtpServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth)
}

// Texts returns the text of every accepted mail, decoded.
func (s *smtpServer) Texts(t *testing.T) []string {
	var out []string
	for _, m := range s.Mails() {
		p, err := email.Normalize(bytes.NewReader(m.Data), email.Limits{})
		if err != nil {
			t.Errorf("the adapter sent an unreadable mail: %v", err)
			continue
		}
		out = append(out, p.FullText)
	}
	return out
}

type smtpSession struct {
	s      *smtpServer
	authed bool
	from   string
	to     []string
}

func (ss *smtpSession) AuthMechanisms() []string {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	return slices.Clone(ss.s.mech)
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != smtpUser || pass != smtpPassword {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		ss.s.mu.Lock()
		ss.s.auth = append(ss.s.auth, mech+":"+user)
		ss.s.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN, which go-sasl does not have.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	mode := ss.s.mode
	ss.s.mu.Unlock()
	if mode != nil {
		return mode
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, sentMail{From: ss.from, To: ss.to, Data: b})
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

// SMTP answers of the fake server's modes.
var (
	throttled = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection"}
	noMailbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account that you tried to reach does not exist"}
)

// cfg describes a channels.email section for the fake servers.
type cfg struct {
	imapPort, smtpPort int
	imap, smtp, top    []string // extra lines of imap:, smtp: and the section
}

// yaml renders the section; extra lines replace defaults with the same key.
func (c cfg) yaml() string {
	lines := []string{"address: " + supportAddr, "name: Example Support", "timeout: 5s"}
	merge := func(defaults, extra []string) []string {
		var out []string
		for _, d := range defaults {
			key, _, _ := strings.Cut(d, ":")
			if !slices.ContainsFunc(extra, func(l string) bool { return strings.HasPrefix(l, key+":") }) {
				out = append(out, "  "+d)
			}
		}
		for _, l := range extra {
			out = append(out, "  "+l)
		}
		return out
	}
	if c.imapPort > 0 {
		lines = append(lines, "imap:")
		lines = append(lines, merge([]string{"host: 127.0.0.1", "port: " + strconv.Itoa(c.imapPort), "security: none",
			"password: " + imapPassword, "poll_interval: 1s", "initial_scan: all"}, c.imap)...)
	}
	if c.smtpPort > 0 {
		lines = append(lines, "smtp:")
		lines = append(lines, merge([]string{"host: 127.0.0.1", "port: " + strconv.Itoa(c.smtpPort), "security: none",
			"username: " + smtpUser, "password: " + smtpPassword}, c.smtp)...)
	}
	lines = append(lines, c.top...)
	return strings.Join(lines, "\n") + "\n"
}

// build builds the adapter as omnigate serve does: from its YAML section,
// through the registry.
func build(t *testing.T, deps adapters.Deps, src string) adapters.Adapter {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	a, err := adapters.Build(email.Name, "omnigate.yaml", &node, deps)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, src)
	}
	return a
}

// newSilentListener accepts connections and never says a word; it returns
// its port.
func newSilentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// testCert is a self-signed certificate for 127.0.0.1, made once.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// starttls is the server's STARTTLS configuration: nil (no STARTTLS) unless
// security is starttls.
func starttls(t *testing.T, security string) *tls.Config {
	if security != email.SecurityStartTLS {
		return nil
	}
	return serverTLS(t)
}

// listen listens on a loopback port, with implicit TLS for security tls.
func listen(t *testing.T, security string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if security == email.SecurityTLS {
		ln = tls.NewListener(ln, serverTLS(t))
	}
	return ln
}

package mailtest

import (
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
)

// SMTP answers for FailRcpt, as providers give them.
var (
	// Throttled is a provider's rate limit (Gmail's wording): the adapter
	// retries later.
	Throttled = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection"}
	// NoMailbox is an unknown recipient (Gmail's wording): the adapter gives
	// up.
	NoMailbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account that you tried to reach does not exist"}
)

// Mail is one mail the SMTP server accepted.
type Mail struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// EnvelopeID and Return are the DSN parameters of MAIL FROM (RFC 3461):
	// ENVID and RET ("FULL" or "HDRS"), "" when not given.
	EnvelopeID, Return string
	// To are the envelope recipients (RCPT TO), in order.
	To []string
	// Data is the mail as sent (DATA), headers and body.
	Data []byte
}

// SMTPServer is a submission server on a loopback port: go-smtp with AUTH
// PLAIN and LOGIN for SMTPUser only and the DSN extension (RFC 3461),
// recording every mail it accepts. MAIL before AUTH is refused. Its methods
// are safe for concurrent use.
type SMTPServer struct {
	// Host and Port are where it listens: Host is 127.0.0.1.
	Host string
	Port int
	// Security is how clients connect: email.SecurityNone, SecurityStartTLS
	// or SecurityTLS, the value of channels.email.smtp.security.
	Security string
	// User and Password are the only credentials it accepts: SMTPUser and
	// SMTPPassword.
	User, Password string

	srv *smtp.Server
	ln  net.Listener

	mu      sync.Mutex
	rcpt    *smtp.SMTPError // answer to every RCPT, nil to accept
	plus    *smtp.SMTPError // answer to a MAIL FROM with a plus address, nil to accept
	mech    []string        // mechanisms offered
	oauth   *OAuthServer    // set by RequireOAuth
	refusal Refusal         // set by SetRefusal
	mails   []Mail
	auth    []string // "<mechanism>:<user>" of every successful AUTH
}

// NewSMTP starts a plain-text SMTP server, closed when the test ends.
func NewSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	return NewSMTPSecurity(t, email.SecurityNone)
}

// NewSMTPSecurity starts an SMTP server that speaks security:
// email.SecurityNone (also ""), SecurityStartTLS (it offers STARTTLS, and
// accepts AUTH before it too) or SecurityTLS, with Certificate. It is closed
// when the test ends.
func NewSMTPSecurity(t testing.TB, security string) *SMTPServer {
	t.Helper()
	security = checkSecurity(t, security)
	s := &SMTPServer{Host: host, Security: security, User: SMTPUser, Password: SMTPPassword, mech: []string{sasl.Plain, sasl.Login}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }))
	srv.Domain = "mx.test"
	srv.EnableDSN = true
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	srv.TLSConfig = starttls(t, security)
	ln := listen(t, security)
	s.srv, s.ln, s.Port = srv, ln, ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(s.Close)
	return s
}

// Addr is Host:Port.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Close stops the server and drops its connections, as if it were
// unreachable.
func (s *SMTPServer) Close() {
	// The listener too: Serve, if it has not started yet, would not.
	_ = s.ln.Close()
	_ = s.srv.Close()
}

// FailRcpt makes the server answer every RCPT with e from now on, Throttled
// or NoMailbox for instance; nil accepts recipients again.
func (s *SMTPServer) FailRcpt(e *smtp.SMTPError) {
	s.mu.Lock()
	s.rcpt = e
	s.mu.Unlock()
}

// RefusePlusSender makes the server answer a MAIL FROM whose address is
// plus-addressed (support+x@...) with e from now on, as a submission server
// does that lets an account send only as itself (Exchange Online:
// SendAsDenied); nil accepts them again.
func (s *SMTPServer) RefusePlusSender(e *smtp.SMTPError) {
	s.mu.Lock()
	s.plus = e
	s.mu.Unlock()
}

// Offer makes the server offer only the AUTH mechanisms mechs (sasl.Plain,
// sasl.Login) from the next EHLO on; by default it offers both.
func (s *SMTPServer) Offer(mechs ...string) {
	s.mu.Lock()
	s.mech = slices.Clone(mechs)
	s.mu.Unlock()
}

// Mails returns the mails accepted so far, in order.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

// Auths returns "<mechanism>:<user>" of every successful AUTH so far, like
// "PLAIN:support@example.com".
func (s *SMTPServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth)
}

// Texts returns the whole text body of every accepted mail, decoded as
// email.Normalize reads it (Parsed.FullText: nothing cut), in order; a mail
// it cannot read fails the test.
func (s *SMTPServer) Texts(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, m := range s.Mails() {
		p, err := email.Normalize(bytes.NewReader(m.Data), email.Limits{})
		if err != nil {
			t.Errorf("mailtest: the adapter sent an unreadable mail: %v", err)
			continue
		}
		out = append(out, p.FullText)
	}
	return out
}

// smtpSession is one connection's transaction state.
type smtpSession struct {
	s      *SMTPServer
	authed bool
	from   string
	opts   smtp.MailOptions
	to     []string
}

func (ss *smtpSession) AuthMechanisms() []string {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	return slices.Clone(ss.s.mech)
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	ss.s.mu.Lock()
	o, offered := ss.s.oauth, slices.Contains(ss.s.mech, mech)
	ss.s.mu.Unlock()
	if o != nil {
		if !offered {
			return nil, smtp.ErrAuthUnknownMechanism
		}
		return ss.bearerAuth(o, mech), nil
	}
	check := func(user, pass string) error {
		if user != ss.s.User || pass != ss.s.Password {
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

func (ss *smtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.s.mu.Lock()
	e := ss.s.plus
	ss.s.mu.Unlock()
	if local, _, _ := strings.Cut(from, "@"); e != nil && strings.Contains(local, "+") {
		return e
	}
	ss.from = from
	if opts != nil {
		ss.opts = *opts
	}
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	e := ss.s.rcpt
	ss.s.mu.Unlock()
	if e != nil {
		return e
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
	ss.s.mails = append(ss.s.mails, Mail{From: ss.from, EnvelopeID: ss.opts.EnvelopeID, Return: string(ss.opts.Return), To: slices.Clone(ss.to), Data: b})
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.opts, ss.to = "", smtp.MailOptions{}, nil }
func (ss *smtpSession) Logout() error { return nil }

package mailtest

import (
	"bytes"
	"maps"
	"net"
	"regexp"
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

	"github.com/omnigate/omnigate/adapters/email"
)

// Capability sets of the IMAP server.
var (
	// WithIdle is IMAP4rev1 with IDLE, MOVE and UIDPLUS, as Gmail, Microsoft
	// 365 and Dovecot offer: the adapter idles and moves processed mail.
	WithIdle = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	// WithoutIdle is plain IMAP4rev1, without IDLE or MOVE: the adapter must
	// poll, and move processed mail with COPY, STORE and EXPUNGE.
	WithoutIdle = imap.CapSet{imap.CapIMAP4rev1: {}}
)

// IMAPServer is an in-memory IMAP server on a loopback port with one user,
// Address, whose mailboxes are INBOX and Processed. Its methods may be called
// while clients are connected.
type IMAPServer struct {
	// Host and Port are where it listens: Host is 127.0.0.1.
	Host string
	Port int
	// Security is how clients connect: email.SecurityNone, SecurityStartTLS
	// or SecurityTLS, the value of channels.email.imap.security.
	Security string
	// User and Password are the only credentials it accepts: Address and
	// IMAPPassword.
	User, Password string

	srv  *imapserver.Server
	ln   net.Listener
	user *imapmemserver.User

	mu         sync.Mutex
	oauth      *OAuthServer // set by RequireOAuth
	oauthMechs []string
	refusal    Refusal
	auths      []string // "<mechanism>:<user>" of every successful AUTHENTICATE
}

// NewIMAP starts a plain-text IMAP server offering caps (WithIdle when nil),
// closed when the test ends.
func NewIMAP(t testing.TB, caps imap.CapSet) *IMAPServer {
	t.Helper()
	return NewIMAPSecurity(t, caps, email.SecurityNone)
}

// NewIMAPSecurity starts an IMAP server offering caps (WithIdle when nil)
// that speaks security: email.SecurityNone (also ""), SecurityStartTLS (it
// offers STARTTLS, and accepts LOGIN before it too) or SecurityTLS, with
// Certificate. It is closed when the test ends. Caps without IDLE are refused
// with STARTTLS: the server could not hide IDLE inside the TLS stream.
func NewIMAPSecurity(t testing.TB, caps imap.CapSet, security string) *IMAPServer {
	t.Helper()
	security = checkSecurity(t, security)
	if caps == nil {
		caps = WithIdle
	}
	noIdle := !caps.Has(imap.CapIdle)
	if noIdle && security == email.SecurityStartTLS {
		t.Fatalf("mailtest: an IMAP server without IDLE cannot speak %s; use %s or %s", security, email.SecurityNone, email.SecurityTLS)
	}
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(Address, IMAPPassword)
	for _, mb := range []string{"INBOX", "Processed"} {
		if err := user.Create(mb, nil); err != nil {
			t.Fatalf("mailtest: create %s: %v", mb, err)
		}
	}
	mem.AddUser(user)
	var s *IMAPServer
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := pushingSession{mem.NewSession().(imapserver.SessionIMAP4rev2)}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.oauth != nil {
				return &oauthSession{pushingSession: sess, s: s, o: s.oauth, mechs: slices.Clone(s.oauthMechs), refusal: s.refusal}, nil, nil
			}
			return sess, nil, nil
		},
		Caps:         maps.Clone(caps),
		InsecureAuth: true,
		Logger:       discardLogger{},
		TLSConfig:    starttls(t, security),
	})
	ln := listen(t, security)
	if noIdle {
		ln = hideIdleListener{ln}
	}
	s = &IMAPServer{
		Host: host, Port: ln.Addr().(*net.TCPAddr).Port, Security: security,
		User: Address, Password: IMAPPassword,
		srv: srv, ln: ln, user: user,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(s.Close)
	return s
}

// Addr is Host:Port.
func (s *IMAPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Close stops the server and drops its connections, as if it were
// unreachable. The mailboxes are gone with it.
func (s *IMAPServer) Close() {
	// The listener too: Serve, if it has not started yet, would not.
	_ = s.ln.Close()
	_ = s.srv.Close()
}

// hideIdleListener accepts connections whose CAPABILITY lists leave out IDLE:
// imapserver adds IDLE for every IMAP4rev1 client after login, whatever
// Options.Caps says, and a server that does not offer it is the point of
// WithoutIdle. The connections are plain text (none, or inside implicit TLS).
type hideIdleListener struct{ net.Listener }

func (l hideIdleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return hideIdleConn{c}, nil
}

type hideIdleConn struct{ net.Conn }

var (
	// capabilityLine starts a greeting, a CAPABILITY response or a tagged
	// OK with the capabilities (LOGIN's).
	capabilityLine = regexp.MustCompile(`^(\* CAPABILITY |[^ ]+ OK \[CAPABILITY )`)
	idleCap        = regexp.MustCompile(` IDLE([ \]\r])`)
)

// Write writes p with IDLE taken out of its capability lines. imapserver
// flushes whole responses, so a line is not split between writes.
func (c hideIdleConn) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(" IDLE")) {
		return c.Conn.Write(p)
	}
	lines := bytes.SplitAfter(p, []byte("\n"))
	for i, l := range lines {
		if capabilityLine.Match(l) {
			lines[i] = idleCap.ReplaceAll(l, []byte("$1"))
		}
	}
	if _, err := c.Conn.Write(bytes.Join(lines, nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// pushingSession is a memserver session whose IDLE reports every change,
// as real servers do: imapmemserver's own IDLE misses an update queued between
// the previous command and the IDLE, which would make tests flaky.
type pushingSession struct {
	imapserver.SessionIMAP4rev2
}

// Idle polls the mailbox every 10ms until stop is closed.
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

// Deliver appends raw to mailbox with flags, as the mail server does when
// mail arrives, and returns its UID. A client idling on mailbox is told
// within 10ms.
func (s *IMAPServer) Deliver(t testing.TB, mailbox string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	data, err := s.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Flags: flags})
	if err != nil {
		t.Fatalf("mailtest: append to %s: %v", mailbox, err)
	}
	return data.UID
}

// Recreate deletes mailbox and creates it again, empty: its UIDVALIDITY
// changes.
func (s *IMAPServer) Recreate(t testing.TB, mailbox string) {
	t.Helper()
	if err := s.user.Delete(mailbox); err != nil {
		t.Fatalf("mailtest: delete %s: %v", mailbox, err)
	}
	if err := s.user.Create(mailbox, nil); err != nil {
		t.Fatalf("mailtest: create %s: %v", mailbox, err)
	}
}

// Stored is one message of a mailbox as a client sees it.
type Stored struct {
	UID   imap.UID
	Flags []imap.Flag
}

// List returns the messages of mailbox with their flags, as a separate
// client sees them: it logs in over the server's own security, trusting
// Certificate, and selects mailbox read-only.
func (s *IMAPServer) List(t testing.TB, mailbox string) []Stored {
	t.Helper()
	c := s.login(t)
	defer c.Close()
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("mailtest: select %s: %v", mailbox, err)
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil && !strings.Contains(err.Error(), "No matching messages") {
		t.Fatalf("mailtest: fetch %s: %v", mailbox, err)
	}
	var out []Stored
	for _, m := range msgs {
		out = append(out, Stored{UID: m.UID, Flags: m.Flags})
	}
	_ = c.Logout().Wait()
	return out
}

// login connects to the server as User.
func (s *IMAPServer) login(t testing.TB) *imapclient.Client {
	t.Helper()
	var (
		c   *imapclient.Client
		err error
	)
	switch o := (&imapclient.Options{TLSConfig: clientTLS(t)}); s.Security {
	case email.SecurityTLS:
		c, err = imapclient.DialTLS(s.Addr(), o)
	case email.SecurityStartTLS:
		c, err = imapclient.DialStartTLS(s.Addr(), o)
	default:
		c, err = imapclient.DialInsecure(s.Addr(), nil)
	}
	if err != nil {
		t.Fatalf("mailtest: dial %s: %v", s.Addr(), err)
	}
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		_ = c.Close()
		t.Fatalf("mailtest: login: %v", err)
	}
	return c
}

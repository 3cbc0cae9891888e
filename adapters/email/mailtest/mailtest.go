// Package mailtest is a fake mail provider for tests of the email adapter: an
// IMAP server holding the support mailbox (go-imap's in-memory imapmemserver,
// with an IDLE that reports every change) and an SMTP submission server
// (go-smtp) that records every mail it accepts, each on its own loopback
// port, in plain text, STARTTLS or implicit TLS with a self-signed
// certificate for 127.0.0.1. Both close when the test ends.
//
// A test drops a customer's mail into the mailbox with IMAPServer.Deliver
// (CustomerMail builds one) and reads what the adapter sent with
// SMTPServer.Mails or SMTPServer.Texts. Point channels.email at them with
//
//	address: support@example.com          # Address
//	imap:
//	  host: 127.0.0.1                     # IMAPServer.Host
//	  port: 54321                         # IMAPServer.Port
//	  security: none                      # IMAPServer.Security
//	  password: imap-secret               # IMAPPassword; username defaults to address
//	smtp:
//	  host: 127.0.0.1                     # SMTPServer.Host
//	  port: 54322                         # SMTPServer.Port
//	  security: none                      # SMTPServer.Security
//	  username: support@example.com       # SMTPUser
//	  password: smtp-secret               # SMTPPassword
//
// and, for security tls or starttls, insecure_skip_verify: true in imap and
// smtp: the adapter has no setting for another CA, and the certificate
// verifies only against CertPool.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/email"
)

// The mailbox the fakes serve and the customer of CustomerMail.
const (
	// Address is the support address: the IMAP user and the To of
	// CustomerMail.
	Address = "support@example.com"
	// IMAPPassword is the IMAP user's password.
	IMAPPassword = "imap-secret"
	// SMTPUser and SMTPPassword are the only credentials the SMTP server
	// accepts.
	SMTPUser     = "support@example.com"
	SMTPPassword = "smtp-secret"
	// CustomerAddress is the From of CustomerMail.
	CustomerAddress = "ann.lee@customer.example"
)

// host is the loopback address both servers listen on and the certificate
// is made for.
const host = "127.0.0.1"

// CustomerMail is a plain-text mail from the customer (Ann Lee,
// CustomerAddress) to Address with Message-ID <id>, subject and text (lines
// ending in "\n" are sent with CRLF). extra are more header lines, like
// "In-Reply-To: <x@example.com>".
func CustomerMail(id, subject, text string, extra ...string) []byte {
	h := []string{
		"From: Ann Lee <" + CustomerAddress + ">",
		"To: Example Support <" + Address + ">",
		"Subject: " + subject,
		"Date: Tue, 7 Jan 2025 10:14:57 +0100",
		"Message-ID: <" + id + ">",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
	}
	h = append(h, extra...)
	return []byte(strings.Join(h, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(text, "\n", "\r\n") + "\r\n")
}

// testCert is the self-signed certificate for 127.0.0.1, made once per test
// binary.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(host)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

// Certificate is the self-signed certificate for 127.0.0.1 that the TLS and
// STARTTLS servers present, the same for every server of the test binary.
func Certificate(t testing.TB) tls.Certificate {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	return cert
}

// CertificatePEM returns Certificate and its private key (PKCS#8) as PEM,
// for a server configured with files, like Dovecot.
func CertificatePEM(t testing.TB) (cert, key []byte) {
	t.Helper()
	c := Certificate(t)
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatalf("mailtest: certificate key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CertPool is a pool trusting Certificate only, for a client that verifies
// the servers' certificate (RootCAs).
func CertPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(Certificate(t).Leaf)
	return pool
}

// serverTLS is the servers' TLS configuration.
func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{Certificate(t)}, MinVersion: tls.VersionTLS12}
}

// clientTLS is a client's TLS configuration that trusts the servers.
func clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{RootCAs: CertPool(t), MinVersion: tls.VersionTLS12}
}

// checkSecurity fails the test unless security is one of the adapter's
// values; "" is email.SecurityNone.
func checkSecurity(t testing.TB, security string) string {
	t.Helper()
	switch security {
	case "":
		return email.SecurityNone
	case email.SecurityNone, email.SecurityStartTLS, email.SecurityTLS:
		return security
	}
	t.Fatalf("mailtest: security %q: want %s, %s or %s", security, email.SecurityNone, email.SecurityStartTLS, email.SecurityTLS)
	return ""
}

// starttls is a server's STARTTLS configuration: nil (no STARTTLS) unless
// security is starttls.
func starttls(t testing.TB, security string) *tls.Config {
	t.Helper()
	if security != email.SecurityStartTLS {
		return nil
	}
	return serverTLS(t)
}

// listen listens on a loopback port, with implicit TLS for security tls.
func listen(t testing.TB, security string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if security == email.SecurityTLS {
		ln = tls.NewListener(ln, serverTLS(t))
	}
	return ln
}

// discardLogger silences the servers' logs of clients going away.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

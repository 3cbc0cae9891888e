package mailtest_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// TestCustomerMail: the mail reads as the customer's, with its extra headers.
func TestCustomerMail(t *testing.T) {
	raw := mailtest.CustomerMail("1@customer.example", "Order 4821", "Where is it?\n\nAnn", "In-Reply-To: <0@example.com>")
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("a bare LF in %q", raw)
	}
	p, err := email.Normalize(bytes.NewReader(raw), email.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageID != "1@customer.example" || p.From != mailtest.CustomerAddress || p.FromName != "Ann Lee" ||
		p.Subject != "Order 4821" || p.FullText != "Where is it?\n\nAnn" || !slices.Equal(p.InReplyTo, []string{"0@example.com"}) {
		t.Errorf("parsed %+v", p)
	}
}

// TestCertificate: the PEM pair loads, and the certificate verifies for
// 127.0.0.1 against CertPool only.
func TestCertificate(t *testing.T) {
	cert, key := mailtest.CertificatePEM(t)
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pair.Certificate[0], mailtest.Certificate(t).Certificate[0]) {
		t.Error("CertificatePEM is not Certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: mailtest.CertPool(t)}); err != nil {
		t.Errorf("does not verify against CertPool: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: x509.NewCertPool()}); err == nil {
		t.Error("verifies against an empty pool")
	}
}

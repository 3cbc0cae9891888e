package email_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// TestInitialResponse_DocumentedExamples: the XOAUTH2 initial response is
// byte for byte the examples of Google's "XOAUTH2 protocol" and Microsoft's
// "Authenticate an IMAP, POP or SMTP connection using OAuth" pages.
func TestInitialResponse_DocumentedExamples(t *testing.T) {
	for _, tc := range []struct{ user, token, want string }{
		{"someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
			"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="},
		{"test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA",
			"dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="},
	} {
		if got := base64.StdEncoding.EncodeToString(email.InitialResponse(email.MechXOAuth2, tc.user, tc.token)); got != tc.want {
			t.Errorf("XOAUTH2 for %s:\n got %s\nwant %s", tc.user, got, tc.want)
		}
	}
	// RFC 7628 section 4.1, without the optional host and port.
	got := string(email.InitialResponse(email.MechOAuthBearer, "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="))
	if want := "n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"; got != want {
		t.Errorf("OAUTHBEARER: %q, want %q", got, want)
	}
}

// TestParseChallenge reads the documented error challenges.
func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want email.Challenge
	}{
		// Google's "XOAUTH2 protocol", error response.
		{`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`,
			email.Challenge{Status: "401", Schemes: "bearer mac", Scope: "https://mail.google.com/"}},
		// RFC 7628 section 4.3.
		{`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`,
			email.Challenge{Status: "invalid_token", Scope: "example_scope"}},
		{`{"status":401}`, email.Challenge{Status: "401"}},
		{"Authentication failed\r\n", email.Challenge{Raw: "Authentication failed  "}},
		{`{}`, email.Challenge{Raw: "{}"}},
	} {
		if got := email.ParseChallenge([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseChallenge(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzParseChallenge: whatever a server sends as its error challenge, the
// result is printable, bounded text fit for an error message, and the status
// of a well-formed challenge is read.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`,
		`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`,
		`{"status":400}`, `{"status":null,"scope":["a"]}`, `[1,2]`, `"x"`, ``, "\x00\xff\xfe", `{"status":"` + strings.Repeat("é", 300) + `"}`,
		"Authentication failed\r\n\x1b[31m",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := email.ParseChallenge(b)
		for name, s := range map[string]string{"status": c.Status, "schemes": c.Schemes, "scope": c.Scope, "raw": c.Raw, "string": c.String()} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not UTF-8: %q", name, s)
			}
			if strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Errorf("%s has control characters: %q", name, s)
			}
			if name != "string" && len(s) > 200 {
				t.Errorf("%s is %d bytes", name, len(s))
			}
		}
		var doc struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(b, &doc) == nil && doc.Status != "" && len(doc.Status) <= 200 && utf8.ValidString(doc.Status) &&
			strings.IndexFunc(doc.Status, unicode.IsControl) < 0 && c.Status != doc.Status {
			t.Errorf("status %q read as %q", doc.Status, c.Status)
		}
	})
}

// FuzzBearerRoundTrip: what the adapter sends for any user and token a
// server parses back to them, for both mechanisms.
func FuzzBearerRoundTrip(f *testing.F) {
	f.Add("support@example.com", "ya29.a0AfH6SMB")
	f.Add("shared,box=1@contoso.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA")
	f.Add("用户@例子.中国", "tok/+=")
	f.Fuzz(func(t *testing.T, user, token string) {
		if user == "" || token == "" || strings.ContainsAny(user+token, "\x01 ") {
			return // not a user or token a provider issues
		}
		for _, mech := range []string{email.MechXOAuth2, email.MechOAuthBearer} {
			u, tok, err := mailtest.ParseBearer(mech, email.InitialResponse(mech, user, token))
			if err != nil || u != user || tok != token {
				t.Errorf("%s: parsed (%q, %q, %v), want (%q, %q)", mech, u, tok, err, user, token)
			}
		}
	})
}

package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASL mechanisms that carry an OAuth 2.0 access token.
const (
	// MechXOAuth2 is Google's and Microsoft's XOAUTH2: base64 of
	// "user=" user "\x01auth=Bearer " token "\x01\x01".
	MechXOAuth2 = "XOAUTH2"
	// MechOAuthBearer is OAUTHBEARER (RFC 7628): a GS2 header
	// "n,a=" user "," then "\x01auth=Bearer " token "\x01\x01".
	MechOAuthBearer = "OAUTHBEARER"
)

// InitialResponse is the initial client response of mech (MechXOAuth2 or
// MechOAuthBearer) for user and the access token, before base64: what the
// adapter sends, and what a test server parses.
func InitialResponse(mech, user, token string) []byte {
	if mech == MechOAuthBearer {
		return []byte("n,a=" + gs2Escape(user) + ",\x01auth=Bearer " + token + "\x01\x01")
	}
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

// gs2Escape escapes "," and "=" in a GS2 authorization identity (RFC 5801).
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Challenge is the error a server sends, as a SASL challenge, when it refuses
// an XOAUTH2 or OAUTHBEARER token: JSON like
// {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}
// (Google) or {"status":"invalid_token",...} (RFC 7628). The client answers
// it with an empty response (XOAUTH2) or "\x01" (OAUTHBEARER), and the server
// then ends the exchange with a failure.
type Challenge struct {
	// Status is the HTTP status code (XOAUTH2) or OAuth error code
	// (OAUTHBEARER) of the refusal.
	Status string `json:"status"`
	// Schemes are the token schemes the server takes, usually "Bearer".
	Schemes string `json:"schemes"`
	// Scope is the scope a token needs there.
	Scope string `json:"scope"`
	// Raw is the challenge when it is not such JSON, made printable and
	// cut: some servers send text.
	Raw string `json:"-"`
}

// ParseChallenge reads a server's error challenge. It never fails: what is
// not the documented JSON is kept, printable and cut, in Raw; every field is
// printable and at most 200 bytes, safe for a log line or an error message.
func ParseChallenge(b []byte) Challenge {
	var doc struct{ Status, Schemes, Scope json.RawMessage }
	if err := json.Unmarshal(b, &doc); err != nil {
		return Challenge{Raw: printable(string(b), 200)}
	}
	// A string, or a number (a status written as 401).
	str := func(r json.RawMessage) string {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return printable(s, 200)
		}
		var n json.Number
		if json.Unmarshal(r, &n) == nil {
			return printable(n.String(), 200)
		}
		return ""
	}
	c := Challenge{Status: str(doc.Status), Schemes: str(doc.Schemes), Scope: str(doc.Scope)}
	if c == (Challenge{}) {
		c.Raw = printable(string(b), 200)
	}
	return c
}

// String is the challenge for an error message, like
// "status 401, scope https://mail.google.com/".
func (c Challenge) String() string {
	var parts []string
	if c.Status != "" {
		parts = append(parts, "status "+c.Status)
	}
	if c.Scope != "" {
		parts = append(parts, "scope "+c.Scope)
	}
	if c.Raw != "" {
		parts = append(parts, fmt.Sprintf("%q", c.Raw))
	}
	return strings.Join(parts, ", ")
}

// bearerClient is a sasl.Client for XOAUTH2 and OAUTHBEARER that answers the
// server's error challenge as both mechanisms require, instead of aborting
// (go-sasl's OAUTHBEARER client aborts, which leaves an IMAP server waiting
// for the response), and keeps it for the error.
type bearerClient struct {
	mech, user, token string
	// challenge is the server's error challenge, nil until it sends one.
	challenge *Challenge
}

// Start returns the mechanism and the initial response with the token.
func (c *bearerClient) Start() (string, []byte, error) {
	return c.mech, InitialResponse(c.mech, c.user, c.token), nil
}

// Next answers the server's one error challenge; a second one is a protocol
// error.
func (c *bearerClient) Next(challenge []byte) ([]byte, error) {
	if c.challenge != nil {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	ch := ParseChallenge(challenge)
	c.challenge = &ch
	if c.mech == MechOAuthBearer {
		return []byte{0x01}, nil
	}
	return []byte{}, nil
}

// TokenRejectedError is a mail server's refusal of an OAuth 2.0 access token
// that the token endpoint had just issued or refreshed: the grant no longer
// covers the mailbox (consent withdrawn, permission or scope missing, IMAP or
// SMTP AUTH disabled for it). Another login, or a fix at the provider, is
// needed.
type TokenRejectedError struct {
	// Protocol is "imap" or "smtp".
	Protocol string
	// Mechanism is the SASL mechanism, MechXOAuth2 or MechOAuthBearer.
	Mechanism string
	// User is the login name the token was presented for.
	User string
	// Challenge is the server's error challenge; zero when it sent none
	// (Microsoft answers with a plain failure).
	Challenge Challenge
	// Err is the server's final answer.
	Err error
}

// Error says what the server answered and what to do.
func (e *TokenRejectedError) Error() string {
	detail := e.Challenge.String()
	if detail != "" {
		detail += "; "
	}
	return fmt.Sprintf("%s: token rejected by server: %s for %s: %s%v; run omnigate email login again (and check that the app has the %s permission and the mailbox allows %s)",
		e.Protocol, e.Mechanism, e.User, detail, e.Err, strings.ToUpper(e.Protocol), strings.ToUpper(e.Protocol))
}

// Unwrap returns the server's answer.
func (e *TokenRejectedError) Unwrap() error { return e.Err }

// authenticate logs in over one protocol connection with an access token:
// auth runs one SASL exchange with the client it is given, refused says
// whether its error is the server's refusal rather than a failure of the
// connection. A refused token is dropped and the exchange tried once more
// with a fresh one (a token revoked before its expiry); a second refusal is a
// *TokenRejectedError.
func (s *tokenSource) authenticate(ctx context.Context, proto, mech string, auth func(sasl.Client) error, refused func(error) bool) error {
	for attempt := 0; ; attempt++ {
		token, err := s.Token(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", proto, err)
		}
		c := &bearerClient{mech: mech, user: s.user, token: token}
		err = auth(c)
		if err == nil {
			return nil
		}
		if c.challenge == nil && !refused(err) {
			return fmt.Errorf("%s: authenticate %s: %w", proto, mech, err)
		}
		s.Reject(token)
		rej := &TokenRejectedError{Protocol: proto, Mechanism: mech, User: s.user, Err: err}
		if c.challenge != nil {
			rej.Challenge = *c.challenge
		}
		if attempt > 0 {
			return rej
		}
		s.log.Warn("the mail server refused the access token; trying a new one", "protocol", proto, "mechanism", mech, "answer", rej.Challenge.String())
	}
}

// pickMechanism is the first of XOAUTH2 and OAUTHBEARER that offers says the
// server takes, or "".
func pickMechanism(offers func(mech string) bool) string {
	for _, m := range []string{MechXOAuth2, MechOAuthBearer} {
		if offers(m) {
			return m
		}
	}
	return ""
}

// errNoBearerMech is the error of a server that offers neither mechanism.
func errNoBearerMech(proto string) error {
	return errors.New(proto + ": the server offers neither AUTH XOAUTH2 nor OAUTHBEARER: it does not take OAuth 2.0 tokens (check the host, and for Microsoft 365 that SMTP AUTH is enabled for the mailbox), or use auth: password")
}

var _ sasl.Client = (*bearerClient)(nil)

package email_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus"
)

// oauthWorld is a world whose IMAP and SMTP servers take only tokens of its
// authorization server.
type oauthWorld struct {
	*world
	oauth *mailtest.OAuthServer
	// refresh is the refresh token the operator put in the config.
	refresh string
}

func newOAuthWorld(t *testing.T, mechs ...string) *oauthWorld {
	t.Helper()
	w := &oauthWorld{world: newWorld(t, mailtest.WithIdle), oauth: mailtest.NewOAuth(t)}
	w.imap.RequireOAuth(w.oauth, mechs...)
	w.smtp.RequireOAuth(w.oauth, mechs...)
	w.refresh = w.oauth.Grant()
	return w
}

// yaml is the channel's config with auth: oauth2 against tokenURL.
func (w *oauthWorld) yaml(tokenURL string) string {
	return fmt.Sprintf(`address: %s
name: Example Support
timeout: 5s
auth: oauth2
oauth2:
  provider: custom
  client_id: %s
  client_secret: %s
  token_url: %s
  scopes: [%s]
  refresh_token: %s
imap:
  host: 127.0.0.1
  port: %d
  security: none
  poll_interval: 1s
  initial_scan: all
smtp:
  host: 127.0.0.1
  port: %d
  security: none
`, mailtest.Address, mailtest.ClientID, mailtest.ClientSecret, tokenURL, strings.Join(w.oauth.Scopes, ", "), w.refresh, w.imap.Port, w.smtp.Port)
}

func (w *oauthWorld) adapter(t *testing.T) adapters.Adapter {
	t.Helper()
	return build(t, w.env.Deps, w.yaml(w.oauth.TokenURL))
}

// logged reports whether any log record so far holds s, in its message or
// an attribute.
func (w *oauthWorld) logged(s string) bool {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	for _, rec := range *w.log.recs {
		found := strings.Contains(rec.Message, s)
		rec.Attrs(func(a slog.Attr) bool {
			found = found || strings.Contains(a.Value.String(), s)
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// TestOAuth2_ReceiveAndSend: with auth: oauth2 the adapter reads the mailbox
// over IMAP and sends over SMTP on servers that take nothing but XOAUTH2 or
// OAUTHBEARER, with one access token refreshed from the configured refresh
// token, and logs no token.
func TestOAuth2_ReceiveAndSend(t *testing.T) {
	for _, mech := range []string{email.MechXOAuth2, email.MechOAuthBearer} {
		t.Run(mech, func(t *testing.T) {
			w := newOAuthWorld(t, mech)
			w.imap.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Order 1042", "Where is my parcel?"))
			a := w.adapter(t)
			run(t, a)
			got := w.inbound(t, 1)
			if got[0].Text != "Where is my parcel?" || got[0].From.Address() != mailtest.CustomerAddress {
				t.Errorf("inbound %q from %s", got[0].Text, got[0].From)
			}
			if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "It left our warehouse today.")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if texts := w.smtp.Texts(t); len(texts) != 1 || !strings.Contains(texts[0], "It left our warehouse today.") {
				t.Errorf("sent %q", texts)
			}
			want := mech + ":" + mailtest.Address
			if auths := w.imap.Auths(); len(auths) == 0 || auths[0] != want {
				t.Errorf("IMAP logins %q, want %s", auths, want)
			}
			if auths := w.smtp.Auths(); len(auths) != 1 || auths[0] != want {
				t.Errorf("SMTP logins %q, want %s", auths, want)
			}
			if n := w.oauth.Refreshes(); n != 1 {
				t.Errorf("%d refreshes, want 1: IMAP and SMTP share the access token", n)
			}
			issued := w.oauth.Issued()
			if len(issued) < 3 {
				t.Fatalf("%d tokens issued, want the refresh token and a refreshed pair", len(issued))
			}
			for _, tok := range issued {
				if w.logged(tok) {
					t.Errorf("token %.6s... was logged", tok)
				}
			}
		})
	}
}

// TestOAuth2_RefreshBeforeExpiry: an access token is used until shortly
// before it expires, then replaced before any server sees it expired; a
// rotated refresh token is used for the next refresh (the old one no longer
// works).
func TestOAuth2_RefreshBeforeExpiry(t *testing.T) {
	w := newOAuthWorld(t)
	a := w.adapter(t)
	send := func() {
		t.Helper()
		if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "Thanks for waiting.")); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	// Tokens that expire within minutes are replaced before each use.
	w.oauth.SetExpiresIn(time.Minute)
	send()
	send()
	send()
	if n := w.oauth.Refreshes(); n != 3 {
		t.Errorf("%d refreshes for three replies with one-minute tokens, want 3", n)
	}
	// An hour-long one is used until shortly before it expires.
	w.oauth.SetExpiresIn(time.Hour)
	send()
	send()
	if n := w.oauth.Refreshes(); n != 4 {
		t.Errorf("%d refreshes, want 4: an hour-long token must be reused", n)
	}
	if refused := w.oauth.Refused(); len(refused) != 0 {
		t.Errorf("the token endpoint refused %q: a rotated refresh token was not used", refused)
	}
	if w.logged("the mail server refused the access token") {
		t.Error("a server saw an expired token: it must be replaced before")
	}
	if n := len(w.smtp.Mails()); n != 5 {
		t.Errorf("%d mails sent, want 5", n)
	}
}

// TestOAuth2_RotatedTokenSurvivesRestart: the rotated refresh token is kept
// in the store, so an adapter built again from the same config (a restart,
// another replica) goes on, although the configured token has been retired.
func TestOAuth2_RotatedTokenSurvivesRestart(t *testing.T) {
	w := newOAuthWorld(t)
	if _, err := w.adapter(t).Send(t.Context(), reply(mailtest.CustomerAddress, "First.")); err != nil {
		t.Fatal(err)
	}
	w.oauth.ExpireAccessTokens() // the stored access token is no help: a refresh is needed
	if _, err := w.adapter(t).Send(t.Context(), reply(mailtest.CustomerAddress, "After a restart.")); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if refused := w.oauth.Refused(); len(refused) != 0 {
		t.Errorf("the token endpoint refused %q: the configured, retired refresh token was used again", refused)
	}
	if n := w.oauth.Refreshes(); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
}

// TestOAuth2_RevokedEarly: an access token the server refuses before its
// expiry (revoked, or the provider's clock) is replaced and the login tried
// again, once.
func TestOAuth2_RevokedEarly(t *testing.T) {
	w := newOAuthWorld(t)
	a := w.adapter(t)
	if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "One.")); err != nil {
		t.Fatal(err)
	}
	w.oauth.ExpireAccessTokens()
	if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "Two.")); err != nil {
		t.Fatalf("send with a refused token: %v", err)
	}
	if n := w.oauth.Refreshes(); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
	if !w.logged("the mail server refused the access token; trying a new one") {
		t.Error("the refused token was not logged as such")
	}
	if n := len(w.smtp.Mails()); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}
}

// TestOAuth2_Revoked: once the grant is revoked (invalid_grant), sending
// fails as unavailable (the reply waits, it is not dead-lettered) and IMAP
// stops at once, both saying to log in again; /readyz shows it.
func TestOAuth2_Revoked(t *testing.T) {
	w := newOAuthWorld(t)
	a := w.adapter(t)
	if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "Before.")); err != nil {
		t.Fatal(err)
	}
	w.oauth.Revoke()

	_, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "After."))
	if !errors.Is(err, email.ErrRefreshRefused) || !strings.Contains(err.Error(), "run omnigate email login again") ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("send after revocation: %v, want ErrRefreshRefused saying to log in again", err)
	}
	if bus.IsPermanent(err) || !bus.IsUnavailable(err) {
		t.Errorf("send after revocation: %v, want it unavailable (retried in place), not permanent", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	err = a.Run(ctx)
	if ctx.Err() != nil || !errors.Is(err, email.ErrRefreshRefused) || !strings.Contains(err.Error(), "run omnigate email login again") {
		t.Errorf("Run after revocation: %v (ctx %v), want it to stop with ErrRefreshRefused", err, ctx.Err())
	}
	if err := a.(adapters.Readier).Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "email login") {
		t.Errorf("Ready: %v, want the revocation", err)
	}
}

// TestOAuth2_TokenRejected: a token that the token endpoint issues but the
// mail server refuses (the app lacks the permission, SMTP AUTH is off for the
// mailbox) is a clear error after one retry, with the server's JSON
// challenge, on IMAP and SMTP alike.
func TestOAuth2_TokenRejected(t *testing.T) {
	for _, tc := range []struct {
		name       string
		refusal    mailtest.Refusal
		status     string // of the challenge
		smtp, imap string // in the error
	}{
		{"google", mailtest.RefuseLikeGoogle, "401", "535: Username and Password not accepted", "AUTHENTICATIONFAILED"},
		{"microsoft", mailtest.RefuseLikeMicrosoft, "", "535: Authentication unsuccessful", "AUTHENTICATE failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newOAuthWorld(t)
			w.imap.SetRefusal(tc.refusal)
			w.smtp.SetRefusal(tc.refusal)
			other := mailtest.NewOAuth(t) // tokens the servers do not know
			w.refresh = other.Grant()
			a := build(t, w.env.Deps, w.yaml(other.TokenURL))

			_, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "Hello"))
			var rej *email.TokenRejectedError
			if !errors.As(err, &rej) || rej.Protocol != "smtp" || rej.Mechanism != email.MechXOAuth2 || rej.Challenge.Status != tc.status ||
				!strings.Contains(err.Error(), "token rejected by server") || !strings.Contains(err.Error(), tc.smtp) ||
				!strings.Contains(err.Error(), "run omnigate email login again") {
				t.Errorf("send: %v, want a TokenRejectedError with the server's answer", err)
			}
			if !bus.IsUnavailable(err) {
				t.Errorf("send: %v, want it unavailable (retried in place)", err)
			}
			if other.Refreshes() != 2 {
				t.Errorf("%d refreshes, want 2 (the first token and one retry)", other.Refreshes())
			}

			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			err = a.Run(ctx)
			if !errors.As(err, &rej) || rej.Protocol != "imap" || !strings.Contains(err.Error(), tc.imap) {
				t.Errorf("Run: %v, want an IMAP TokenRejectedError", err)
			}
			if len(w.smtp.Mails()) != 0 {
				t.Error("a mail went out")
			}
		})
	}
}

// TestOAuth2_Config: the section's defaults per provider and its problems,
// all at once.
func TestOAuth2_Config(t *testing.T) {
	base := "address: support@contoso.com\nauth: oauth2\nimap:\n  host: outlook.office365.com\nsmtp:\n  host: smtp.office365.com\n"
	c, err := decode(t, base+"oauth2:\n  provider: microsoft\n  client_id: 8e3c\n  tenant: contoso.onmicrosoft.com\n  refresh_token: r\n")
	if err != nil {
		t.Fatal(err)
	}
	o := c.OAuth2
	if o.TokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" ||
		o.DeviceAuthURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode" ||
		strings.Join(o.Scopes, " ") != strings.Join(email.MicrosoftScopes, " ") || c.SMTP.Username != "support@contoso.com" {
		t.Errorf("microsoft defaults: %+v, smtp user %q", o, c.SMTP.Username)
	}
	c, err = decode(t, base+"oauth2:\n  provider: google\n  client_id: 1-x.apps.googleusercontent.com\n  refresh_token: r\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.OAuth2.TokenURL != "https://oauth2.googleapis.com/token" || strings.Join(c.OAuth2.Scopes, " ") != "https://mail.google.com/" {
		t.Errorf("google defaults: %+v", c.OAuth2)
	}

	_, err = decode(t, base+"imap_placeholder: 1\n")
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	src := "address: support@contoso.com\nauth: oauth2\noauth2:\n  provider: microsoft\n  token_url: ftp://x\n" +
		"imap:\n  host: outlook.office365.com\n  password: p\nsmtp:\n  host: smtp.office365.com\n  password: q\n"
	_, err = decode(t, src)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config.Errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"channels.email.oauth2.tenant (default): required with provider microsoft",
		"channels.email.oauth2.client_id (default): required",
		"channels.email.oauth2.token_url: must be an https URL",
		"channels.email.imap.password: not used with auth: oauth2",
		"channels.email.smtp.password: not used with auth: oauth2",
		"channels.email.oauth2.refresh_token (default): required: run omnigate email login",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	if _, err := decode(t, "address: support@contoso.com\nauth: kerberos\nimap:\n  host: h\n  password: p\n"); err == nil || !strings.Contains(err.Error(), "must be password or oauth2") {
		t.Errorf("auth kerberos: %v", err)
	}
}

// TestOAuth2_NoRefreshToken: without a refresh token the config does not
// pass (check-config says so too) and the adapter does not build; both say
// how to get one.
func TestOAuth2_NoRefreshToken(t *testing.T) {
	w := newOAuthWorld(t)
	w.refresh = `""`
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(w.yaml(w.oauth.TokenURL)), &node); err != nil {
		t.Fatal(err)
	}
	_, err := adapters.Build(email.Name, "omnigate.yaml", &node, w.env.Deps)
	if err == nil || !strings.Contains(err.Error(), "omnigate email login") {
		t.Errorf("build: %v, want the way to a refresh token", err)
	}
}

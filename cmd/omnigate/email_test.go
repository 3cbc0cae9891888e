package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
)

// oauthMail is a mailbox on IMAP and SMTP servers that take only tokens of
// its fake authorization server.
type oauthMail struct {
	oauth *mailtest.OAuthServer
	imap  *mailtest.IMAPServer
	smtp  *mailtest.SMTPServer
}

func newOAuthMail(t *testing.T) *oauthMail {
	m := &oauthMail{oauth: mailtest.NewOAuth(t), imap: mailtest.NewIMAP(t, nil), smtp: mailtest.NewSMTP(t)}
	m.imap.RequireOAuth(m.oauth)
	m.smtp.RequireOAuth(m.oauth)
	return m
}

// section is channels.email for the mailbox, indented by indent spaces,
// with extra lines in oauth2.
func (m *oauthMail) section(indent int, extra ...string) string {
	lines := []string{
		"email:",
		"  address: " + mailtest.Address,
		"  auth: oauth2",
		"  oauth2:",
		"    provider: custom",
		"    client_id: " + mailtest.ClientID,
		"    client_secret: " + mailtest.ClientSecret,
		"    auth_url: " + m.oauth.AuthURL,
		"    token_url: " + m.oauth.TokenURL,
		"    device_auth_url: " + m.oauth.DeviceAuthURL,
		"    scopes: [" + strings.Join(m.oauth.Scopes, ", ") + "]",
	}
	for _, e := range extra {
		lines = append(lines, "    "+e)
	}
	lines = append(lines,
		"  imap:", "    host: "+m.imap.Host, fmt.Sprintf("    port: %d", m.imap.Port), "    security: none", "    initial_scan: all",
		"  smtp:", "    host: "+m.smtp.Host, fmt.Sprintf("    port: %d", m.smtp.Port), "    security: none")
	pad := strings.Repeat(" ", indent)
	return pad + strings.Join(lines, "\n"+pad) + "\n"
}

// login runs omnigate email login with args on a config of the mailbox; act
// is called with each line it prints, until it ends. It returns the whole
// output and the token file.
func (m *oauthMail) login(t *testing.T, act func(line string), args ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte("data_dir: "+filepath.Join(dir, "data")+"\nchannels:\n"+m.section(2)), 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"email", "login", "--config", file}, args...), pw, &stderr)
		pw.Close()
		done <- err
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		act(sc.Text())
	}
	if err := <-done; err != nil {
		t.Fatalf("email login: %v\n%s%s", err, out.String(), stderr.String())
	}
	path := filepath.Join(dir, "data", refreshTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no token file: %v\n%s", err, out.String())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(out.String(), "refresh_token: ${file:"+path+"}") {
		t.Errorf("the output does not say what to put in the config:\n%s", out.String())
	}
	return out.String(), path
}

var userCode = regexp.MustCompile(`enter the code ([0-9A-F]+)`)

// TestEmailLogin_DeviceThenServe: omnigate email login prints the device
// code, gets the refresh token once the user approved, and writes it 0600;
// omnigate serve with the config it prints then reads the customer's mail
// over IMAP and sends the agent's answer over SMTP, both with XOAUTH2, on
// servers that take nothing else.
func TestEmailLogin_DeviceThenServe(t *testing.T) {
	m := newOAuthMail(t)
	out, path := m.login(t, func(line string) {
		if c := userCode.FindStringSubmatch(line); c != nil && !m.oauth.Approve(c[1]) {
			t.Errorf("no device login shows code %s", c[1])
		}
	})
	if !strings.Contains(out, m.oauth.TokenURL[:strings.LastIndex(m.oauth.TokenURL, "/")]+"/devicelogin") {
		t.Errorf("no verification URL in:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(string(b)); !slices.Contains(m.oauth.Issued(), tok) {
		t.Errorf("the token file holds %.6s..., not a token the provider issued", tok)
	}
	for _, tok := range m.oauth.Issued() {
		if strings.Contains(out, tok) {
			t.Errorf("token %.6s... was printed", tok)
		}
	}

	g := startLoop(t, "http", nil, m.section(2, "refresh_token: ${file:"+path+"}"))
	g.imap, g.smtp = m.imap, m.smtp
	cust := g.customer(t, "email")
	cust.write(t, "Where is my order 7781?")
	root := g.waitRoot(t, slackfake.ChannelSupport)
	g.waitInThread(t, root.TS, "Where is my order 7781?")
	g.agentSays(t, root.Channel, root.TS, agentText)
	if got := cust.waitReply(t); got != cust.want {
		t.Errorf("the customer received %q, want %q", got, cust.want)
	}
	if auths := m.smtp.Auths(); len(auths) != 1 || auths[0] != "XOAUTH2:"+mailtest.Address {
		t.Errorf("SMTP logins %q", auths)
	}
	if auths := m.imap.Auths(); len(auths) == 0 || auths[0] != "XOAUTH2:"+mailtest.Address {
		t.Errorf("IMAP logins %q", auths)
	}
}

// TestEmailLogin_Browser: with --flow browser, email login prints the
// authorization URL (PKCE, offline access) and takes the code on its
// loopback redirect, as after the user's consent in a browser.
func TestEmailLogin_Browser(t *testing.T) {
	m := newOAuthMail(t)
	var wg sync.WaitGroup
	out, path := m.login(t, func(line string) {
		u := strings.TrimSpace(line)
		if !strings.HasPrefix(u, m.oauth.AuthURL+"?") {
			return
		}
		for _, want := range []string{"code_challenge_method=S256", "access_type=offline", "login_hint=support%40example.com"} {
			if !strings.Contains(u, want) {
				t.Errorf("the authorization URL lacks %s: %s", want, u)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The browser: the provider redirects it to omnigate's loopback address.
			resp, err := http.Get(u)
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Signed in") {
				t.Errorf("the page after consent: %d %s", resp.StatusCode, body)
			}
		}()
	}, "--flow", "browser")
	wg.Wait()
	if !strings.Contains(out, "open this URL in a browser") {
		t.Errorf("output:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "rt") {
		t.Errorf("token file %q, %v", b, err)
	}
}

// TestEmailLogin_NeedsOAuth2Config: a config with password auth is refused
// with what to set.
func TestEmailLogin_NeedsOAuth2Config(t *testing.T) {
	file := filepath.Join(t.TempDir(), "omnigate.yaml")
	src := "channels:\n  email:\n    address: support@example.com\n    imap:\n      host: imap.example.com\n      password: p\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"email", "login", "--config", file}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "set auth: oauth2") {
		t.Errorf("login with password auth: %v", err)
	}
}

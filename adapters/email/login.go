package email

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// Login flows (LoginOptions.Flow).
const (
	// FlowDevice is the device authorization grant (RFC 8628): omnigate
	// prints a URL and a code, the user opens the URL on any device and
	// enters the code. Microsoft's identity platform grants the mail scopes
	// this way; Google's does not.
	FlowDevice = "device"
	// FlowBrowser is the authorization code grant with PKCE and a loopback
	// redirect (RFC 8252): omnigate prints a URL to open in a browser on the
	// same machine and receives the answer on 127.0.0.1.
	FlowBrowser = "browser"
)

// LoginOptions are the choices of Login.
type LoginOptions struct {
	// Flow is FlowDevice or FlowBrowser; "" is FlowBrowser for provider
	// google (whose device flow does not grant https://mail.google.com/) and
	// FlowDevice otherwise.
	Flow string
	// Out receives the instructions for the user: the URL, the code.
	Out io.Writer
	// ListenAddr is where the browser flow waits for the redirect;
	// "" is 127.0.0.1 on a free port.
	ListenAddr string
}

// Login obtains a refresh token for the mailbox of cfg (auth: oauth2) by
// having its owner sign in, and returns it. It blocks until the user has
// signed in, refused, or ctx is done. The token is a secret: the caller
// stores it, it is never logged.
func Login(ctx context.Context, cfg Config, opts LoginOptions) (string, error) {
	if cfg.Auth != AuthOAuth2 {
		return "", fmt.Errorf("email login: channels.email.auth is %q: set auth: oauth2 and the oauth2 section first", cfg.Auth)
	}
	flow := opts.Flow
	if flow == "" {
		flow = FlowDevice
		if cfg.OAuth2.Provider == ProviderGoogle {
			flow = FlowBrowser
		}
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	var tok *oauth2.Token
	var err error
	switch flow {
	case FlowDevice:
		tok, err = deviceLogin(ctx, cfg, out)
	case FlowBrowser:
		tok, err = browserLogin(ctx, cfg, out, opts.ListenAddr)
	default:
		return "", fmt.Errorf("email login: flow %q: want %s or %s", flow, FlowDevice, FlowBrowser)
	}
	if err != nil {
		return "", err
	}
	if tok.RefreshToken == "" {
		return "", errors.New("email login: signed in, but the provider issued no refresh token: for Microsoft keep offline_access in oauth2.scopes; for Google revoke the app's access at myaccount.google.com/permissions and sign in again")
	}
	return tok.RefreshToken, nil
}

// deviceLogin runs the device authorization grant.
func deviceLogin(ctx context.Context, cfg Config, out io.Writer) (*oauth2.Token, error) {
	oc := &cfg.OAuth2
	if oc.DeviceAuthURL == "" {
		return nil, errors.New("email login: oauth2.device_auth_url is not set: set it, or use --flow browser")
	}
	conf := oc.oauth2Config("")
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("email login: device authorization at %s: %w", oc.DeviceAuthURL, err)
	}
	fmt.Fprintf(out, "To sign in as %s, open %s in a browser and enter the code %s\n", cfg.IMAP.Username, da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(or open %s)\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(out, "The code expires at %s. Waiting...\n", da.Expiry.Local().Format(time.Kitchen))
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("email login: %w", describeGrantError(err))
	}
	return tok, nil
}

// browserLogin runs the authorization code grant with PKCE, receiving the
// code on a loopback redirect.
func browserLogin(ctx context.Context, cfg Config, out io.Writer, addr string) (*oauth2.Token, error) {
	oc := &cfg.OAuth2
	if oc.AuthURL == "" {
		return nil, errors.New("email login: oauth2.auth_url is not set: set it, or use --flow device")
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !isLoopback(host) {
		return nil, fmt.Errorf("email login: listen address %q: want a loopback address like 127.0.0.1:8765 (providers redirect only there)", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("email login: listen for the redirect on %s: %w", addr, err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	conf := oc.oauth2Config(redirect)
	verifier := oauth2.GenerateVerifier()
	state := randomState()
	url := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
		// Google issues a refresh token only offline, and again only with
		// consent; Microsoft goes by the offline_access scope.
		oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"),
		oauth2.SetAuthURLParam("login_hint", cfg.IMAP.Username))
	fmt.Fprintf(out, "To sign in as %s, open this URL in a browser on this machine:\n\n  %s\n\nWaiting for the answer on %s ...\n", cfg.IMAP.Username, url, redirect)

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			http.Error(w, "omnigate: this answer is not for the login in progress", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("email login: the provider refused: %s: %s", printable(q.Get("error"), 64), printable(q.Get("error_description"), 300))
		case q.Get("code") == "":
			res.err = errors.New("email login: the provider's answer has no code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Signed in: you can close this tab and go back to the terminal."
		if res.err != nil {
			msg = res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>omnigate</title><p>%s</p>\n", html.EscapeString(msg))
		select {
		case got <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var res result
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("email login: waiting for the browser: %w", ctx.Err())
	case res = <-got:
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := conf.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("email login: exchange the code: %w", describeGrantError(err))
	}
	return tok, nil
}

// describeGrantError is err with the token endpoint's error code and
// description, without the response body golang.org/x/oauth2 puts in it.
func describeGrantError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return fmt.Errorf("the token endpoint refused: %s: %s", printable(re.ErrorCode, 64), printable(re.ErrorDescription, 300))
	}
	return err
}

// randomState is the unguessable state of one browser login.
func randomState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

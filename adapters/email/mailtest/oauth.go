package mailtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
)

// The OAuth 2.0 client the fake authorization server knows.
const (
	// ClientID and ClientSecret are the only client credentials OAuthServer
	// accepts.
	ClientID     = "omnigate-test-client"
	ClientSecret = "client-secret"
)

// OAuthServer is a fake OAuth 2.0 authorization server on an httptest
// server, speaking the token endpoint of RFC 6749 as the Microsoft identity
// platform does: the refresh_token grant (which, like Microsoft, wants the
// scopes again and rotates the refresh token: the old one stops working, as
// the strictest servers do), the device authorization grant (RFC 8628) and
// the authorization code grant with PKCE (RFC 7636), whose authorization
// endpoint approves at once and redirects. Errors are RFC 6749 JSON. Its
// access tokens are what IMAPServer.RequireOAuth and SMTPServer.RequireOAuth
// check. Its methods are safe for concurrent use.
type OAuthServer struct {
	// AuthURL, TokenURL and DeviceAuthURL are the endpoints, for
	// channels.email.oauth2 with provider custom (or as overrides).
	AuthURL, TokenURL, DeviceAuthURL string
	// Scopes are the scopes it grants; a request must ask for all of them.
	Scopes []string

	srv *httptest.Server

	mu        sync.Mutex
	seq       int
	refresh   map[string]bool      // refresh tokens that work
	access    map[string]time.Time // access tokens that work, with their expiry
	expiresIn time.Duration
	rotate    bool
	devices   map[string]*deviceGrant // by device code
	codes     map[string]codeGrant    // authorization codes not yet used
	refreshes int
	rejected  []string // error codes of refused token requests
	issued    []string // every token and code handed out
}

type deviceGrant struct {
	userCode string
	approved bool
	used     bool
}

type codeGrant struct {
	redirect, challenge string
}

// NewOAuth starts the fake authorization server, closed when the test ends.
// Access tokens last an hour unless SetExpiresIn says otherwise; refresh
// tokens rotate unless SetRotate(false).
func NewOAuth(t testing.TB) *OAuthServer {
	t.Helper()
	o := &OAuthServer{
		Scopes:  []string{"https://mail.test/IMAP", "https://mail.test/SMTP", "offline_access"},
		refresh: map[string]bool{}, access: map[string]time.Time{},
		devices: map[string]*deviceGrant{}, codes: map[string]codeGrant{},
		expiresIn: time.Hour, rotate: true,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", o.handleToken)
	mux.HandleFunc("POST /devicecode", o.handleDevice)
	mux.HandleFunc("GET /authorize", o.handleAuthorize)
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	o.AuthURL, o.TokenURL, o.DeviceAuthURL = o.srv.URL+"/authorize", o.srv.URL+"/token", o.srv.URL+"/devicecode"
	return o
}

// Grant issues a refresh token as a completed login would, for a config's
// oauth2.refresh_token.
func (o *OAuthServer) Grant() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	rt := o.newToken("rt")
	o.refresh[rt] = true
	return rt
}

// SetExpiresIn makes the access tokens issued from now on last d.
func (o *OAuthServer) SetExpiresIn(d time.Duration) {
	o.mu.Lock()
	o.expiresIn = d
	o.mu.Unlock()
}

// SetRotate says whether a refresh issues a new refresh token (and retires
// the one used), as Microsoft does, or keeps it, as Google does.
func (o *OAuthServer) SetRotate(on bool) {
	o.mu.Lock()
	o.rotate = on
	o.mu.Unlock()
}

// ExpireAccessTokens makes every access token issued so far invalid, as if
// it had expired or been revoked early, while refresh tokens still work.
func (o *OAuthServer) ExpireAccessTokens() {
	o.mu.Lock()
	clear(o.access)
	o.mu.Unlock()
}

// Revoke makes every refresh and access token invalid, as when the user's
// consent is withdrawn or the password changed: refreshes get invalid_grant.
func (o *OAuthServer) Revoke() {
	o.mu.Lock()
	clear(o.access)
	clear(o.refresh)
	o.mu.Unlock()
}

// Valid reports whether token is a live access token.
func (o *OAuthServer) Valid(token string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	exp, ok := o.access[token]
	return ok && time.Now().Before(exp)
}

// Refreshes is how many refresh_token grants succeeded.
func (o *OAuthServer) Refreshes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshes
}

// Refused are the error codes of the token requests refused so far, like
// "invalid_grant", in order (authorization_pending excluded).
func (o *OAuthServer) Refused() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rejected)
}

// Issued returns every token and code handed out so far (refresh and
// access tokens, device and authorization codes), for a test that checks
// none was logged or printed.
func (o *OAuthServer) Issued() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.issued)
}

// Approve approves the device login showing userCode, as the user does on
// the verification page; it reports whether there was one.
func (o *OAuthServer) Approve(userCode string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range o.devices {
		if d.userCode == userCode && !d.used {
			d.approved = true
			return true
		}
	}
	return false
}

// newToken is a fresh random token with prefix. Call with o.mu held.
func (o *OAuthServer) newToken(prefix string) string {
	o.seq++
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	t := fmt.Sprintf("%s%d.%s", prefix, o.seq, base64.RawURLEncoding.EncodeToString(b))
	o.issued = append(o.issued, t)
	return t
}

// oauthError answers an RFC 6749 error.
func (o *OAuthServer) oauthError(w http.ResponseWriter, status int, code, desc string) {
	if code != "authorization_pending" {
		o.mu.Lock()
		o.rejected = append(o.rejected, code)
		o.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// client checks the client credentials of r (form body or Basic auth).
func (o *OAuthServer) client(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == ClientID && secret == ClientSecret
}

// scopesOK reports whether scope (space-separated) asks for every granted
// scope.
func (o *OAuthServer) scopesOK(scope string) bool {
	asked := strings.Fields(scope)
	for _, s := range o.Scopes {
		if !slices.Contains(asked, s) {
			return false
		}
	}
	return true
}

// issue is the answer with a new access token and, unless keep is set, a
// new refresh token. Call with o.mu held.
func (o *OAuthServer) issue(keep string) map[string]any {
	at := o.newToken("at")
	o.access[at] = time.Now().Add(o.expiresIn)
	resp := map[string]any{"token_type": "Bearer", "access_token": at, "expires_in": int(o.expiresIn / time.Second),
		"scope": strings.Join(o.Scopes, " ")}
	if keep == "" {
		rt := o.newToken("rt")
		o.refresh[rt] = true
		resp["refresh_token"] = rt
	}
	return resp
}

func (o *OAuthServer) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if !o.client(r) {
		o.oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	resp, code, desc := o.grant(r.PostForm)
	if code != "" {
		o.oauthError(w, http.StatusBadRequest, code, desc)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// grant runs the grant of the token request f: the answer, or an error code
// and description.
func (o *OAuthServer) grant(f url.Values) (resp map[string]any, code, desc string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch f.Get("grant_type") {
	case "refresh_token":
		rt := f.Get("refresh_token")
		if !o.refresh[rt] {
			return nil, "invalid_grant", "AADSTS70000: The provided grant has expired due to it being revoked."
		}
		if !o.scopesOK(f.Get("scope")) {
			return nil, "invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
		}
		o.refreshes++
		if o.rotate {
			delete(o.refresh, rt)
			return o.issue(""), "", ""
		}
		return o.issue(rt), "", ""
	case "urn:ietf:params:oauth:grant-type:device_code":
		d := o.devices[f.Get("device_code")]
		switch {
		case d == nil || d.used:
			return nil, "invalid_grant", "unknown device code"
		case !d.approved:
			return nil, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending."
		}
		d.used = true
		return o.issue(""), "", ""
	case "authorization_code":
		c, ok := o.codes[f.Get("code")]
		delete(o.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok || c.redirect != f.Get("redirect_uri"):
			return nil, "invalid_grant", "unknown code or another redirect_uri"
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			return nil, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request."
		}
		return o.issue(""), "", ""
	}
	return nil, "unsupported_grant_type", "grant_type " + f.Get("grant_type")
}

func (o *OAuthServer) handleDevice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != ClientID {
		o.oauthError(w, http.StatusBadRequest, "invalid_client", "unknown client_id")
		return
	}
	if !o.scopesOK(r.PostForm.Get("scope")) {
		o.oauthError(w, http.StatusBadRequest, "invalid_scope", "the scopes are not all there")
		return
	}
	o.mu.Lock()
	dc := o.newToken("dc")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	uc := strings.ToUpper(hex.EncodeToString(b))
	o.devices[dc] = &deviceGrant{userCode: uc}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code": dc, "user_code": uc, "verification_uri": o.srv.URL + "/devicelogin",
		"expires_in": 900, "interval": 1,
		"message": "To sign in, use a web browser to open the page " + o.srv.URL + "/devicelogin and enter the code " + uc + " to authenticate.",
	})
}

// handleAuthorize approves at once: it redirects to the loopback
// redirect_uri with a code, as the provider does after the user consents.
func (o *OAuthServer) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1":
		http.Error(w, "redirect_uri must be a loopback address", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "response_type code with an S256 code_challenge is required", http.StatusBadRequest)
		return
	case !o.scopesOK(q.Get("scope")):
		http.Error(w, "the scopes are not all there", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	code := o.newToken("code")
	o.codes[code] = codeGrant{redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge")}
	o.mu.Unlock()
	v := redirect.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// ErrMalformedBearer is ParseBearer's error for a response that is not the
// mechanism's format.
var ErrMalformedBearer = errors.New("mailtest: malformed bearer response")

// ParseBearer reads the initial client response of email.MechXOAuth2
// ("user=" user "\x01auth=Bearer " token "\x01\x01") or
// email.MechOAuthBearer ("n,a=" user "," ["\x01host=" ...] "\x01auth=Bearer "
// token "\x01\x01") as a server does.
func ParseBearer(mech string, resp []byte) (user, token string, err error) {
	var kvs []byte
	switch mech {
	case email.MechXOAuth2:
		kvs = resp
	case email.MechOAuthBearer:
		gs2, rest, ok := bytes.Cut(resp, []byte{','})
		if !ok || !bytes.Equal(gs2, []byte("n")) && !bytes.Equal(gs2, []byte("y")) {
			return "", "", ErrMalformedBearer
		}
		authz, rest, ok := bytes.Cut(rest, []byte{','})
		if !ok || len(authz) > 0 && !bytes.HasPrefix(authz, []byte("a=")) {
			return "", "", ErrMalformedBearer
		}
		user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(string(bytes.TrimPrefix(authz, []byte("a="))))
		kvs = rest
		if !bytes.HasPrefix(kvs, []byte{1}) {
			return "", "", ErrMalformedBearer
		}
		kvs = kvs[1:]
	default:
		return "", "", fmt.Errorf("mailtest: mechanism %q: %w", mech, ErrMalformedBearer)
	}
	body, ok := bytes.CutSuffix(kvs, []byte{1, 1})
	if !ok {
		return "", "", ErrMalformedBearer
	}
	for _, kv := range bytes.Split(body, []byte{1}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok {
			return "", "", ErrMalformedBearer
		}
		switch string(k) {
		case "user":
			if mech != email.MechXOAuth2 {
				return "", "", ErrMalformedBearer
			}
			user = string(v)
		case "auth":
			scheme, t, ok := strings.Cut(string(v), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || t == "" {
				return "", "", ErrMalformedBearer
			}
			token = t
		case "host", "port":
		default:
			return "", "", ErrMalformedBearer
		}
	}
	if user == "" || token == "" {
		return "", "", ErrMalformedBearer
	}
	return user, token, nil
}

// Refusal is how a server refuses a token.
type Refusal int

const (
	// RefuseLikeGoogle sends the JSON error challenge, then, after the
	// client's answer, fails: IMAP NO [AUTHENTICATIONFAILED], SMTP 535 5.7.8.
	// The default.
	RefuseLikeGoogle Refusal = iota
	// RefuseLikeMicrosoft fails at once, without a challenge: IMAP "NO
	// AUTHENTICATE failed.", SMTP "535 5.7.3 Authentication unsuccessful".
	RefuseLikeMicrosoft
)

// bearerServer is the server side of XOAUTH2 and OAUTHBEARER: it takes the
// token if check does, else sends the error challenge and, after the
// client's answer to it, fails with refusal; with immediate it fails at
// once.
type bearerServer struct {
	mech      string
	scope     string
	check     func(user, token string) error
	refusal   error
	immediate bool
	failed    bool
}

func (b *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed {
		// The client's answer to the error challenge: "" or "\x01".
		return nil, true, b.refusal
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	user, token, err := ParseBearer(b.mech, resp)
	if err == nil {
		err = b.check(user, token)
		if err == nil {
			return nil, true, nil
		}
	}
	if b.immediate {
		return nil, true, b.refusal
	}
	b.failed = true
	status := "401"
	if b.mech == email.MechOAuthBearer {
		status = "invalid_token"
	}
	challenge, _ := json.Marshal(map[string]string{"status": status, "schemes": "Bearer", "scope": b.scope})
	return challenge, false, nil
}

// RequireOAuth makes the IMAP server take only XOAUTH2 and OAUTHBEARER (mechs
// narrows them) with a live access token of o for User, from the next
// connection on; LOGIN is refused. A refused token gets Gmail's answer: the
// JSON error challenge, then NO [AUTHENTICATIONFAILED].
func (s *IMAPServer) RequireOAuth(o *OAuthServer, mechs ...string) {
	if len(mechs) == 0 {
		mechs = []string{email.MechXOAuth2, email.MechOAuthBearer}
	}
	s.mu.Lock()
	s.oauth, s.oauthMechs = o, slices.Clone(mechs)
	s.mu.Unlock()
}

// SetRefusal says how the server refuses a token from the next connection
// on.
func (s *IMAPServer) SetRefusal(r Refusal) {
	s.mu.Lock()
	s.refusal = r
	s.mu.Unlock()
}

// Auths returns "<mechanism>:<user>" of every successful AUTHENTICATE so far.
func (s *IMAPServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// oauthSession is a session of an IMAPServer that requires OAuth.
type oauthSession struct {
	pushingSession
	s       *IMAPServer
	o       *OAuthServer
	mechs   []string
	refusal Refusal
}

func (sn *oauthSession) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "LOGIN is disabled: use AUTHENTICATE XOAUTH2 or OAUTHBEARER"}
}

func (sn *oauthSession) AuthenticateMechanisms() []string { return sn.mechs }

func (sn *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	if !slices.Contains(sn.mechs, mech) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
	}
	return &bearerServer{mech: mech, scope: sn.o.Scopes[0],
		check: func(user, token string) error {
			if user != sn.s.User || !sn.o.Valid(token) {
				return errors.New("invalid token")
			}
			// The memory backend's session logs in with the password.
			if err := sn.pushingSession.Login(sn.s.User, sn.s.Password); err != nil {
				return err
			}
			sn.s.mu.Lock()
			sn.s.auths = append(sn.s.auths, mech+":"+user)
			sn.s.mu.Unlock()
			return nil
		},
		refusal:   imapRefusal(sn.refusal),
		immediate: sn.refusal == RefuseLikeMicrosoft,
	}, nil
}

// imapRefusal is the final answer to a refused token.
func imapRefusal(r Refusal) error {
	if r == RefuseLikeMicrosoft {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}
}

// RequireOAuth makes the SMTP server offer and take only XOAUTH2 and
// OAUTHBEARER (mechs narrows them) with a live access token of o for User;
// PLAIN and LOGIN are refused. A refused token gets Gmail's answer: 334 with
// the JSON error, then 535 5.7.8.
func (s *SMTPServer) RequireOAuth(o *OAuthServer, mechs ...string) {
	if len(mechs) == 0 {
		mechs = []string{email.MechXOAuth2, email.MechOAuthBearer}
	}
	s.mu.Lock()
	s.oauth, s.mech = o, slices.Clone(mechs)
	s.mu.Unlock()
}

// SetRefusal says how the server refuses a token from now on.
func (s *SMTPServer) SetRefusal(r Refusal) {
	s.mu.Lock()
	s.refusal = r
	s.mu.Unlock()
}

// bearerAuth is the SMTP server's side of mech with o.
func (ss *smtpSession) bearerAuth(o *OAuthServer, mech string) sasl.Server {
	ss.s.mu.Lock()
	r := ss.s.refusal
	ss.s.mu.Unlock()
	refusal := &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted."}
	if r == RefuseLikeMicrosoft {
		refusal = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
	}
	return &bearerServer{mech: mech, scope: o.Scopes[0], refusal: refusal, immediate: r == RefuseLikeMicrosoft,
		check: func(user, token string) error {
			if user != ss.s.User || !o.Valid(token) {
				return errors.New("invalid token")
			}
			ss.authed = true
			ss.s.mu.Lock()
			ss.s.auth = append(ss.s.auth, mech+":"+user)
			ss.s.mu.Unlock()
			return nil
		},
	}
}

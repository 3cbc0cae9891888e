package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/microsoft"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// OAuth 2.0 providers (OAuth2Config.Provider).
const (
	// ProviderMicrosoft is Microsoft 365 and Outlook.com: the Microsoft
	// identity platform (v2.0 endpoints of the tenant).
	ProviderMicrosoft = "microsoft"
	// ProviderGoogle is Google Workspace and Gmail.
	ProviderGoogle = "google"
	// ProviderCustom is any other authorization server: auth_url, token_url
	// and device_auth_url say where it is.
	ProviderCustom = "custom"
)

// Google's OAuth 2.0 endpoints ("OAuth 2.0 for Mobile & Desktop Apps" and
// "for TV and Limited-Input Device Applications").
const (
	googleAuthURL       = "https://accounts.google.com/o/oauth2/v2/auth"
	googleTokenURL      = "https://oauth2.googleapis.com/token"
	googleDeviceAuthURL = "https://oauth2.googleapis.com/device/code"
)

// Default scopes per provider: IMAP and SMTP access, and a refresh token.
var (
	// MicrosoftScopes are Exchange Online's IMAP and SMTP AUTH permissions
	// and offline_access, without which no refresh token is issued.
	MicrosoftScopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"}
	// GoogleScopes is Gmail's one scope for IMAP, POP and SMTP.
	GoogleScopes = []string{"https://mail.google.com/"}
)

const (
	// earlyRefresh is how long before its expiry an access token is
	// replaced: a session started with it must not see it expire mid-login.
	earlyRefresh = 5 * time.Minute
	// oauthBucket holds the refreshed tokens of the mailbox, so that a
	// rotated refresh token survives a restart and is shared by replicas.
	oauthBucket = "email_oauth"
	// maxTokenResponse bounds what is read of a token endpoint's answer.
	maxTokenResponse = 1 << 20
)

// ErrRefreshRefused is returned, wrapped, when the token endpoint refuses
// the refresh token (invalid_grant: revoked, expired, the password changed,
// consent withdrawn). Only a new login fixes it.
var ErrRefreshRefused = errors.New("oauth2: the refresh token was refused")

// OAuth2Config is channels.email.oauth2: the OAuth 2.0 client that obtains
// access tokens for IMAP and SMTP, with auth: oauth2.
type OAuth2Config struct {
	Provider      string        `yaml:"provider" doc:"microsoft (Microsoft 365, Outlook.com), google (Google Workspace, Gmail) or custom (set auth_url, token_url and device_auth_url). Required with auth: oauth2."`
	ClientID      string        `yaml:"client_id" doc:"The application (client) id of the app registration (Microsoft) or OAuth client (Google). Required."`
	ClientSecret  config.Secret `yaml:"client_secret" doc:"The client secret, if the client has one: Google's Desktop app clients do; a Microsoft app with 'Allow public client flows' needs none. Write it as ${env:NAME} or ${file:/path}."`
	Tenant        string        `yaml:"tenant" doc:"Microsoft only: the Directory (tenant) ID from the app registration's overview, or its domain (contoso.onmicrosoft.com); organizations or common for a multi-tenant app. Required with provider microsoft."`
	AuthURL       string        `yaml:"auth_url" default:"the provider's" doc:"Authorization endpoint, for the browser login of omnigate email login. Default: the provider's."`
	TokenURL      string        `yaml:"token_url" default:"the provider's" doc:"Token endpoint, where access tokens are refreshed. Default: the provider's."`
	DeviceAuthURL string        `yaml:"device_auth_url" default:"the provider's" doc:"Device authorization endpoint, for the device-code login of omnigate email login. Default: the provider's."`
	Scopes        []string      `yaml:"scopes" default:"the provider's" doc:"Scopes asked for. Default: microsoft https://outlook.office.com/IMAP.AccessAsUser.All, https://outlook.office.com/SMTP.Send and offline_access; google https://mail.google.com/."`
	RefreshToken  config.Secret `yaml:"refresh_token" doc:"The refresh token that omnigate email login obtained, usually ${file:<data_dir>/email-oauth2-refresh-token} as it prints. Tokens the provider rotates are kept in the store (records email_oauth) and used instead, until this value changes."`
}

// setDefaults fills the provider's endpoints and scopes.
func (c *OAuth2Config) setDefaults() {
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	var ep oauth2.Endpoint
	var scopes []string
	switch c.Provider {
	case ProviderMicrosoft:
		if c.Tenant != "" {
			ep = microsoft.AzureADEndpoint(url.PathEscape(c.Tenant))
		}
		scopes = MicrosoftScopes
	case ProviderGoogle:
		ep = oauth2.Endpoint{AuthURL: googleAuthURL, TokenURL: googleTokenURL, DeviceAuthURL: googleDeviceAuthURL}
		scopes = GoogleScopes
	}
	if c.AuthURL == "" {
		c.AuthURL = ep.AuthURL
	}
	if c.TokenURL == "" {
		c.TokenURL = ep.TokenURL
	}
	if c.DeviceAuthURL == "" {
		c.DeviceAuthURL = ep.DeviceAuthURL
	}
	if len(c.Scopes) == 0 {
		c.Scopes = append([]string(nil), scopes...)
	}
}

// MsgNoRefreshToken is the message of the problem at oauth2.refresh_token
// when it is empty: the one problem omnigate email login, which obtains it,
// passes over.
const MsgNoRefreshToken = "required: run omnigate email login --config FILE once; it writes the token to a file and prints the line to put here"

// validate reports the problems of the section, with auth: oauth2.
func (c *OAuth2Config) validate(p *config.Problems) {
	if c.RefreshToken == "" {
		p.Add("oauth2.refresh_token", MsgNoRefreshToken)
	}
	switch c.Provider {
	case ProviderMicrosoft:
		if c.Tenant == "" {
			p.Add("oauth2.tenant", "required with provider microsoft: the Directory (tenant) ID on the app registration's overview page, or organizations for a multi-tenant app")
		}
	case ProviderGoogle:
		if c.Tenant != "" {
			p.Add("oauth2.tenant", "only for provider microsoft: remove it")
		}
	case ProviderCustom:
		if c.TokenURL == "" {
			p.Add("oauth2.token_url", "required with provider custom")
		}
	case "":
		p.Add("oauth2.provider", "required with auth: oauth2: microsoft, google or custom")
	default:
		p.Add("oauth2.provider", "must be microsoft, google or custom, got %q", c.Provider)
	}
	if strings.TrimSpace(c.ClientID) == "" {
		p.Add("oauth2.client_id", "required: the application (client) id of the app registration or OAuth client")
	}
	for key, v := range map[string]string{"auth_url": c.AuthURL, "token_url": c.TokenURL, "device_auth_url": c.DeviceAuthURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			p.Add("oauth2."+key, "must be an https URL (http only on a loopback address), got %q", v)
		}
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.Add(fmt.Sprintf("oauth2.scopes[%d]", i), "must be one scope without spaces, got %q", s)
		}
	}
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// oauth2Config is c as golang.org/x/oauth2 takes it, for the logins of
// omnigate email login. Client credentials go in the form body, which both
// providers accept.
func (c *OAuth2Config) oauth2Config(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret.Value(),
		Endpoint: oauth2.Endpoint{
			AuthURL: c.AuthURL, TokenURL: c.TokenURL, DeviceAuthURL: c.DeviceAuthURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURL,
		Scopes:      c.Scopes,
	}
}

// oauthRecord is what the store keeps of the mailbox's tokens, under the
// tokenSource's key in the records "email_oauth". Its writer is the adapter
// (any replica, by compare-and-set).
type oauthRecord struct {
	// Seed is the fingerprint of the configured refresh token this one
	// descends from: when the configured one changes (a new login), the
	// record is outdated.
	Seed string `json:"seed"`
	// RefreshToken is the newest refresh token.
	RefreshToken string `json:"refresh_token"`
	// AccessToken and Expiry are the last access token and when it expires,
	// shared so that replicas do not each refresh.
	AccessToken string    `json:"access_token,omitempty"`
	Expiry      time.Time `json:"expiry,omitzero"`
	// Updated is when it was written.
	Updated time.Time `json:"updated"`
}

// tokenSource hands out access tokens for one mailbox: the current one while
// it is more than earlyRefresh from its expiry, else a new one from the token
// endpoint. A rotated refresh token is written to the store before it is
// used. Its methods are safe for concurrent use; one refresh runs at a time.
type tokenSource struct {
	cfg     OAuth2Config
	user    string
	records *store.Records
	key     string
	seed    string
	http    *http.Client
	log     *slog.Logger

	mu       sync.Mutex
	refresh  string       // refresh token in use; "" until loaded
	updated  time.Time    // when refresh was obtained, to compare with the store's
	access   oauth2.Token // current access token, zero when none
	rejected string       // access token a server refused, never handed out again
}

// newTokenSource is the token source of user's mailbox with the configured
// client and refresh token; it keeps its state in st.
func newTokenSource(cfg OAuth2Config, user string, st *store.Store, timeout time.Duration, log *slog.Logger) *tokenSource {
	seed := sha256.Sum256([]byte(cfg.RefreshToken.Value()))
	key := sha256.Sum256([]byte(cfg.TokenURL + "\x00" + cfg.ClientID + "\x00" + strings.ToLower(user)))
	return &tokenSource{
		cfg: cfg, user: user,
		records: st.Records(oauthBucket),
		key:     hex.EncodeToString(key[:16]),
		seed:    hex.EncodeToString(seed[:]),
		http:    &http.Client{Timeout: timeout},
		log:     log,
	}
}

// Token returns an access token valid for at least earlyRefresh, refreshing
// it if needed. A refused refresh token is ErrRefreshRefused.
func (s *tokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usable(s.access) {
		return s.access.AccessToken, nil
	}
	var rec oauthRecord
	_, err := s.records.Get(ctx, s.key, &rec)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", fmt.Errorf("oauth2: read the stored token: %w", err)
	case rec.Seed == s.seed && rec.RefreshToken != "" && (s.refresh == "" || rec.Updated.After(s.updated)):
		// Another replica, or this one before a restart, refreshed it.
		s.refresh, s.updated = rec.RefreshToken, rec.Updated
		if t := (oauth2.Token{AccessToken: rec.AccessToken, Expiry: rec.Expiry}); s.usable(t) {
			s.access = t
			return t.AccessToken, nil
		}
	}
	if s.refresh == "" {
		s.refresh = s.cfg.RefreshToken.Value()
	}
	tok, err := s.refreshGrant(ctx, s.refresh)
	if err != nil {
		return "", err
	}
	rotated := tok.RefreshToken != "" && tok.RefreshToken != s.refresh
	if tok.RefreshToken == "" {
		tok.RefreshToken = s.refresh
	}
	next := oauthRecord{Seed: s.seed, RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken, Expiry: tok.Expiry, Updated: now()}
	var cur oauthRecord
	if _, err := s.records.Update(ctx, s.key, &cur, 0, func(bool) error {
		cur = next
		return nil
	}); err != nil {
		if rotated {
			s.log.Error("the provider rotated the refresh token and it could not be stored: it is kept in memory only, and after a restart omnigate email login may be needed", "err", err)
		} else {
			s.log.Warn("could not store the refreshed access token", "err", err)
		}
	}
	s.refresh, s.updated = tok.RefreshToken, next.Updated
	s.access = oauth2.Token{AccessToken: tok.AccessToken, Expiry: tok.Expiry}
	s.log.Info("oauth2 access token refreshed", "expires", tok.Expiry.Format(time.RFC3339), "refresh_token_rotated", rotated)
	return tok.AccessToken, nil
}

// usable reports whether t can be handed out: not refused by a server and
// not within earlyRefresh of its expiry. Call with s.mu held.
func (s *tokenSource) usable(t oauth2.Token) bool {
	if t.AccessToken == "" || t.AccessToken == s.rejected {
		return false
	}
	return t.Expiry.IsZero() || time.Until(t.Expiry) > earlyRefresh
}

// Reject drops token, which a mail server refused, so that the next Token
// refreshes.
func (s *tokenSource) Reject(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = token
	if s.access.AccessToken == token {
		s.access = oauth2.Token{}
	}
}

// refreshGrant trades refresh for a new access token (RFC 6749 section 6).
// It is written here rather than taken from golang.org/x/oauth2 because that
// sends no scope with a refresh, and the Microsoft identity platform wants
// the scopes again.
func (s *tokenSource) refreshGrant(ctx context.Context, refresh string) (*oauth2.Token, error) {
	if refresh == "" {
		return nil, fmt.Errorf("%w: channels.email.oauth2.refresh_token is empty: run omnigate email login --config FILE and set what it prints", ErrRefreshRefused)
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refresh},
		"client_id":     {s.cfg.ClientID},
	}
	if v := s.cfg.ClientSecret.Value(); v != "" {
		form.Set("client_secret", v)
	}
	if len(s.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(s.cfg.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth2: refresh at %s: %w", s.cfg.TokenURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth2: refresh at %s: %w", s.cfg.TokenURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("oauth2: refresh at %s: read the answer: %w", s.cfg.TokenURL, err)
	}
	tok, err := parseTokenResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body, time.Now())
	if err != nil {
		return nil, fmt.Errorf("oauth2: refresh at %s: %w", s.cfg.TokenURL, err)
	}
	return tok, nil
}

// tokenResponse is a token endpoint's JSON answer, success (RFC 6749
// section 5.1) or error (5.2).
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	Error        string          `json:"error"`
	Description  string          `json:"error_description"`
}

// parseTokenResponse reads a token endpoint's answer to a refresh, received
// at t. A refused grant (invalid_grant, and the client errors that a new
// login with a fixed configuration cures) is ErrRefreshRefused; the
// endpoint's words come along, cut and without control characters.
func parseTokenResponse(status int, contentType string, body []byte, t time.Time) (*oauth2.Token, error) {
	var r tokenResponse
	mt, _, _ := mime.ParseMediaType(contentType)
	jsonErr := json.Unmarshal(body, &r)
	if jsonErr != nil && (status/100 == 2 || mt == "application/json") {
		return nil, fmt.Errorf("HTTP %d: the answer is not a JSON token response: %v", status, jsonErr)
	}
	if status/100 != 2 || r.Error != "" {
		if r.Error == "" {
			return nil, fmt.Errorf("HTTP %d: %s", status, printable(string(body), 200))
		}
		e := fmt.Errorf("HTTP %d: %s: %s", status, printable(r.Error, 64), printable(r.Description, 300))
		switch r.Error {
		case "invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope":
			return nil, fmt.Errorf("%w (%w): run omnigate email login again", ErrRefreshRefused, e)
		}
		return nil, e
	}
	if r.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if r.TokenType != "" && !strings.EqualFold(r.TokenType, "bearer") {
		return nil, fmt.Errorf("token_type %q: want Bearer", printable(r.TokenType, 32))
	}
	tok := &oauth2.Token{AccessToken: r.AccessToken, TokenType: "Bearer", RefreshToken: r.RefreshToken}
	// expires_in is a number; some servers send it as a string.
	if raw := strings.Trim(string(r.ExpiresIn), `"`); raw != "" && raw != "null" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("expires_in %s: want a number of seconds", printable(raw, 32))
		}
		if n > 0 {
			n = min(n, int64(100*365*24*time.Hour/time.Second))
			tok.Expiry = t.Add(time.Duration(n) * time.Second)
		}
	}
	return tok, nil
}

// printable is s without control characters, cut to n bytes, for an error
// message.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		// Control characters (C0, DEL, C1) and format characters such as
		// bidirectional overrides, which could disguise a message.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return core.Truncate(s, n)
}

package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/sign"
)

// Identity is what a site's backend asserts about its signed-in user, for the
// widget (or an app) to present in its hello frame. Sig is the lowercase hex
// HMAC-SHA256, keyed with the site's secret, of the lines
//
//	omnigate-identity-v1
//	<site>
//	<user_id>
//	<email>
//	<phone>
//	<ts>
//
// joined by "\n" (no trailing newline; an absent email or phone is an empty
// line; ts in decimal). SignIdentity computes it.
type Identity struct {
	// UserID is the user's account id on the site; required.
	UserID string `json:"user_id"`
	// Email is the user's verified email address, optional.
	Email string `json:"email,omitempty"`
	// Phone is the user's verified phone number in E.164 (+15551234567), optional.
	Phone string `json:"phone,omitempty"`
	// TS is when the claim was signed, in Unix seconds; it expires after the
	// channel's identity_max_age.
	TS int64 `json:"ts"`
	// Sig is the signature.
	Sig string `json:"sig,omitempty"`
}

// identityVersion starts every signed identity message.
const identityVersion = "omnigate-identity-v1"

// SignIdentity returns id with Sig computed with secret for site: what a site's
// backend, written in Go, puts in its pages. Backends in other languages follow
// the recipe of Identity.
func SignIdentity(secret, site string, id Identity) Identity {
	id.Sig = hex.EncodeToString(sign.SHA256([]byte(secret), identityMessage(site, id)))
	return id
}

// identityMessage is what an identity claim's signature covers.
func identityMessage(site string, id Identity) []byte {
	return []byte(identityVersion + "\n" + site + "\n" + id.UserID + "\n" + id.Email + "\n" + id.Phone + "\n" + strconv.FormatInt(id.TS, 10))
}

// Errors of identity claims and visitor tokens; the protocol's error codes name
// them.
var (
	errIdentityInvalid = errors.New("identity claim is not validly signed")
	errIdentityExpired = errors.New("identity claim expired")
	errTokenInvalid    = errors.New("visitor token is not valid")
	errTokenExpired    = errors.New("visitor token expired")
)

// claimSkew is how far in the future a claim's ts may be: clocks differ.
const claimSkew = 5 * time.Minute

var phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// verifyIdentity checks id against the site's secret and returns it with the
// email's domain lower-cased. A site without a secret accepts no identity.
func verifyIdentity(secret []byte, site string, id Identity, maxAge time.Duration, now time.Time) (Identity, error) {
	if len(secret) == 0 || id.Sig == "" || len(id.Sig) != 2*sha256.Size {
		return Identity{}, errIdentityInvalid
	}
	sig, err := hex.DecodeString(strings.ToLower(id.Sig))
	if err != nil || !sign.Check(sha256.New, secret, sig, identityMessage(site, id)) {
		return Identity{}, errIdentityInvalid
	}
	// Signed, so these are the site's mistakes, not an attacker's: still refused.
	if !cleanString(id.UserID, 256) || id.UserID == "" {
		return Identity{}, errIdentityInvalid
	}
	if id.Email != "" {
		e, ok := normalizeEmail(id.Email)
		if !ok {
			return Identity{}, errIdentityInvalid
		}
		id.Email = e
	}
	if id.Phone != "" && !phoneRE.MatchString(id.Phone) {
		return Identity{}, errIdentityInvalid
	}
	t := time.Unix(id.TS, 0)
	if now.Sub(t) > maxAge || t.Sub(now) > claimSkew {
		return Identity{}, errIdentityExpired
	}
	id.Sig = ""
	return id, nil
}

// normalizeEmail checks the shape of an address and lower-cases its domain, as
// the pipeline does.
func normalizeEmail(s string) (string, bool) {
	local, domain, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok || local == "" || domain == "" || len(s) > 254 || strings.ContainsAny(local+domain, "@ \t\r\n<>,;\"") || !cleanString(s, 254) {
		return "", false
	}
	return local + "@" + strings.ToLower(domain), true
}

// cleanString reports whether s is valid UTF-8 of at most n bytes without
// control characters.
func cleanString(s string, n int) bool {
	return len(s) <= n && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// tokenClaims is the payload of a visitor token.
type tokenClaims struct {
	Channel string `json:"c"`
	Site    string `json:"s"`
	Visitor string `json:"v"`
	User    string `json:"u,omitempty"`
	Email   string `json:"e,omitempty"`
	Phone   string `json:"p,omitempty"`
	Expires int64  `json:"x"`
}

// tokenPrefix starts every visitor token; it names the format.
const tokenPrefix = "v1."

// maxTokenBytes bounds what verifyToken reads.
const maxTokenBytes = 2048

// signToken returns the visitor token of c: "v1.<payload>.<mac>", both parts
// base64url, the MAC an HMAC-SHA256 of "v1.<payload>" with key.
func signToken(key []byte, c tokenClaims) string {
	payload, _ := json.Marshal(c) // strings and an int: cannot fail
	p := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(sign.SHA256(key, []byte(p)))
}

// verifyToken checks a visitor token and returns its claims.
func verifyToken(key []byte, tok string, now time.Time) (tokenClaims, error) {
	if len(tok) > maxTokenBytes || !strings.HasPrefix(tok, tokenPrefix) {
		return tokenClaims{}, errTokenInvalid
	}
	i := strings.LastIndexByte(tok, '.')
	if i < len(tokenPrefix) {
		return tokenClaims{}, errTokenInvalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return tokenClaims{}, errTokenInvalid
	}
	if !sign.Check(sha256.New, key, sig, []byte(tok[:i])) {
		return tokenClaims{}, errTokenInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(tok[len(tokenPrefix):i])
	if err != nil {
		return tokenClaims{}, errTokenInvalid
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil || !validVisitorID(c.Visitor) {
		return tokenClaims{}, errTokenInvalid
	}
	if now.Unix() >= c.Expires {
		return tokenClaims{}, errTokenExpired
	}
	return c, nil
}

// Visitor ids are "v" and a ULID for anonymous visitors, "u" and 32 hex digits
// (derived from the account namespace and user id) for verified users, so that
// every device of one user is one visitor. Both are NATS subject tokens and
// plain store keys.
var visitorRE = regexp.MustCompile(`^(v[0-9A-Z]{26}|u[0-9a-f]{32})$`)

func validVisitorID(s string) bool { return visitorRE.MatchString(s) }

// newVisitorID returns a fresh anonymous visitor id.
func newVisitorID() string { return "v" + core.NewID() }

// userVisitorID is the visitor id of a verified user: the same on every device
// and every site sharing accounts. It is a plain hash: it is no secret, it only
// must not collide.
func userVisitorID(accounts, userID string) string {
	h := sha256.Sum256([]byte("omnigate-user\x00" + accounts + "\x00" + userID))
	return "u" + hex.EncodeToString(h[:16])
}

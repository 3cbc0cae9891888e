package sign

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"time"
)

// Errors of Links.Verify.
var (
	// ErrLinkForged means the link's signature is missing, malformed or not
	// made with this key: a forged or mangled link, or one signed with a key
	// that has since changed.
	ErrLinkForged = errors.New("sign: link signature invalid")
	// ErrLinkExpired means the link was signed here but its time is over: ask
	// for a fresh one.
	ErrLinkExpired = errors.New("sign: link expired")
)

// Query parameters of a signed link.
const (
	linkExp = "exp"
	linkSig = "sig"
)

// Links makes and checks expiring links to omnigate's own pages (a
// conversation's transcript, its attachments): a path plus ?exp=<unix
// seconds>&sig=<base64url HMAC-SHA256 of the path and exp>. Whoever holds a
// link may open that one path until it expires; nothing else. Safe for
// concurrent use.
type Links struct {
	key []byte
	now func() time.Time
}

// NewLinks returns Links that sign with key (which should be 32 random
// bytes or a long secret); now is the clock, nil for time.Now.
func NewLinks(key []byte, now func() time.Time) *Links {
	if now == nil {
		now = time.Now
	}
	return &Links{key: append([]byte(nil), key...), now: now}
}

// Sign returns path with the query that makes it valid for ttl from now.
// path is signed as given: it must be the URL's escaped path, as
// url.URL.EscapedPath returns it on the request that comes back.
func (l *Links) Sign(path string, ttl time.Duration) string {
	exp := strconv.FormatInt(l.now().Add(ttl).Unix(), 10)
	return path + "?" + linkExp + "=" + exp + "&" + linkSig + "=" + base64.RawURLEncoding.EncodeToString(l.mac(path, exp))
}

// Verify checks that q (the request's query) signs path and has not expired:
// nil, ErrLinkForged or ErrLinkExpired. The signature is checked first, so
// an expired answer says the link was real.
func (l *Links) Verify(path string, q url.Values) error {
	exp, sig := q.Get(linkExp), q.Get(linkSig)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(exp) > 20 || !Check(sha256.New, l.key, raw, l.message(path, exp)...) {
		return ErrLinkForged
	}
	at, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrLinkForged // signed by us, so never; kept for safety
	}
	if l.now().Unix() > at {
		return ErrLinkExpired
	}
	return nil
}

// Expires returns the expiry a link's query carries, unchecked; zero when it
// has none.
func Expires(q url.Values) time.Time {
	at, err := strconv.ParseInt(q.Get(linkExp), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(at, 0)
}

func (l *Links) mac(path, exp string) []byte { return SHA256(l.key, l.message(path, exp)...) }

// message is what a link's signature covers; the NULs keep path and exp
// apart, and the prefix keeps these MACs apart from any other use of the key.
func (l *Links) message(path, exp string) [][]byte {
	return [][]byte{[]byte("omnigate link\x00"), []byte(path), {0}, []byte(exp)}
}

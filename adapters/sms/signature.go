package sms

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/core/sign"
	twclient "github.com/twilio/twilio-go/client"
)

// SignatureHeader is the header in which Twilio signs every webhook.
const SignatureHeader = "X-Twilio-Signature"

// newValidator returns twilio-go's validator for token. It checks the URL with
// and without the default port, as Twilio's own back ends differ on it.
func newValidator(token string) *twclient.RequestValidator {
	v := twclient.NewRequestValidator(token)
	return &v
}

// Sign returns the X-Twilio-Signature of a POST of params to fullURL, as
// Twilio computes it: the base64 HMAC-SHA1, keyed with the auth token, of the
// full URL (query included) followed by each parameter's name and value,
// sorted by name. Tests and tools use it to make webhooks the adapter accepts.
func Sign(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, v := range params[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return base64.StdEncoding.EncodeToString(sign.SHA1([]byte(authToken), []byte(b.String())))
}

// signedURL is the URL Twilio called for r, the one its signature covers:
// signature_url for an incoming message when it is set (a proxy rewrote the
// path Twilio called), else the public base URL plus the path and query r
// arrived with. The Host header and X-Forwarded-* are not trusted: anyone can
// set them.
func (a *Adapter) signedURL(r *http.Request) string {
	if a.cfg.SignatureURL != "" && r.URL.Path == a.routePath("webhook") {
		return a.cfg.SignatureURL
	}
	u := a.public + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// verified reports whether r's signature matches form, its parameters (each
// with one value: the parser refuses repeated names).
func (a *Adapter) verified(r *http.Request, form url.Values) bool {
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return false
	}
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) > 0 {
			params[k] = vs[0]
		}
	}
	return a.validate(a.signedURL(r), params, sig)
}

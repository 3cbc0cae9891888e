package edge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// AdminTokenKey is the configuration key of the token that RequireBearer
// asks for by default; its 401 answers name it so an operator knows what to set.
const AdminTokenKey = "http.admin_token"

// Bearer guards HTTP handlers with one shared bearer token
// ("Authorization: Bearer <token>"), for omnigate's admin and integrator APIs.
// The zero value refuses everything; fill Token at least.
type Bearer struct {
	// Token returns the token requests must carry; it is called for every
	// request, so a reloaded configuration takes effect at once. An empty
	// token turns the guarded API off: every request gets 401.
	Token func() string
	// Key is the configuration key that sets the token, named in the 401
	// answers; default AdminTokenKey.
	Key string
	// Realm is the realm of the WWW-Authenticate challenge; default "omnigate".
	Realm string
	// Channel is the channel label of refusals in
	// omnigate_http_rejected_requests_total; default "api".
	Channel string
	// Log receives the refusals, at most one line per interval behind an
	// Edge (see Reject); nil logs on the Edge's logger, or nowhere outside one.
	Log *slog.Logger
}

// RequireBearer returns next behind the token that token returns, with the
// defaults of Bearer: refusals name http.admin_token.
func RequireBearer(token func() string, next http.Handler) http.Handler {
	return Bearer{Token: token}.Handler(next)
}

// Handler returns next behind the token check. A request whose
// Authorization header is not "Bearer <token>" with the right token gets 401
// with "WWW-Authenticate: Bearer" and a JSON body {"error": "..."} that says
// what to do, and is counted and logged as an edge.Signature refusal. The
// token is compared in constant time (of hashes, so its length does not leak
// either).
func (b Bearer) Handler(next http.Handler) http.Handler {
	key := b.Key
	if key == "" {
		key = AdminTokenKey
	}
	realm := b.Realm
	if realm == "" {
		realm = "omnigate"
	}
	channel := b.Channel
	if channel == "" {
		channel = "api"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := ""
		if b.Token != nil {
			want = b.Token()
		}
		got, ok := bearerToken(r)
		if want != "" && ok && equalTokens(got, want) {
			next.ServeHTTP(w, r)
			return
		}
		msg := "missing or wrong bearer token: send Authorization: Bearer <" + key + ">"
		switch {
		case want == "":
			msg = "this API is off: set " + key + " in the configuration and send Authorization: Bearer <token>"
		case !ok && r.Header.Get("Authorization") == "":
			msg = "no bearer token: send Authorization: Bearer <" + key + ">"
		}
		Reject(r, b.logger(r), channel, Signature, "API call refused", "reason", msg, "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	})
}

// logger is where b logs a refusal of r.
func (b Bearer) logger(r *http.Request) *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	if e := from(r); e != nil && e.log != nil {
		return e.log
	}
	return slog.New(slog.DiscardHandler)
}

// bearerToken returns the token of r's Authorization header; the scheme is
// case-insensitive (RFC 9110).
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// equalTokens compares a and b in constant time.
func equalTokens(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

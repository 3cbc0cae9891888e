package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// site is a configured site, ready for use.
type site struct {
	name     string
	secret   []byte
	origins  []string // normalized; "*" allows any
	accounts string
	queue    string // routing queue of its availability; "" the default queue
}

// originAllowed reports whether a browser page at origin may use the chat of
// s (of any site, when s is nil). Requests without Origin come from apps and
// servers, which no browser policy protects: they pass, and authenticate like
// everyone else. Pages of this server itself always pass.
func (a *Adapter) originAllowed(r *http.Request, origin string, s *site) bool {
	if origin == "" || a.sameOrigin(r, origin) {
		return true
	}
	o := strings.ToLower(origin)
	if s != nil {
		return slices.Contains(s.origins, "*") || slices.Contains(s.origins, o)
	}
	for _, s := range a.sites {
		if slices.Contains(s.origins, "*") || slices.Contains(s.origins, o) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether origin is this server: the host the request was
// sent to, or the public URL's.
func (a *Adapter) sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if a.publicOrigin != "" && strings.EqualFold(u.Scheme+"://"+u.Host, a.publicOrigin) {
		return true
	}
	return strings.EqualFold(u.Host, r.Host)
}

// allowCORS sets the CORS headers that let a page at the request's origin read
// the answer; call it once the origin was found allowed.
func allowCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
}

// preflight answers a CORS preflight request: allowed when some site allows
// the origin; the request itself is checked against its own site.
func (a *Adapter) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !a.originAllowed(r, origin, nil) {
		w.Header().Add("Vary", "Origin")
		w.WriteHeader(http.StatusForbidden)
		return
	}
	allowCORS(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	_ "embed"

	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/markdown"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/sign"
	"github.com/omnigate/omnigate/core/store"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"day":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	"size":   humanSize,
	"body":   body,
	"linkOK": func(u string) bool { return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") },
}).Parse(pageHTML))

// maxPageEntries bounds the entries one transcript page shows; the API
// pages through longer ones.
const maxPageEntries = 5000

// pageData is what page.html shows.
type pageData struct {
	Nonce string
	// Error is set on the refusal page; the rest is then empty.
	Error, Hint string

	Conv        Conversation
	Contact     *Contact
	Entries     []Entry
	Truncated   bool
	Earlier     []earlier
	Expires     time.Time
	GeneratedAt time.Time
}

// earlier is another conversation of the same contact.
type earlier struct {
	Conversation
	Link string
}

// servePage is GET /conversations/{id}: the whole transcript of a
// conversation, for a person who holds a signed link to it.
func (a *API) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer") // the URL is the credential
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Robots-Tag", "noindex")
	h.Set("Cache-Control", "no-store")
	id := r.PathValue("id")
	var err error = sign.ErrLinkForged
	if a.links != nil {
		err = a.links.Verify(pagePath(id), r.URL.Query())
	}
	switch {
	case a.links == nil:
		a.refuse(w, r, nonce, "This transcript link cannot be checked", "This omnigate has no key to sign links with. An operator should set http.link_secret; the card's link then works again.")
		return
	case errors.Is(err, sign.ErrLinkExpired):
		a.refuse(w, r, nonce, "This transcript link has expired", "Links are valid for "+humanDuration(a.cfg.LinkTTL)+" after they were made. Open the conversation's card in Slack again: its Transcript link is renewed whenever the card changes. Expired on "+sign.Expires(r.URL.Query()).UTC().Format(time.RFC1123)+".")
		return
	case err != nil:
		a.refuse(w, r, nonce, "This transcript link is not valid", "Its signature does not match: the link was changed, cut short, or made with a key that has since changed. Use the Transcript link of the conversation's card in Slack.")
		return
	}
	ctx := r.Context()
	c, err := a.deps.Store.Conversation(ctx, id)
	if err != nil {
		a.pageError(w, r, nonce, err)
		return
	}
	d := pageData{Nonce: nonce, Conv: conversationView(c), Expires: sign.Expires(r.URL.Query()), GeneratedAt: a.cfg.Now()}
	if ct, err := a.deps.Store.Contact(ctx, c.ContactID); err == nil {
		v := contactView(ct, "")
		d.Contact = &v
	} else if !errors.Is(err, store.ErrNotFound) {
		a.pageError(w, r, nonce, err)
		return
	}
	for after := uint64(0); ; {
		page, next, err := pipeline.Transcript(ctx, a.deps.JetStream, id, after, pipeline.MaxTranscriptLimit)
		if err != nil {
			a.pageError(w, r, nonce, err)
			return
		}
		for _, e := range page {
			if e.Err == nil {
				d.Entries = append(d.Entries, entryView(e))
			}
		}
		if len(page) == 0 || next == after {
			break
		}
		if len(d.Entries) >= maxPageEntries {
			d.Truncated = true
			break
		}
		after = next
	}
	// The contact's other conversations, linked with the same lifetime.
	others, _, err := a.deps.Store.ListConversations(ctx, store.ConversationFilter{ContactID: c.ContactID, Limit: 20})
	if err == nil {
		for _, o := range others {
			if o.ID != c.ID {
				d.Earlier = append(d.Earlier, earlier{Conversation: conversationView(o), Link: a.links.Sign(pagePath(o.ID), a.cfg.LinkTTL)})
			}
		}
	} else {
		a.log.Warn("earlier conversations not listed", "conversation", id, "err", err)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, d); err != nil {
		a.log.Warn("transcript page not written", "conversation", id, "err", err)
	}
}

// refuse answers 403 with a page that says what happened and what to do.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, nonce, title, hint string) {
	a.log.Debug("transcript link refused", "path", r.URL.Path, "why", title)
	a.errorPage(w, http.StatusForbidden, nonce, title, hint)
}

// pageError answers a failed read of what the page shows.
func (a *API) pageError(w http.ResponseWriter, r *http.Request, nonce string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		a.errorPage(w, http.StatusNotFound, nonce, "This conversation no longer exists", "Closed conversations are kept for store.closed_ttl; this one is past it, or was merged into another.")
		return
	}
	a.log.Warn("transcript page not read", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	a.errorPage(w, http.StatusServiceUnavailable, nonce, "The transcript cannot be read right now", "omnigate could not reach its store or stream. Reload the page in a moment.")
}

func (a *API) errorPage(w http.ResponseWriter, status int, nonce, title, hint string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, pageData{Nonce: nonce, Error: title, Hint: hint})
}

// newNonce returns a fresh CSP nonce.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// humanSize writes n bytes for people: 512 B, 1.5 KB, 3.2 MB.
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, unit := float64(n)/1024, "KB"
	for _, u := range []string{"MB", "GB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0") + " " + unit
}

// body is e's text as HTML: CommonMark rendered (its renderer escapes
// every character and links only http(s) and mailto URLs), anything else as
// the escaped text.
func body(e Entry) template.HTML {
	if e.Format == event.FormatMarkdown {
		return template.HTML(markdown.HTML(e.Text)) //nolint:gosec // markdown.HTML escapes the text
	}
	return template.HTML(template.HTMLEscapeString(e.Text))
}

// humanDuration writes d for people: "7 days", "1 day", else d.String().
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > day && d%day == 0:
		return strconv.Itoa(int(d/day)) + " days"
	}
	return d.String()
}

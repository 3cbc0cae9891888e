package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"time"
)

//go:embed static/widget.js
var widgetJS []byte

//go:embed static/demo.html
var demoHTML string

//go:embed static/demo.css
var demoCSS []byte

var widgetETag = func() string {
	h := sha256.Sum256(widgetJS)
	return `"` + hex.EncodeToString(h[:8]) + `"`
}()

var startTime = time.Now()

// WidgetHandler serves the chat widget, one vanilla JavaScript file that any
// page embeds with
//
//	<script src="https://support.example.com/widget.js" data-site="demo" async></script>
//
// The adapter serves it at /channels/<name>/widget.js; cmd/omnigate also mounts
// it at /widget.js. The script finds the server from its own src.
func WidgetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", widgetETag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		http.ServeContent(w, r, "widget.js", startTime, bytes.NewReader(widgetJS))
	})
}

// demoPage is the demo page's template.
var demoPage = template.Must(template.New("demo").Parse(demoHTML))

// DemoOptions are what the demo page says.
type DemoOptions struct {
	// Site is the site the page's widget uses; "" means "demo", the site the
	// web channel has with no config.
	Site string
	// Warning, when set, is shown at the top of the page: why nobody can
	// answer (e.g. no agent desk is configured) and what to do about it.
	Warning string
	// Lang is the page's language (its html lang), which the widget speaks;
	// default "en".
	Lang string
}

// DemoCSP is the Content-Security-Policy of the demo page: no inline script
// or style, no eval; the widget works under it. Agents' avatars may come
// from https (Slack's CDN).
const DemoCSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: https:; frame-ancestors 'none'"

// DemoHandler serves the demo page: a page with the widget on it, for
// `omnigate serve` without a config file. Mount it at "/": it answers "/"
// with the page, "/demo.css" with its style sheet and "/widget.js" with the
// widget, and 404 to anything else.
func DemoHandler(o DemoOptions) http.Handler {
	if o.Site == "" {
		o.Site = defaultSite
	}
	if o.Lang == "" {
		o.Lang = "en"
	}
	var page bytes.Buffer
	if err := demoPage.Execute(&page, o); err != nil {
		panic("web: demo page: " + err.Error()) // a fixed template with strings
	}
	widget := WidgetHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/widget.js":
			widget.ServeHTTP(w, r)
		case "/demo.css":
			h.Set("Content-Type", "text/css; charset=utf-8")
			h.Set("Cache-Control", "public, max-age=300")
			h.Set("X-Content-Type-Options", "nosniff")
			http.ServeContent(w, r, "demo.css", startTime, bytes.NewReader(demoCSS))
		case "/", "/index.html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Content-Security-Policy", DemoCSP)
			http.ServeContent(w, r, "index.html", startTime, bytes.NewReader(page.Bytes()))
		default:
			http.NotFound(w, r)
		}
	})
}

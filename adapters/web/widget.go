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

// DemoHandler serves the demo page: a page with the widget on it, for
// `omnigate serve` without a config file. Mount it at "/": it answers "/" with
// the page and "/widget.js" with the widget, and 404 to anything else.
// site is the site the page's widget uses; "" means "demo", the site the web
// channel has with no config.
func DemoHandler(site string) http.Handler {
	if site == "" {
		site = defaultSite
	}
	var page bytes.Buffer
	if err := demoPage.Execute(&page, struct{ Site string }{site}); err != nil {
		panic("web: demo page: " + err.Error()) // a fixed template with a string
	}
	widget := WidgetHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/widget.js":
			widget.ServeHTTP(w, r)
		case "/", "/index.html":
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https: http:; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
			http.ServeContent(w, r, "index.html", startTime, bytes.NewReader(page.Bytes()))
		default:
			http.NotFound(w, r)
		}
	})
}

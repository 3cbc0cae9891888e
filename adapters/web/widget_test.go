package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/web"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestWidget_Served(t *testing.T) {
	resp := get(t, web.WidgetHandler(), "/widget.js")
	js, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || len(js) == 0 {
		t.Fatalf("widget: %d %v", resp.StatusCode, resp.Header)
	}
	if again := get(t, web.WidgetHandler(), "/widget.js", "If-None-Match", resp.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d", again.StatusCode)
	}

	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(js)
	w.Close()
	if gz.Len() >= 30<<10 {
		t.Errorf("widget.js is %d bytes gzipped, the budget is 30 KB", gz.Len())
	}
	t.Logf("widget.js: %d bytes, %d gzipped", len(js), gz.Len())

	// Server text reaches the page as text only.
	for _, re := range []string{`\.innerHTML`, `\.outerHTML`, `insertAdjacentHTML`, `document\.write`, `\beval\(`, `new Function`, `javascript:`} {
		if regexp.MustCompile(re).Match(js) {
			t.Errorf("widget.js uses %s", re)
		}
	}
	for _, want := range []string{"noopener noreferrer", "textContent", `'http:'`, `'https:'`, "role: 'dialog'", "role: 'log'", "Escape", "aria-expanded", "isComposing", "在线客服"} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("widget.js lacks %q", want)
		}
	}
}

func TestDemoHandler(t *testing.T) {
	h := web.DemoHandler(web.DemoOptions{})
	resp := get(t, h, "/")
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(page, []byte(`<script src="/widget.js" data-site="demo" async></script>`)) {
		t.Fatalf("demo page: %d\n%s", resp.StatusCode, page)
	}
	if resp := get(t, h, "/widget.js"); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("widget via demo handler: %d", resp.StatusCode)
	}
	if resp := get(t, h, "/nope"); resp.StatusCode != 404 {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("demo page CSP %q allows inline code", csp)
	}
	if bytes.Contains(page, []byte("<style")) || bytes.Contains(page, []byte(" style=")) || bytes.Contains(page, []byte("Nobody can answer")) {
		t.Errorf("demo page has inline style or a warning nobody asked for:\n%s", page)
	}
	if css := get(t, h, "/demo.css"); css.StatusCode != 200 || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("/demo.css: %d", css.StatusCode)
	}
	resp = get(t, web.DemoHandler(web.DemoOptions{Warning: "No agent desk is configured <b>."}), "/")
	page, _ = io.ReadAll(resp.Body)
	if !bytes.Contains(page, []byte("Nobody can answer this chat.")) || !bytes.Contains(page, []byte("No agent desk is configured &lt;b&gt;.")) {
		t.Errorf("demo page without a desk:\n%s", page)
	}
	resp = get(t, web.DemoHandler(web.DemoOptions{Site: `x" onload="alert(1)`}), "/")
	page, _ = io.ReadAll(resp.Body)
	if bytes.Contains(page, []byte(`" onload="`)) {
		t.Errorf("site name not escaped:\n%s", page)
	}
}

func TestWidget_ChannelRoute(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	resp, err := http.Get(f.url + "/channels/web/widget.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /channels/web/widget.js: %d", resp.StatusCode)
	}
}

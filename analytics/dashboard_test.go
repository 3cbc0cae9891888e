package analytics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/analytics"
)

// The dashboard's files are served from the binary, under a CSP that allows
// only them.
func TestDashboardHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard/", analytics.DashboardHandler("/dashboard/"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		"/dashboard/":                               "<title>omnigate: supervisor dashboard</title>",
		"/dashboard/dashboard.js":                   "/api/reports?",
		"/dashboard/vendor/uplot/uPlot.iife.min.js": "uPlot",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
}

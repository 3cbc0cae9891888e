package analytics

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// dashboardFiles are the supervisor dashboard's page, script, style and the
// vendored uPlot 1.6.32 (dashboard/vendor/uplot/README.md).
//
//go:embed dashboard/index.html dashboard/dashboard.js dashboard/dashboard.css dashboard/vendor/uplot/uPlot.iife.min.js dashboard/vendor/uplot/uPlot.min.css
var dashboardFiles embed.FS

// dashboardCSP is the page's Content-Security-Policy: its own files only.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DashboardHandler serves the supervisor dashboard under prefix (e.g.
// "/dashboard/"). The page is public; the figures it shows come from GET
// /api/reports, with the admin token the supervisor signs in with.
func DashboardHandler(prefix string) http.Handler {
	sub, _ := fs.Sub(dashboardFiles, "dashboard")
	files := http.FileServerFS(sub)
	return http.StripPrefix(path.Clean(prefix), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", dashboardCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
}

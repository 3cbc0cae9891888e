package analytics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ParseTime reads a report bound: RFC 3339 (2026-12-01T09:00:00Z), a date
// (2026-12-01, midnight in loc), "now", "today" (midnight of now in loc), or
// either of those minus a Go duration (now-24h, today-168h for a week ago).
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, base := range []string{"now", "today"} {
		rest, ok := strings.CutPrefix(s, base)
		if !ok {
			continue
		}
		t := now
		if base == "today" {
			y, m, d := now.In(loc).Date()
			t = time.Date(y, m, d, 0, 0, 0, 0, loc)
		}
		if rest == "" {
			return t, nil
		}
		ds, ok := strings.CutPrefix(rest, "-")
		d, err := time.ParseDuration(ds)
		if !ok || err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q: after %s- comes a duration such as 24h or 30m", s, base)
		}
		return t.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-12-01, 2026-12-01T09:00:00Z, now, today, now-24h or today-168h", s)
}

// Handler serves GET /api/reports?from=&to=&by=&format=json|csv, the report
// of [from, to) (default: the last 24 hours) grouped by by. The caller puts
// it behind the admin token.
func (a *Analytics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, format, err := a.queryOf(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		rep, err := a.Report(r.Context(), q)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		switch format {
		case FormatCSV:
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="omnigate-report.csv"`)
		default:
			w.Header().Set("Content-Type", "application/json")
		}
		_ = Write(w, rep, format)
	})
}

// queryOf reads a report query from r's parameters.
func (a *Analytics) queryOf(r *http.Request) (Query, string, error) {
	v := r.URL.Query()
	loc := a.cfg.Location()
	now := a.now()
	q := Query{To: now, By: v.Get("by"), Location: loc}
	var err error
	if s := v.Get("to"); s != "" {
		if q.To, err = ParseTime(s, now, loc); err != nil {
			return q, "", fmt.Errorf("to: %w", err)
		}
	}
	q.From = q.To.Add(-24 * time.Hour)
	if s := v.Get("from"); s != "" {
		if q.From, err = ParseTime(s, now, loc); err != nil {
			return q, "", fmt.Errorf("from: %w", err)
		}
	}
	format := v.Get("format")
	switch format {
	case "":
		format = FormatJSON
	case FormatJSON, FormatCSV:
	default:
		return q, "", fmt.Errorf("format %q: use json or csv", format)
	}
	return q, format, q.Validate()
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

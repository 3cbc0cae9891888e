package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// grafanaFile is the Grafana dashboard operators import.
const grafanaFile = "../../deploy/grafana/omnigate.json"

// serviceMetrics are the metrics the analytics component exports, by name,
// with whether each is a histogram: the dashboard may query them before this
// binary registers them.
var serviceMetrics = map[string]bool{
	"omnigate_conversations_opened_total":   false,
	"omnigate_conversations_closed_total":   false,
	"omnigate_conversations_reopened_total": false,
	"omnigate_messages_total":               false,
	"omnigate_first_response_seconds":       true,
	"omnigate_resolution_seconds":           true,
	"omnigate_queue_waiting":                false,
	"omnigate_sla_breaches_total":           false,
	"omnigate_csat_responses_total":         false,
	"omnigate_delivery_failures_total":      false,
	"omnigate_channel_switches_total":       false,
	"omnigate_abandoned_total":              false,
}

// grafanaDashboard is what the tests read of a Grafana dashboard.
type grafanaDashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type, UID string
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// readGrafana parses the dashboard file and returns every panel but rows.
func readGrafana(t *testing.T) (*grafanaDashboard, []grafanaPanel) {
	t.Helper()
	data, err := os.ReadFile(grafanaFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", grafanaFile, err)
	}
	var out []grafanaPanel
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return &d, out
}

// TestGrafana_Shape: the dashboard imports into current Grafana (schema
// 39), every panel queries the ${DS_PROMETHEUS} data source variable, ids are
// unique and panels fit the 24-column grid.
func TestGrafana_Shape(t *testing.T) {
	d, panels := readGrafana(t)
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want about 39", d.SchemaVersion)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Error("no datasource variable DS_PROMETHEUS of type prometheus")
	}
	if len(panels) < 20 {
		t.Errorf("%d panels, want the operational and service ones", len(panels))
	}
	ids := map[int]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: data source %+v, want prometheus ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
	}
}

// metricToken is a PromQL identifier that names one of omnigate's, Go's or
// the process's metrics.
var metricToken = regexp.MustCompile(`\b(?:omnigate|go|process)_[a-zA-Z0-9_]+\b`)

// checkGrafana checks that every metric the dashboard queries is exported
// by the running binary (fams: the names and types it registers) or is a
// service metric of analytics; a histogram is queried by its _bucket, _count
// or _sum.
func checkGrafana(t *testing.T, fams map[string]dto.MetricType) {
	t.Helper()
	_, panels := readGrafana(t)
	histogram := func(name string) bool {
		if h, ok := serviceMetrics[name]; ok {
			return h
		}
		typ, ok := fams[name]
		return ok && typ == dto.MetricType_HISTOGRAM
	}
	used := map[string]bool{}
	for _, p := range panels {
		for _, tg := range p.Targets {
			names := metricToken.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q queries no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && histogram(b) {
						base = b
					}
				}
				_, exported := fams[base]
				_, service := serviceMetrics[base]
				if !exported && !service {
					t.Errorf("panel %q queries %s, which omnigate does not export", p.Title, n)
				}
				if base != n && !histogram(base) || base == n && histogram(base) {
					t.Errorf("panel %q queries %s: histograms by _bucket, _count or _sum only", p.Title, n)
				}
				used[base] = true
			}
		}
	}
	for name := range serviceMetrics {
		if !used[name] {
			t.Errorf("no panel shows the service metric %s", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "omnigate_") && !used[name] {
			t.Logf("exported but not on the dashboard: %s", name)
		}
	}
}

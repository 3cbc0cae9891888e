package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnigate/omnigate/analytics"
)

// chromiumPath is the browser for the dashboard check: $OMNIGATE_CHROMIUM,
// else chromium on $PATH; "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("OMNIGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// checkDashboard opens /dashboard in headless Chromium over the day d
// replayed, checks that the figures it shows are the report's and that the
// weak spot slow is listed first, and saves desktop and phone screenshots
// under $OMNIGATE_TEST_ARTIFACTS (else the test's temporary directory).
func checkDashboard(t *testing.T, d *day, total *analytics.Report, slow string, judged bool) {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		t.Log("no Chromium found (apt-get install -y chromium, or set OMNIGATE_CHROMIUM): dashboard check skipped")
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "en-US"), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	if resp, err := http.Get(d.g.base + "/dashboard/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dashboard/: %v %v", err, resp)
	}
	// A wrong token is refused, and the page says so.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.g.base+"/dashboard/#token=wrong")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	poll(t, ctx, "the sign-in form after a wrong token", `!document.getElementById('login').hidden && document.getElementById('login-error').textContent.includes('refused')`)

	if err := chromedp.Do(ctx, chromedp.Navigate(d.g.base+"/dashboard/#token="+dayToken)); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.body.dataset.loaded === 'true' && document.querySelectorAll('#chart-frt canvas').length > 0`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('asof').textContent + ' | ' + document.body.innerHTML.slice(0, 300)`))
		t.Fatalf("the dashboard did not load: %v; the page says %q", err, state)
	}

	// Every KPI shows the report's figure for today.
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('.kpi')].map(k => [k.dataset.metric, k.dataset.value]))`))
	if err != nil {
		t.Fatal(err)
	}
	figs := total.Rows[0].Figures
	for name, s := range got {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(v-figs[name]) > 1e-9 {
			t.Errorf("dashboard %s = %q, the report says %v", name, s, figs[name])
		}
	}
	if len(got) < 10 {
		t.Errorf("dashboard shows %d KPIs: %v", len(got), got)
	}
	// The weak spots come first, and name the slow queue-hour.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main section').id + ' ' + (document.querySelector('#weak-list li') || {}).textContent`))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case judged && !strings.HasPrefix(first, "weak "+slow):
		t.Errorf("first on the dashboard: %q, want the weak spot %s", first, slow)
	case !strings.HasPrefix(first, "weak "):
		t.Errorf("first on the dashboard: %q, want the weak spots", first)
	}
	// Live queues: billing's waiting customers as the report counts them.
	var billingWaiting float64
	for _, r := range d.report(analytics.ByQueue).Rows {
		if r.Key == "billing" {
			billingWaiting = r.Figures["queue_length"]
		}
	}
	live, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#live tr[data-queue=billing] td[data-metric=queue_length]').textContent`))
	if err != nil || live != fmt.Sprint(billingWaiting) {
		t.Errorf("live billing waiting = %q (%v), the report says %v", live, err, billingWaiting)
	}

	dir := os.Getenv("OMNIGATE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shoot := func(name string) {
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	shoot("dashboard-desktop.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the dashboard loaded on a phone", `document.body.dataset.loaded === 'true'`)
	shoot("dashboard-phone.png")
}

// poll waits until the JavaScript expression is truthy.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

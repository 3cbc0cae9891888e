package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// chromium returns the browser to drive: $OMNIGATE_CHROMIUM, else chromium
// on $PATH or at /usr/bin/chromium.
func chromium(t *testing.T) string {
	if p := os.Getenv("OMNIGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (install it with `apt-get install -y chromium`, or set OMNIGATE_CHROMIUM): browser test skipped")
	return ""
}

// artifactDir is where screenshots go: $OMNIGATE_TEST_ARTIFACTS, else
// omnigate-widget-screenshots in the system's temporary directory (the test
// logs each path).
func artifactDir(t *testing.T) string {
	d := os.Getenv("OMNIGATE_TEST_ARTIFACTS")
	if d == "" {
		d = filepath.Join(os.TempDir(), "omnigate-widget-screenshots")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// shadow is the JavaScript path of an element of the widget.
func shadow(sel string) chromedp.JSPath {
	return chromedp.JSPath(`document.querySelector('#omnigate-widget').shadowRoot.querySelector(` + "`" + sel + "`" + `)`)
}

// pressEnter presses Enter as a keyboard does: one keyDown that carries the
// text, which the page may cancel. (chromedp's KeyEvent sends the text as a
// separate char event, which types a newline whatever keydown's handler did.)
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		k := input.DispatchKeyEventParams{
			Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r",
		}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k); err != nil {
			return err
		}
		k.Type, k.Text, k.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k)
		return err
	})
}

// startBrowser starts headless Chromium for the test and returns its tab.
func startBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// pollJS waits until the JavaScript expression is truthy.
func pollJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves the tab as a PNG under artifactDir and logs its path.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowser_DemoPage drives the demo page in headless Chromium: the visitor
// opens the widget, types a message and presses Enter; it is published
// inbound; an agent's reply published on omni.out.web appears in the panel, as
// text, its link safe; Escape closes the panel; a reply while it is closed
// shows on the unread badge.
func TestBrowser_DemoPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	exe := chromium(t)
	env := adaptertest.NewEnv(t, "web")
	env.Deps.Bus = env.Bus
	a, err := adapters.Build("web", "", nil, env.Deps) // zero config: the demo site
	if err != nil {
		t.Fatal(err)
	}
	env.Mux.Handle("GET /", web.DemoHandler(web.DemoOptions{}))
	env.Start(t, a)
	putAvailability(t, env, event.AvailabilityDefault, event.Availability{Queue: "default", Agents: 1, Available: 1, Open: true, ExpectedWait: 5 * time.Minute})

	ctx := startBrowser(t, exe)
	console := watchConsole(t, ctx)
	poll := func(what, expr string) { t.Helper(); pollJS(t, ctx, what, expr) }
	root := `document.querySelector('#omnigate-widget').shadowRoot`

	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.Server.URL+"/"),
		chromedp.WaitVisible(shadow(".launcher")),
		chromedp.Click(shadow(".launcher")),
		chromedp.WaitVisible(shadow("#omnigate-input")),
	); err != nil {
		t.Fatalf("open the widget: %v", err)
	}
	// Focus moves into the panel; the launcher says it is expanded.
	poll("focus in the composer", root+`.activeElement && `+root+`.activeElement.id === 'omnigate-input'`)
	poll("launcher expanded", root+`.querySelector('.launcher').getAttribute('aria-expanded') === 'true'`)
	poll("connected", root+`.querySelector('.status').textContent === 'We are online · Typically replies in 5 minutes'`)

	if err := chromedp.Do(ctx, chromedp.SendKeys(shadow("#omnigate-input"), "Hello from the browser"), pressEnter()); err != nil {
		t.Fatalf("type: %v", err)
	}
	m := inbound(t, env, 1)[0]
	if m.Text != "Hello from the browser" || m.From.Channel() != "web" || m.Meta["site"] != "demo" || !strings.HasPrefix(m.Meta["page_url"], env.Server.URL) {
		t.Fatalf("inbound = %q from %s meta %v", m.Text, m.From, m.Meta)
	}
	poll("own message acknowledged", root+`.querySelector('.row.me[data-seq="1"]') !== null`)
	poll("composer cleared", root+`.querySelector('#omnigate-input').value === ''`)

	// The agent answers through the bus, as the pipeline would.
	r := core.NewMessage(core.KindMessage, core.Outbound, "web")
	r.To = m.From
	r.ConversationID = "conv1"
	r.Text = "Hi! <b>Not bold</b>, see https://example.com/help. And javascript:alert(1)"
	r.Meta = map[string]string{event.MetaAgentName: "Ann"}
	env.WaitSent(t, env.PublishOutbound(t, r, ""))
	poll("agent reply shown", root+`.querySelector('.agent .msg') !== null`)

	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const el = `+root+`.querySelector('.agent .msg');
		const a = el.querySelector('a');
		return {
			who: el.querySelector('.who').textContent,
			text: el.querySelector('.body').textContent,
			bold: el.querySelectorAll('b').length,
			links: el.querySelectorAll('a').length,
			href: a && a.getAttribute('href'),
			rel: a && a.getAttribute('rel'),
			target: a && a.getAttribute('target'),
		};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if got["who"] != "Ann" || got["text"] != r.Text || got["bold"] != float64(0) || got["links"] != float64(1) ||
		got["href"] != "https://example.com/help" || got["rel"] != "noopener noreferrer" || got["target"] != "_blank" {
		t.Errorf("agent bubble = %v", got)
	}

	screenshot(t, ctx, "demo-conversation.png")

	// Escape closes the panel and gives focus back to the launcher; a reply
	// while closed shows on the badge.
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	poll("panel closed", root+`.querySelector('#omnigate-panel').hidden === true`)
	poll("focus on the launcher", root+`.activeElement && `+root+`.activeElement.classList.contains('launcher')`)
	r2 := core.NewMessage(core.KindMessage, core.Outbound, "web")
	r2.To = m.From
	r2.Text = "Are you still there?"
	env.WaitSent(t, env.PublishOutbound(t, r2, ""))
	poll("unread badge", root+`.querySelector('.badge').hidden === false && `+root+`.querySelector('.badge').textContent === '1'`)
	label, err := chromedp.Run(ctx, chromedp.Evaluate[string](root+`.querySelector('.launcher').getAttribute('aria-label')`))
	if err != nil || label != "Open chat, 1 unread message" {
		t.Errorf("launcher label %q, %v", label, err)
	}
	screenshot(t, ctx, "demo-unread.png")
	// Opening again reads it: the server learns the read position.
	if err := chromedp.Do(ctx, chromedp.Click(shadow(".launcher"))); err != nil {
		t.Fatal(err)
	}
	poll("badge cleared", root+`.querySelector('.badge').hidden === true`)
	evs := func() error {
		if n := len(env.Events(t, event.DeliveryRead, r2.ID)); n != 1 {
			return fmt.Errorf("%d delivery.read events for the second reply", n)
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for err := evs(); err != nil; err = evs() {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	console.none(t)
}

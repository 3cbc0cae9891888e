package web_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// strictCSP is the policy the widget must work under: no inline script or
// style, no eval, images only from the page's server. Refusals are reported
// to /csp-report.
const strictCSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; report-uri /csp-report"

// statesConfig is a business's widget: theme, greeting, a pre-chat form with
// a field of its own, two sites on two queues.
const statesConfig = `
sites:
  shop: {}
  closed:
    queue: closed
rate_limit: {per_ip: 1000, per_ip_burst: 1000}
widget:
  color: "#0f766e"
  logo_url: /logo.png
  greeting:
    en: "Hi! Ask us about orders, deliveries and returns."
    zh: "您好！订单、配送和退货的问题都可以问我们。"
  prechat:
    enabled: true
    fields: [{name: order, label: Order number / 订单号}]
`

// shopPage is a business's page with the widget, in lang.
func shopPage(lang, site, launcher string) string {
	title, text := "Acme Shop", "Everything for your garden, delivered tomorrow."
	if lang == "zh" {
		title, text = "艾克米商店", "园艺用品，明天送达。"
	}
	return `<!doctype html><html lang="` + lang + `"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>` + title + `</title>
<link rel="stylesheet" href="/demo.css"></head>
<body><main><h1>` + title + `</h1><p>` + text + `</p></main>
<script src="/channels/web/widget.js" data-site="` + site + `" data-launcher-text="` + launcher + `" async></script></body></html>`
}

// pngOf is a w×h picture of one colour.
func pngOf(w, h int, c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// TestBrowser_States drives the widget a business puts on its site, under a
// strict CSP, in English and Chinese, on a desktop and a phone (390×844),
// and saves a screenshot of each state: the pre-chat form, online (with the
// expected reply time), a conversation with the agent's name and avatar, and
// the offline form of a closed queue. The pre-chat answers and the offline
// message reach the bus as a person typed them; nothing is refused by the
// CSP and nothing is written to the console.
func TestBrowser_States(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	exe := chromium(t)
	env := adaptertest.NewEnv(t, "web")
	env.Deps.Bus = env.Bus
	a := build(t, "web", env.Deps, statesConfig)
	var (
		mu      sync.Mutex
		reports []string
	)
	env.Mux.HandleFunc("POST /csp-report", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reports = append(reports, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	env.Mux.HandleFunc("GET /page/{lang}/{site}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", strictCSP)
		launcher := map[string]string{"en": "Help", "zh": "客服"}[r.PathValue("lang")]
		io.WriteString(w, shopPage(r.PathValue("lang"), r.PathValue("site"), launcher))
	})
	logo, avatar := pngOf(64, 64, color.RGBA{0xf5, 0x9e, 0x0b, 0xff}), pngOf(64, 64, color.RGBA{0xdb, 0x27, 0x77, 0xff})
	env.Mux.HandleFunc("GET /logo.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(logo)
	})
	env.Mux.HandleFunc("GET /avatar.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(avatar)
	})
	env.Mux.Handle("GET /demo.css", web.DemoHandler(web.DemoOptions{}))
	env.Start(t, a)

	putAvailability(t, env, event.AvailabilityDefault, event.Availability{Queue: "general", Agents: 3, Available: 2, Open: true, ExpectedWait: 4 * time.Minute})
	tomorrow := time.Now().Add(24 * time.Hour).Truncate(time.Hour)
	putAvailability(t, env, event.AvailabilityKey("closed"), event.Availability{Queue: "closed", Agents: 3, Available: 0, Open: false, NextOpen: tomorrow})

	texts := map[string]struct{ online, prechat, offline, thanks, name, email string }{
		"en": {"We are online · Typically replies in 4 minutes", "Before we start", "Leave your email", "Thanks!", "Your name", "Your email"},
		"zh": {"客服在线 · 通常在4分钟内回复", "开始之前", "请留下您的邮箱", "谢谢！", "您的姓名", "您的邮箱"},
	}
	devices := []struct {
		name string
		w, h int64
	}{{"desktop", 1100, 760}, {"phone", 390, 844}}

	sent := 0
	for _, lang := range []string{"en", "zh"} {
		for _, dev := range devices {
			t.Run(lang+"-"+dev.name, func(t *testing.T) {
				want := texts[lang]
				ctx := startBrowser(t, exe)
				console := watchConsole(t, ctx)
				root := `document.querySelector('#omnigate-widget').shadowRoot`
				poll := func(what, expr string) { t.Helper(); pollJS(t, ctx, what, expr) }
				shot := func(state string) {
					t.Helper()
					screenshot(t, ctx, fmt.Sprintf("widget-%s-%s-%s.png", lang, dev.name, state))
				}
				viewport := chromedp.EmulateViewport(dev.w, dev.h)
				if dev.name == "phone" {
					viewport = chromedp.EmulateViewport(dev.w, dev.h, chromedp.EmulateMobile, chromedp.EmulateTouch)
				}

				// Online: the pre-chat form first, then the conversation.
				if err := chromedp.Do(ctx, viewport,
					chromedp.Navigate(env.Server.URL+"/page/"+lang+"/shop"),
					chromedp.WaitVisible(shadow(".launcher")),
				); err != nil {
					t.Fatalf("open the page: %v", err)
				}
				poll("themed launcher with its text and an online dot", root+`.querySelector('.ltext').textContent === '`+map[string]string{"en": "Help", "zh": "客服"}[lang]+`' && `+
					root+`.querySelector('.launcher .dot.on') !== null && getComputedStyle(`+root+`.querySelector('.launcher')).backgroundColor === 'rgb(15, 118, 110)'`)
				shot("launcher")
				if err := chromedp.Do(ctx, chromedp.Click(shadow(".launcher")), chromedp.WaitVisible(shadow(".prechat"))); err != nil {
					t.Fatalf("open the widget: %v", err)
				}
				poll("pre-chat form, greeting, logo, status", root+`.querySelector('.prechat p').textContent.indexOf('`+want.prechat+`') === 0 && `+
					root+`.querySelector('.greet').hidden === false && `+root+`.querySelector('.logo').complete && `+root+`.querySelector('.logo').naturalWidth === 64 && `+
					root+`.querySelector('.status').textContent === '`+want.online+`' && `+root+`.querySelector('.composer').hidden`)
				shot("prechat")
				// Submitting without an email is refused on the page.
				if err := chromedp.Do(ctx,
					chromedp.SendKeys(shadow(".prechat input[name=name]"), "Ann Lee"),
					chromedp.Click(shadow(".prechat .primary")),
				); err != nil {
					t.Fatal(err)
				}
				poll("email asked for", root+`.querySelector('.notice').textContent !== '' && !`+root+`.querySelector('.prechat').hidden`)
				if err := chromedp.Do(ctx,
					chromedp.SendKeys(shadow(".prechat input[name=email]"), "ann@example.com"),
					chromedp.SendKeys(shadow(".prechat input[name=order]"), "A-1042"),
					chromedp.Click(shadow(".prechat .primary")),
				); err != nil {
					t.Fatal(err)
				}
				poll("composer after the form", root+`.querySelector('.prechat').hidden && !`+root+`.querySelector('.composer').hidden`)
				shot("online")

				msg := map[string]string{"en": "My parcel did not arrive", "zh": "我的包裹还没到"}[lang]
				if err := chromedp.Do(ctx, chromedp.SendKeys(shadow("#omnigate-input"), msg), pressEnter()); err != nil {
					t.Fatal(err)
				}
				sent++
				m := inbound(t, env, sent)[sent-1]
				if m.Text != msg || m.Meta[event.MetaName] != "Ann Lee" || m.Meta[web.MetaContactEmail] != "ann@example.com" || m.Meta[event.MetaPrechat] != "order=A-1042" {
					t.Fatalf("inbound %q meta %v", m.Text, m.Meta)
				}
				poll("own message acknowledged", root+`.querySelector('.row.me[data-seq]') !== null`)

				// The acknowledgement routing sends, then the agent's answer
				// with name and picture.
				ack := core.NewMessage(core.KindMessage, core.Outbound, "web")
				ack.To = m.From
				ack.Text = map[string]string{"en": "Thanks for your message, we have received it. An agent will reply in 4 minutes.", "zh": "您好，我们已收到您的消息，客服将在4分钟内回复您。"}[lang]
				ack.Meta = map[string]string{event.MetaAuto: "ack"}
				env.WaitSent(t, env.PublishOutbound(t, ack, ""))
				r := core.NewMessage(core.KindMessage, core.Outbound, "web")
				r.To = m.From
				r.Text = map[string]string{"en": "Hi Ann, I am sorry! Your parcel A-1042 leaves our depot today.", "zh": "您好，很抱歉！您的包裹 A-1042 今天从仓库发出。"}[lang]
				r.Meta = map[string]string{event.MetaAgentName: map[string]string{"en": "Dana", "zh": "李娜"}[lang], event.MetaAgentAvatar: env.Server.URL + "/avatar.png"}
				env.WaitSent(t, env.PublishOutbound(t, r, ""))
				poll("ack and agent reply with avatar", root+`.querySelectorAll('.row.agent').length === 2 && `+
					root+`.querySelector('.row.agent .msg.auto') !== null && `+
					root+`.querySelector('.row.agent img.av') !== null && `+root+`.querySelector('.row.agent img.av').naturalWidth === 64 && `+
					`[...`+root+`.querySelectorAll('.row.agent .who')].map(e => e.textContent).join('|') === '`+
					map[string]string{"en": "Automatic reply|Dana", "zh": "自动回复|李娜"}[lang]+`'`)
				shot("conversation")

				// Offline: a closed queue; the offline form, then the thanks.
				if err := chromedp.Do(ctx,
					chromedp.Navigate(env.Server.URL+"/page/"+lang+"/closed"),
					chromedp.WaitVisible(shadow(".launcher")),
					chromedp.Click(shadow(".launcher")),
					chromedp.WaitVisible(shadow(".offline")),
				); err != nil {
					t.Fatalf("offline page: %v", err)
				}
				closed := map[string]string{"en": "We are closed now · Back ", "zh": "现在是非工作时间 · "}[lang]
				poll("offline form of a closed queue", root+`.querySelector('.offline p').textContent.indexOf('`+want.offline+`') === 0 && `+
					root+`.querySelector('.status').textContent.indexOf('`+closed+`') === 0 && `+root+`.querySelector('.composer').hidden && `+
					root+`.querySelector('.launcher .dot.on') === null`)
				shot("offline")
				left := map[string]string{"en": "Please call me back about my order", "zh": "请回电话给我，关于我的订单"}[lang]
				email := lang + "-" + dev.name + "@example.com"
				if err := chromedp.Do(ctx,
					chromedp.SendKeys(shadow(".offline input[name=email]"), email),
					chromedp.SendKeys(shadow(".offline textarea[name=message]"), left),
					chromedp.Click(shadow(".offline .primary")),
				); err != nil {
					t.Fatal(err)
				}
				sent++
				m = inbound(t, env, sent)[sent-1]
				if m.Text != left || m.From != core.NewIdentity("email", email) || m.Meta[web.MetaSite] != "closed" {
					t.Fatalf("offline message %q from %s meta %v", m.Text, m.From, m.Meta)
				}
				poll("thanks", root+`.querySelector('.notice').textContent.indexOf('`+want.thanks+`') === 0 && `+root+`.querySelector('.offline').hidden`)
				shot("offline-sent")
				console.none(t)
			})
		}
	}
	mu.Lock()
	for _, r := range reports {
		t.Errorf("CSP violation reported: %s", r)
	}
	mu.Unlock()
	if t.Failed() {
		return
	}
	// The reports would have come: a page that breaks the policy is reported.
	ctx := startBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Navigate(env.Server.URL+"/page/en/shop"), chromedp.WaitVisible(shadow(".launcher")),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.appendChild(s); })()`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n, first := len(reports), strings.Join(reports, "")
		mu.Unlock()
		if n > 0 && strings.Contains(first, "script-src") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an inline script was not reported (%d reports): the CSP check proves nothing", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

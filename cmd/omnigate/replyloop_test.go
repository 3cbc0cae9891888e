package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// What the agent writes in the Slack thread (mrkdwn), and the note that must
// stay between agents.
const (
	agentText = "*Good news*: your order ships today. Track it <https://example.com/t/1|here>."
	agentNote = "// check the warehouse before promising"
)

// What each channel's customer receives of agentText, rendered for the
// channel from the desk's CommonMark.
var (
	plainReply    = "Good news: your order ships today. Track it here (https://example.com/t/1)."
	whatsappReply = "*Good news*: your order ships today. Track it here (https://example.com/t/1)."
	telegramRaw   = `*Good news*: your order ships today\. Track it [here](https://example.com/t/1)\.`
)

// TestReplyLoop is the reply-loop matrix: for every customer channel and both
// Slack transports, a customer's message enters through the channel's real
// ingress (signed webhook, IMAP mailbox, WebSocket) of a running omnigate,
// opens a thread in Slack, an agent's note stays in Slack, the agent's reply
// reaches the customer at the channel's fake provider rendered for that
// channel, and Claim, Transfer and Close clicked on the card change the
// conversation through the owners' commands, as the card then shows.
func TestReplyLoop(t *testing.T) {
	for _, transport := range []string{"socket", "http"} {
		for _, ch := range []string{"web", "app", "sms", "whatsapp", "email", "telegram"} {
			t.Run(transport+"/"+ch, func(t *testing.T) {
				g := startLoop(t, transport, []string{ch}, "")
				cust := g.customer(t, ch)
				cust.write(t, "Where is my order 7781?")

				root := g.waitRoot(t, slackfake.ChannelSupport)
				g.waitInThread(t, root.TS, "Where is my order 7781?")
				conv := conversationID.FindString(root.Blocks)
				if conv == "" {
					t.Fatalf("card without a conversation id: %s", root.Blocks)
				}

				g.agentSays(t, root.Channel, root.TS, agentNote)
				g.agentSays(t, root.Channel, root.TS, agentText)
				got := cust.waitReply(t)
				if got != cust.want {
					t.Errorf("the customer received %q, want %q", got, cust.want)
				}
				for _, r := range cust.received() {
					if strings.Contains(r, "warehouse") {
						t.Errorf("the agents' note reached the customer: %q", r)
					}
				}

				// Claim: routing assigns, the card shows the agent.
				g.click(t, root.Channel, root.TS, "omni_claim", conv)
				g.waitCard(t, root.TS, "<@"+slackfake.AgentUser+">")
				g.waitInThread(t, root.TS, "claimed this conversation")
				// Transfer: routing moves it to billing, whose channel gets the thread.
				g.click(t, root.Channel, root.TS, "omni_transfer", "billing")
				moved := g.waitRoot(t, slackfake.ChannelBilling)
				g.waitCard(t, root.TS, "Moved to queue")
				// Close: the pipeline closes it, the new card says so.
				g.click(t, moved.Channel, moved.TS, "omni_close", conv)
				g.waitCard(t, moved.TS, "Closed", "omni_reopen")
				g.waitInThread(t, moved.TS, "closed this conversation")
			})
		}
	}
}

// conversationID finds the conversation id (a ULID) on a card.
var conversationID = regexp.MustCompile("[0-9A-HJKMNP-TV-Z]{26}")

// loop is one running omnigate with Slack and one customer channel, and the
// fakes of their providers.
type loop struct {
	base      string // http://127.0.0.1:port, also http.public_url
	transport string
	slack     *slackfake.Server
	twilio    *twiliotest.Server
	telegram  *telegramtest.Server
	imap      *mailtest.IMAPServer
	smtp      *mailtest.SMTPServer
	dir       string // the config file's and data directory's parent
	// stop stops serve and waits for it to end.
	stop func()

	mu  sync.Mutex
	seq int
}

// startLoop writes the config of a deployment with Slack on transport and
// the customer channels chs (sms and whatsapp share one fake Twilio), plus
// the extra top-level YAML in extra, and runs omnigate serve with it until the
// test ends.
func startLoop(t *testing.T, transport string, chs []string, extra string) *loop {
	t.Helper()
	return startLoopWith(t, loopOptions{transport: transport, chs: chs, extra: extra})
}

// loopOptions are startLoopWith's: startLoop's arguments, plus what a test
// that restarts omnigate or configures routing needs.
type loopOptions struct {
	transport string
	chs       []string
	extra     string
	// routing replaces the routing section (two queues, general and billing,
	// on the Slack desk) when set; it starts with "routing:".
	routing string
	// http are more keys of the http section, each line indented by two spaces.
	http string
	// nats, when set, is the URL of the NATS server to join (else each
	// omnigate runs its own, embedded).
	nats string
	// share, when set, is a loop whose provider fakes this one uses too: a
	// second replica of the same deployment.
	share *loop
	// again, when set, is a loop to start again: same data directory, same
	// fakes, a new serve (its earlier one stopped with stop).
	again *loop
}

func startLoopWith(t *testing.T, o loopOptions) *loop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transport, chs, extra := o.transport, o.chs, o.extra
	g := &loop{base: "http://" + ln.Addr().String(), transport: transport, slack: slackfake.New(t), dir: t.TempDir()}
	if sh := o.share; sh != nil {
		g.slack, g.twilio, g.telegram = sh.slack, sh.twilio, sh.telegram
	}
	if a := o.again; a != nil {
		g = a
		g.base = "http://" + ln.Addr().String()
		g.imap, g.smtp = nil, nil
	}
	dir := g.dir
	var yml strings.Builder
	fmt.Fprintf(&yml, "http:\n  public_url: %s\n%sdata_dir: %s\nlog:\n  level: warn\n", g.base, o.http, filepath.Join(dir, "data"))
	if o.nats != "" {
		fmt.Fprintf(&yml, "nats:\n  url: %s\n", o.nats)
	}
	if o.routing != "" {
		yml.WriteString(o.routing)
	} else {
		yml.WriteString("routing:\n  default_queue: general\n  queues:\n")
		fmt.Fprintf(&yml, "    general: {desk: slack, channel: %s}\n    billing: {desk: slack, channel: %s}\n", slackfake.ChannelSupport, slackfake.ChannelBilling)
	}
	yml.WriteString("channels:\n  slack:\n")
	fmt.Fprintf(&yml, "    mode: %s\n    bot_token: %s\n    default_channel: %s\n    api_url: %s\n    channel_rate: 1000\n    channel_burst: 1000\n",
		transport, slackfake.BotToken, slackfake.ChannelSupport, g.slack.URL())
	if transport == "socket" {
		fmt.Fprintf(&yml, "    app_token: %s\n", slackfake.AppToken)
	} else {
		fmt.Fprintf(&yml, "    signing_secret: %s\n", slackfake.SigningSecret)
	}
	for _, ch := range chs {
		switch ch {
		case "web", "app":
			fmt.Fprintf(&yml, "  %s:\n    sites:\n      shop:\n        origins: [\"*\"]\n", ch)
		case "sms", "whatsapp":
			if g.twilio == nil {
				g.twilio = twiliotest.NewServer(t)
			}
			from := twiliotest.From
			if ch == "whatsapp" {
				from = twiliotest.WhatsAppFrom
			}
			fmt.Fprintf(&yml, "  %s:\n    account_sid: %s\n    auth_token: %s\n    from: \"%s\"\n    api_base_url: %s\n",
				ch, twiliotest.AccountSID, twiliotest.AuthToken, from, g.twilio.URL)
		case "email":
			g.imap, g.smtp = mailtest.NewIMAP(t, nil), mailtest.NewSMTP(t)
			fmt.Fprintf(&yml, "  email:\n    address: %s\n    imap:\n      host: %s\n      port: %d\n      security: none\n      password: %s\n      initial_scan: all\n",
				mailtest.Address, g.imap.Host, g.imap.Port, mailtest.IMAPPassword)
			fmt.Fprintf(&yml, "    smtp:\n      host: %s\n      port: %d\n      security: none\n      username: %s\n      password: %s\n",
				g.smtp.Host, g.smtp.Port, mailtest.SMTPUser, mailtest.SMTPPassword)
		case "telegram":
			if g.telegram == nil {
				g.telegram = telegramtest.NewServer(t, "")
			}
			fmt.Fprintf(&yml, "  telegram:\n    token: \"%s\"\n    mode: webhook\n    webhook_secret: loop-secret\n    api_endpoint: %s\n",
				telegramtest.Token, g.telegram.Endpoint())
		}
	}
	yml.WriteString(extra)
	file := filepath.Join(dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte(yml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml.String())
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, file, ln, log, io.Discard) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop within 30s")
			}
		})
	}
	t.Cleanup(g.stop)
	// Every part up, not only the bus that /readyz answers for.
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus(g.base + "/healthz")
		if err == nil && (code != http.StatusOK || !strings.Contains(body, `"status":"ok"`)) {
			err = fmt.Errorf("healthz %d %s", code, body)
		}
		return err
	})
	if transport == "socket" {
		bustest.Eventually(t, 10*time.Second, func() error {
			if !g.slack.Connected() {
				return errors.New("no Socket Mode connection")
			}
			return nil
		})
	}
	return g
}

func (g *loop) next() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	return g.seq
}

// agentSays posts text as the agent's reply in thread ts, the way the
// transport delivers it.
func (g *loop) agentSays(t *testing.T, channel, ts, text string) {
	t.Helper()
	n := g.next()
	body := slackfake.EventPayload(fmt.Sprintf("EvLoop%d", n), slackfake.AgentReply(slackfake.AgentUser, channel, ts, fmt.Sprintf("1790000000.%06d", n), text))
	g.deliver(t, "events", slackfake.JSON, body, func(env string) { g.slack.PushEvent(t, env, body, 0) })
}

// click clicks actionID on the card ts in channel.
func (g *loop) click(t *testing.T, channel, ts, actionID, value string) {
	t.Helper()
	payload := slackfake.Click(slackfake.AgentUser, channel, ts, actionID, value)
	g.deliver(t, "interactivity", slackfake.Form, slackfake.InteractionForm(payload), func(env string) { g.slack.PushInteraction(t, env, payload) })
}

// deliver sends what Slack sends: a signed POST in http mode, an envelope
// over the socket (waiting for its ack) in socket mode.
func (g *loop) deliver(t *testing.T, path, contentType string, body []byte, push func(env string)) {
	t.Helper()
	if g.transport == "http" {
		if code, answer := slackfake.Post(t, g.base, path, contentType, body); code != http.StatusOK {
			t.Fatalf("POST /channels/slack/%s answered %d %s", path, code, answer)
		}
		return
	}
	env := fmt.Sprintf("env-%d", g.next())
	push(env)
	bustest.Eventually(t, 10*time.Second, func() error {
		if _, ok := g.slack.Ack(env); !ok {
			return errors.New("envelope " + env + " not acknowledged")
		}
		return nil
	})
}

// waitRoot waits for the thread root (card) in channel.
func (g *loop) waitRoot(t *testing.T, channel string) slackfake.Call {
	t.Helper()
	var root slackfake.Call
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, r := range g.slack.Roots() {
			if r.Channel == channel {
				root = r
				return nil
			}
		}
		return fmt.Errorf("no thread in %s; posts: %d", channel, len(g.slack.Calls("chat.postMessage")))
	})
	return root
}

// waitInThread waits for a post containing text in thread ts.
func (g *loop) waitInThread(t *testing.T, ts, text string) {
	t.Helper()
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, p := range g.slack.Calls("chat.postMessage") {
			if p.ThreadTS == ts && strings.Contains(p.Text, text) {
				return nil
			}
		}
		return fmt.Errorf("nothing with %q in thread %s", text, ts)
	})
}

// waitCard waits until the card ts was last updated to contain every want.
func (g *loop) waitCard(t *testing.T, ts string, want ...string) {
	t.Helper()
	bustest.Eventually(t, 20*time.Second, func() error {
		var last *slackfake.Call
		for _, u := range g.slack.Calls("chat.update") {
			if u.TS == ts {
				last = &u
			}
		}
		if last == nil {
			return fmt.Errorf("card %s not updated", ts)
		}
		for _, w := range want {
			if !strings.Contains(last.Blocks, w) {
				return fmt.Errorf("card %s has no %q: %s", ts, w, last.Blocks)
			}
		}
		return nil
	})
}

// customer is one customer on one channel: how they write, and what they
// receive.
type customer struct {
	write    func(t *testing.T, text string)
	received func() []string
	want     string
}

// waitReply waits for the first thing the customer receives.
func (c *customer) waitReply(t *testing.T) string {
	t.Helper()
	var got []string
	bustest.Eventually(t, 20*time.Second, func() error {
		if got = c.received(); len(got) == 0 {
			return errors.New("the customer received nothing")
		}
		return nil
	})
	return got[0]
}

// customer returns the customer of channel ch: writing through the channel's
// real ingress, receiving at its provider's fake.
func (g *loop) customer(t *testing.T, ch string) *customer {
	t.Helper()
	switch ch {
	case "web", "app":
		return g.chatCustomer(t, ch)
	case "sms", "whatsapp":
		phone := "+14155550100"
		from, to := phone, twiliotest.From
		if ch == "whatsapp" {
			from, to = "whatsapp:"+phone, "whatsapp:"+twiliotest.WhatsAppFrom
		}
		want := plainReply
		if ch == "whatsapp" {
			want = whatsappReply
		}
		return &customer{
			write: func(t *testing.T, text string) {
				if code, body := twiliotest.PostWebhook(t, g.base+"/channels/"+ch+"/webhook", twiliotest.IncomingMessage("", from, to, text)); code != http.StatusOK {
					t.Fatalf("webhook answered %d %s", code, body)
				}
			},
			received: func() []string {
				var out []string
				for _, m := range g.twilio.Sent() {
					if m.To == from {
						out = append(out, m.Body)
					}
				}
				return out
			},
			want: want,
		}
	case "email":
		return &customer{
			write: func(t *testing.T, text string) {
				g.imap.Deliver(t, "INBOX", mailtest.CustomerMail("loop-1@customer.example", "Order 7781", text))
			},
			received: func() []string {
				var out []string
				for _, m := range g.smtp.Mails() {
					if len(m.To) == 0 || m.To[0] != mailtest.CustomerAddress {
						continue
					}
					raw := strings.ReplaceAll(string(m.Data), "=\r\n", "")
					// The HTML part the client shows, beside the plain text.
					if !strings.Contains(raw, "<strong>Good news</strong>") || !strings.Contains(raw, `<a href=3D"https://example.com/t/1">here</a>`) && !strings.Contains(raw, `<a href="https://example.com/t/1">here</a>`) {
						out = append(out, "no HTML part with the formatting in:\n"+raw)
						continue
					}
					out = append(out, plainPart(raw))
				}
				return out
			},
			want: plainReply,
		}
	case "telegram":
		return &customer{
			write: func(t *testing.T, text string) {
				update := map[string]any{"update_id": 1000 + g.next(), "message": map[string]any{
					"message_id": 7, "date": time.Now().Unix(), "text": text,
					"from": map[string]any{"id": 4242, "is_bot": false, "first_name": "Ann"},
					"chat": map[string]any{"id": 4242, "type": "private", "first_name": "Ann"},
				}}
				postTelegram(t, g.base, update)
			},
			received: func() []string {
				var out []string
				for _, s := range g.telegram.Sent() {
					if s.ChatID != 4242 {
						continue
					}
					if s.ParseMode != "MarkdownV2" {
						out = append(out, "sent without MarkdownV2: "+s.Raw)
						continue
					}
					out = append(out, s.Raw)
				}
				return out
			},
			want: telegramRaw,
		}
	}
	t.Fatalf("no customer for channel %s", ch)
	return nil
}

// postTelegram delivers a Telegram update to the webhook of the omnigate at
// base, as Telegram does, and fails the test unless it is taken.
func postTelegram(t *testing.T, base string, update map[string]any) {
	t.Helper()
	req := telegramtest.WebhookRequest(t, base+"/channels/telegram/webhook", "loop-secret", update)
	req.RequestURI = ""
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("telegram webhook answered %d", resp.StatusCode)
	}
}

// plainPart returns the text/plain part of a mail as one line of text.
func plainPart(raw string) string {
	i := strings.Index(raw, "Content-Type: text/plain")
	if i < 0 {
		return "no text/plain part"
	}
	body := raw[i:]
	if j := strings.Index(body, "\r\n\r\n"); j >= 0 {
		body = body[j+4:]
	}
	if j := strings.Index(body, "\r\n--"); j >= 0 {
		body = body[:j]
	}
	return strings.TrimSpace(strings.ReplaceAll(body, "=3D", "="))
}

// chatCustomer is a visitor of site shop on the web or app channel, on a
// WebSocket.
func (g *loop) chatCustomer(t *testing.T, ch string) *customer {
	t.Helper()
	wsURL := "ws" + strings.TrimPrefix(g.base, "http") + "/channels/" + ch + "/ws"
	hdr := http.Header{"Origin": {g.base}}
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", wsURL, err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteJSON(map[string]any{"type": "hello", "site": "shop"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var agent []string
	welcome := make(chan error, 1)
	go func() {
		first := true
		for {
			var f struct {
				Type, From, Text, Code, Message string
			}
			if err := conn.ReadJSON(&f); err != nil {
				if first {
					welcome <- err
				}
				return
			}
			if first {
				first = false
				if f.Type != "welcome" {
					welcome <- fmt.Errorf("first frame %s %s: %s", f.Type, f.Code, f.Message)
					return
				}
				welcome <- nil
			}
			if f.Type == "message" && f.From == "agent" {
				mu.Lock()
				agent = append(agent, f.Text)
				mu.Unlock()
			}
		}
	}()
	select {
	case err := <-welcome:
		if err != nil {
			t.Fatalf("hello: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no welcome")
	}
	return &customer{
		write: func(t *testing.T, text string) {
			if err := conn.WriteJSON(map[string]any{"type": "message", "client_id": fmt.Sprintf("c%d", g.next()), "text": text}); err != nil {
				t.Fatal(err)
			}
		},
		received: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), agent...)
		},
		want: plainReply,
	}
}

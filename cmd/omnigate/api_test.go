package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/sign"
)

// The integrator API and the transcript page (issue 19), through a running
// omnigate whose conversations come in through real ingress.

const (
	apiToken   = "api-admin-token-0123456789abcdef"
	linkSecret = "transcript-link-secret-0123456789"
)

// transcriptLink finds the card's Transcript link in Slack blocks.
var transcriptLink = regexp.MustCompile(`<(https?://[^|>]+/conversations/[^|>]+)\|Transcript>`)

// apiLoop is a running omnigate with SMS, WhatsApp and Slack, an admin token
// and a link secret, and one conversation of a customer who wrote by SMS
// (with a picture) and on WhatsApp, and got an agent's reply.
type apiLoop struct {
	*loop
	conv  string // the conversation's id
	card  string // the Transcript link on its card
	media string // the picture's URL
}

func startAPILoop(t *testing.T) *apiLoop {
	t.Helper()
	t.Setenv("OMNIGATE_HTTP_ADMIN_TOKEN", apiToken)
	t.Setenv("OMNIGATE_HTTP_LINK_SECRET", linkSecret)
	g := &apiLoop{loop: startLoop(t, "http", []string{"sms", "whatsapp"}, "")}
	byText, onWhatsApp := g.customer(t, "sms"), g.customer(t, "whatsapp")
	g.media = g.twilio.AddMedia("receipt.png", "image/png", []byte("\x89PNG\r\n\x1a\nnot really a picture"))
	form := twiliotest.IncomingMessage("", "+14155550100", twiliotest.From, "Where is my order 7781? Receipt attached.")
	form.Set("NumMedia", "1")
	form.Set("MediaUrl0", g.media)
	form.Set("MediaContentType0", "image/png")
	if code, body := twiliotest.PostWebhook(t, g.base+"/channels/sms/webhook", form); code != http.StatusOK {
		t.Fatalf("webhook answered %d %s", code, body)
	}
	root := g.waitRoot(t, slackfake.ChannelSupport)
	g.waitInThread(t, root.TS, "Where is my order 7781?")
	g.agentSays(t, root.Channel, root.TS, agentText)
	if got := byText.waitReply(t); got != plainReply {
		t.Fatalf("the customer received %q", got)
	}
	onWhatsApp.write(t, "Thanks! Writing from WhatsApp now <b>bold?</b>")
	g.waitInThread(t, root.TS, "Writing from WhatsApp now")
	g.conv = conversationID.FindString(root.Blocks)
	// The card's latest drawing carries the freshest link.
	bustest.Eventually(t, 20*time.Second, func() error {
		blocks := root.Blocks
		for _, u := range g.slack.Calls("chat.update") {
			if u.TS == root.TS {
				blocks = u.Blocks
			}
		}
		m := transcriptLink.FindStringSubmatch(blocks)
		if m == nil {
			return fmt.Errorf("no Transcript link on the card: %s", blocks)
		}
		g.card = html.UnescapeString(m[1]) // mrkdwn escapes & as &amp;
		return nil
	})
	// The transcript has the WhatsApp message once the pipeline wrote it.
	bustest.Eventually(t, 20*time.Second, func() error {
		_, body := g.get(t, "/api/v1/conversations/"+g.conv+"/transcript?limit=1000", apiToken)
		if !strings.Contains(body, "Writing from WhatsApp now") {
			return fmt.Errorf("transcript without the WhatsApp message: %s", body)
		}
		return nil
	})
	return g
}

// get GETs path (or an absolute URL) with token as bearer ("" for none).
func (g *apiLoop) get(t *testing.T, path, token string) (*http.Response, string) {
	t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = g.base + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// getJSON GETs path with the admin token, wants 200 and decodes into v.
func (g *apiLoop) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, body := g.get(t, path, apiToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// TestAPI_TranscriptPageFromCard: the Transcript link on the Slack card
// opens the whole conversation across SMS and WhatsApp, with the agent's
// reply, the picture's link and who wrote what; a changed or expired link
// gets a 403 page that says what to do. Chromium renders it under its strict
// CSP, and the screenshot is saved.
func TestAPI_TranscriptPageFromCard(t *testing.T) {
	g := startAPILoop(t)
	u, err := url.Parse(g.card)
	if err != nil || u.Path != "/conversations/"+g.conv || u.Query().Get("sig") == "" {
		t.Fatalf("card link %q (%v)", g.card, err)
	}
	if exp := sign.Expires(u.Query()); exp.Sub(time.Now()) < 7*24*time.Hour-time.Minute || exp.Sub(time.Now()) > 7*24*time.Hour+time.Minute {
		t.Errorf("link expires %v, want in 7 days (http.link_ttl's default)", exp)
	}
	resp, body := g.get(t, g.card, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET card link: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: CSP %q, Referrer-Policy %q", csp, resp.Header.Get("Referrer-Policy"))
	}
	if !strings.Contains(body, "Thanks! Writing from WhatsApp now &lt;b&gt;bold?&lt;/b&gt;") {
		t.Error("the customer's text is not escaped")
	}
	text := html.UnescapeString(body)
	for _, want := range []string{
		"Where is my order 7781? Receipt attached.",          // by SMS
		"Thanks! Writing from WhatsApp now <b>bold?</b>",     // on WhatsApp
		"<strong>Good news</strong>: your order ships today", // the agent's reply, rendered
		`<a href="https://example.com/t/1">here</a>`,         // with its link
		`href="` + g.media + `"`, "receipt.png", "image/png", // the picture
		">sms<", ">whatsapp<", "customer → us", "us → customer", // channels, directions
		"Alice Agent",                               // who answered
		"sms:+14155550100", "whatsapp:+14155550100", // the contact's identities
		g.conv,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "check the warehouse") {
		t.Error("the page shows an agents' note")
	}
	// Order: the SMS, then the reply, then the WhatsApp message.
	if a, b, c := strings.Index(body, "Receipt attached"), strings.Index(body, "Good news"), strings.Index(body, "Writing from WhatsApp"); !(a < b && b < c) {
		t.Errorf("messages out of order: %d %d %d", a, b, c)
	}

	t.Run("forged or expired links get 403", func(t *testing.T) {
		q := u.Query()
		other := *u
		other.Path = "/conversations/01JD0000000000000000000000"
		for name, link := range map[string]string{
			"signature changed":  strings.Replace(g.card, "sig=", "sig=AA", 1),
			"expiry moved":       strings.Replace(g.card, "exp="+q.Get("exp"), "exp=9999999999", 1),
			"other conversation": other.String(),
			"no signature":       g.base + "/conversations/" + g.conv,
		} {
			resp, body := g.get(t, link, "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This transcript link is not valid") || strings.Contains(body, "Receipt attached") {
				t.Errorf("%s: %d, want 403 'not valid' without the transcript:\n%s", name, resp.StatusCode, body)
			}
		}
		// Signed with the same key an hour and a week ago: expired an hour ago.
		key, err := linkKey(t.Context(), linkSecret, nil)
		if err != nil {
			t.Fatal(err)
		}
		old := sign.NewLinks(key, func() time.Time { return time.Now().Add(-7*24*time.Hour - time.Hour) })
		resp, body := g.get(t, old.Sign("/conversations/"+g.conv, 7*24*time.Hour), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This transcript link has expired") || !strings.Contains(body, "card in Slack again") {
			t.Errorf("expired: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("chromium", func(t *testing.T) { browseTranscript(t, g.card) })
}

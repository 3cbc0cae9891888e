package slack_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// TestDesk_AgentFiles relays an agent's file as an attachment whose signed
// link the adapter serves from Slack with the bot token; a customer's
// attachments show as links in the thread.
func TestDesk_AgentFiles(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "photo attached", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)

	ev := slackfake.AgentReply(agentUser, ch, ts, "1700000005.000100", "Here is the form")
	ev["subtype"] = "file_share"
	ev["files"] = []any{map[string]any{
		"id": "F0FORM001", "name": "form v2.pdf", "title": "form", "mimetype": "application/pdf", "size": 1234,
		"url_private": d.fake.FileURL("T0TEST-F0FORM001/form.pdf"),
	}}
	if code, _ := d.postEvent(slackfake.EventPayload("EvF1", ev), 0); code != http.StatusOK {
		t.Fatalf("answered %d", code)
	}
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	if len(outs[0].Attachments) != 1 {
		t.Fatalf("attachments %+v, want the file", outs[0].Attachments)
	}
	att := outs[0].Attachments[0]
	if att.Name != "form v2.pdf" || att.ContentType != "application/pdf" || att.Size != 1234 {
		t.Errorf("attachment %+v", att)
	}
	u, err := url.Parse(att.URL)
	if err != nil || !strings.HasPrefix(att.URL, d.env.Server.URL+"/channels/slack/files/F0FORM001/") || u.Query().Get("sig") == "" {
		t.Fatalf("attachment URL %q, want a signed link under the public URL", att.URL)
	}
	get := func(target string) (int, string) {
		rec := httptest.NewRecorder()
		d.env.Mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get(u.RequestURI())
	if code != http.StatusOK || body != "file contents of /files-pri/T0TEST-F0FORM001/form.pdf" {
		t.Errorf("file link answered %d %q", code, body)
	}
	q := u.Query()
	q.Set("sig", strings.Repeat("0", 64))
	if code, _ := get(u.EscapedPath() + "?" + q.Encode()); code != http.StatusForbidden {
		t.Errorf("forged file link answered %d, want 403", code)
	}
	q = u.Query()
	q.Set("exp", "1")
	if code, _ := get(u.EscapedPath() + "?" + q.Encode()); code != http.StatusForbidden {
		t.Errorf("file link with another expiry answered %d, want 403", code)
	}
}

// TestDesk_CustomerAttachments shows a customer's files as links, and a
// message without text as such.
func TestDesk_CustomerAttachments(t *testing.T) {
	d := newDesk(t, nil)
	m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m.From = ann
	m.Attachments = []core.Attachment{
		{Name: "photo.jpg", ContentType: "image/jpeg", Size: 204800, URL: "https://api.twilio.com/media/ME1"},
		{Name: "scan|<x>.pdf", Key: "media/abc"},
	}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectIn("sms", string(ann)), m); err != nil {
		t.Fatal(err)
	}
	posts := d.posts(2)
	want := ":paperclip: <https://api.twilio.com/media/ME1|photo.jpg> (image/jpeg, 200 KB)\n:paperclip: scan|&lt;x&gt;.pdf (stored as `media/abc`)"
	if posts[1].Text != want {
		t.Errorf("attachments posted as %q, want %q", posts[1].Text, want)
	}
	d.customer(ann, "", nil)
	if p := d.posts(3)[2]; !strings.Contains(p.Text, "without text") {
		t.Errorf("empty message posted as %q", p.Text)
	}
}

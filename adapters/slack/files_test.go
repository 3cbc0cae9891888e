package slack_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
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

// media is a customer channel's media host: public files, one behind HTTP
// authentication (Twilio's with Enforce HTTP Auth on), one served without a
// length.
func media(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(png)
		case "/streamed.txt":
			w.Header().Set("Content-Type", "text/plain")
			w.(http.Flusher).Flush() // chunked: no Content-Length
			_, _ = w.Write([]byte("a streamed file"))
		case "/big.bin":
			_, _ = w.Write(make([]byte, 4096))
		case "/private.jpg":
			http.Error(w, "authenticate", http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// png is a 1x1 PNG.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// TestDesk_CustomerAttachments: a customer's files are uploaded into the
// thread with files upload v2 (getUploadURLExternal, the upload,
// completeUploadExternal in the thread, under a comment naming the
// customer), whether their length is known or not; one larger than
// max_upload_bytes, one the channel's link refuses and one Slack does not
// take are shown as links with a note why; a file kept by its channel (a key,
// no URL) as before. A message without text says so.
func TestDesk_CustomerAttachments(t *testing.T) {
	d := newDesk(t, func(c *slack.Config) { c.MaxUploadBytes = 1024 })
	srv := media(t)
	m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m.From = ann
	m.Text = "see attached"
	m.Attachments = []core.Attachment{
		{Name: "photo.png", ContentType: "image/png", URL: srv.URL + "/photo.png"},
		{Name: "notes.txt", ContentType: "text/plain", URL: srv.URL + "/streamed.txt"},
		{Name: "big.bin", Size: 4096, URL: srv.URL + "/big.bin"},
		{Name: "private.jpg", ContentType: "image/jpeg", URL: srv.URL + "/private.jpg"},
		{Name: "scan|<x>.pdf", Key: "media/abc"},
	}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectIn("sms", string(ann)), m); err != nil {
		t.Fatal(err)
	}
	posts := d.posts(5) // card, text, big, private, scan
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	ups := d.fake.Uploads()
	if len(ups) != 2 {
		t.Fatalf("%d uploads, want photo.png and notes.txt: %+v", len(ups), ups)
	}
	for i, want := range []struct {
		name string
		data []byte
	}{{"photo.png", png}, {"notes.txt", []byte("a streamed file")}} {
		u := ups[i]
		if u.Name != want.name || u.Length != len(want.data) || string(u.Data) != string(want.data) {
			t.Errorf("upload %d: %s, %d bytes declared, %q; want %s %q", i, u.Name, u.Length, u.Data, want.name, want.data)
		}
		if !u.Shared || u.Channel != ch || u.ThreadTS != ts || u.Title != want.name || !strings.Contains(u.Comment, "+15550001111 (SMS) sent "+want.name) {
			t.Errorf("upload %d shared %v in %s/%s titled %q with %q, want in the thread %s/%s naming the customer", i, u.Shared, u.Channel, u.ThreadTS, u.Title, u.Comment, ch, ts)
		}
	}
	texts := map[string]string{}
	for _, p := range inThread(posts, ts) {
		texts[p.Text] = p.Username
	}
	for _, want := range []string{
		"see attached",
		":paperclip: <" + srv.URL + "/big.bin|big.bin> (4 KB)\n_Not uploaded to Slack: larger than the 1 KB upload limit._",
		":paperclip: <" + srv.URL + "/private.jpg|private.jpg> (image/jpeg)\n_Not uploaded to Slack: not fetched: the channel's link answered HTTP 401._",
		":paperclip: scan|&lt;x&gt;.pdf (stored as `media/abc`)",
	} {
		if u, ok := texts[want]; !ok || u != "+15550001111 (SMS)" {
			t.Errorf("no post %q under the customer's name in the thread: %q", want, texts)
		}
	}
	// What was posted for each attachment is recorded: a retry posts none again.
	var rec string
	if _, err := d.env.Store.Records("slack_messages").Get(t.Context(), "part:"+m.ID+":file-0", &rec); err != nil || rec != "file:"+ups[0].ID {
		t.Errorf("part record of the photo %q (%v), want file:%s", rec, err, ups[0].ID)
	}

	// Slack refuses the upload: the link, with Slack's reason.
	d.fake.FailUploads("file_uploads_disabled")
	m2 := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m2.From = ann
	m2.Attachments = []core.Attachment{{Name: "photo.png", ContentType: "image/png", URL: srv.URL + "/photo.png"}}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectIn("sms", string(ann)), m2); err != nil {
		t.Fatal(err)
	}
	want := ":paperclip: <" + srv.URL + "/photo.png|photo.png> (image/png)\n_Not uploaded to Slack: the upload to Slack failed (file_uploads_disabled)._"
	if p := d.posts(6)[5]; p.Text != want {
		t.Errorf("refused upload posted as %q, want %q", p.Text, want)
	}
	d.customer(ann, "", nil)
	if p := d.posts(7)[6]; !strings.Contains(p.Text, "without text") {
		t.Errorf("empty message posted as %q", p.Text)
	}
}

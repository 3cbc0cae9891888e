package harness_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/bench/internal/harness"
)

func TestSMSWebhook_Signed(t *testing.T) {
	var got http.Header
	var form map[string][]string
	var full string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, form = r.Header, r.PostForm
		full = "http://" + r.Host + r.URL.Path
	}))
	defer srv.Close()
	wh := harness.SMSWebhook{SID: harness.MessageSID(7), From: "+15550000001", Body: "f1 s1 n1"}
	code, err := wh.Post(context.Background(), srv.Client(), srv.URL)
	if err != nil || code != http.StatusOK {
		t.Fatalf("post: %d %v", code, err)
	}
	if !strings.HasSuffix(full, "/channels/sms/webhook") {
		t.Errorf("posted to %s", full)
	}
	if want := sms.Sign(harness.AuthToken, full, form); got.Get(sms.SignatureHeader) != want {
		t.Errorf("signature %q, want %q", got.Get(sms.SignatureHeader), want)
	}
	if len(wh.SID) != 34 || form["Body"][0] != "f1 s1 n1" || form["From"][0] != "+15550000001" {
		t.Errorf("sid %q, form %v", wh.SID, form)
	}
}

func TestTwilio_Records(t *testing.T) {
	tw := harness.NewTwilio(true)
	defer tw.Close()
	resp, err := http.PostForm(tw.URL+"/2010-04-01/Accounts/"+harness.AccountSID+"/Messages.json",
		map[string][]string{"To": {"+15550000001"}, "Body": {"reply f1 s1 r1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("send answered %d", resp.StatusCode)
	}
	sent := tw.Sent(true)
	if len(sent) != 1 || sent[0].To != "+15550000001" || sent[0].Body != "reply f1 s1 r1" {
		t.Fatalf("sent %+v", sent)
	}
	if again := tw.Sent(true); len(again) != 0 {
		t.Errorf("drained, yet %d again", len(again))
	}
}

func TestProc_StopAndKillAll(t *testing.T) {
	var g harness.Group
	defer g.KillAll()
	p, err := harness.Start("sleep", harness.StartOptions{}, "sleep", "60")
	if err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	g.Add(p)
	if !p.Stop(5 * time.Second) {
		t.Error("sleep did not end on SIGTERM")
	}
	// A process that ignores SIGTERM is killed by KillAll.
	q, err := harness.Start("sh", harness.StartOptions{}, "sh", "-c", "trap '' TERM; sleep 60")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	g.Add(q)
	g.KillAll()
	if !q.Exited() {
		t.Error("KillAll returned before the process exited")
	}
}

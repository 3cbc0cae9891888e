package slack_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/adapters/slack"
)

// Seeds are payloads as Slack documents them.
var (
	eventSeeds = []string{
		`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`,
		`{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"Live long and prospect.","ts":"1355517523.000005","event_ts":"1355517523.000005","channel_type":"channel","thread_ts":"1355517500.000001"},"type":"event_callback","authed_users":["U123ABC456"],"event_id":"Ev123ABC456","event_time":1355517523}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","subtype":"message_changed","hidden":true,"channel":"C1","ts":"1.2","message":{"type":"message","user":"U1","text":"edited","ts":"1.1"}}}`,
		`{"type":"event_callback","event_id":"Ev2","event":{"type":"message","subtype":"file_share","channel":"C1","user":"U1","ts":"2.2","thread_ts":"2.1","files":[{"id":"F1","name":"a.png","mimetype":"image/png","size":12,"url_private":"https://files.slack.com/files-pri/T1-F1/a.png"}]}}`,
		`{"type":"event_callback","event_id":"Ev3","event":{"type":"reaction_added","user":"U1","reaction":"thumbsup"}}`,
		`{"type":"app_rate_limited","token":"x","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}`,
		`{"type":"event_callback","event":null}`,
		`[]`, `null`, `{}`, `{"type":1}`,
	}
	interactionSeeds = []string{
		`{"type":"block_actions","user":{"id":"U1","username":"a"},"api_app_id":"A1","token":"t","container":{"type":"message","message_ts":"1.1","channel_id":"C1","is_ephemeral":false},"trigger_id":"1.2.3","team":{"id":"T1","domain":"d"},"channel":{"id":"C1","name":"c"},"message":{"type":"message","ts":"1.1","text":"card"},"response_url":"https://hooks.slack.com/actions/1","actions":[{"action_id":"omni_claim","block_id":"omni_actions","text":{"type":"plain_text","text":"Claim"},"value":"01ARZ3NDEKTSV4RRFFQ69G5FAV","type":"button","action_ts":"1.3"}]}`,
		`{"type":"block_actions","user":{"id":"U1"},"container":{"message_ts":"1.1","channel_id":"C1"},"actions":[{"action_id":"omni_transfer","type":"static_select","selected_option":{"text":{"type":"plain_text","text":"billing"},"value":"billing"}}]}`,
		`{"type":"view_submission","view":{"id":"V1","state":{"values":{}}}}`,
		`{"type":"shortcut","callback_id":"x","trigger_id":"1"}`,
		`{"type":""}`, `{"actions":"nope"}`, `[1]`,
	}
	commandSeeds = []string{
		"token=x&team_id=T1&team_domain=d&channel_id=C1&channel_name=c&user_id=U1&user_name=a&command=%2Fomni&text=close+01ARZ3NDEKTSV4RRFFQ69G5FAV&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=1.2",
		"user_id=U1&channel_id=C1", "command=%2Fomni&text=help", "%zz", "",
	}
)

// FuzzParseEvents: an Events API payload parses or fails with ErrMalformed;
// nothing panics.
func FuzzParseEvents(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := slack.ParseEvents(raw); err != nil && !errors.Is(err, slack.ErrMalformed) {
			t.Fatalf("error %v does not match ErrMalformed", err)
		}
	})
}

// FuzzParseInteraction: the same for interaction payloads, as JSON and as the
// form body of /interactivity, and for slash command forms.
func FuzzParseInteraction(f *testing.F) {
	for _, s := range interactionSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(url.Values{"payload": {s}}.Encode()), true)
	}
	for _, s := range commandSeeds {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, form bool) {
		if form {
			if err := slack.ParseCommand(raw); err != nil && !errors.Is(err, slack.ErrMalformed) {
				t.Fatalf("command: error %v does not match ErrMalformed", err)
			}
			return
		}
		if err := slack.ParseInteraction(raw); err != nil && !errors.Is(err, slack.ErrMalformed) {
			t.Fatalf("error %v does not match ErrMalformed", err)
		}
	})
}

// FuzzParseSocketFrame: a Socket Mode message parses, with a type, or fails
// with ErrMalformed; nothing panics. The seeds, in
// testdata/fuzz/FuzzParseSocketFrame, are the messages Slack's Socket Mode
// documentation shows: hello, the three disconnects and an events_api
// envelope.
func FuzzParseSocketFrame(f *testing.F) {
	f.Add([]byte(`{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"wss-parent.slack.com"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		typ, _, err := slack.ParseSocketFrame(raw)
		if err != nil && !errors.Is(err, slack.ErrMalformed) {
			t.Fatalf("error %v does not match ErrMalformed", err)
		}
		if err == nil && typ == "" {
			t.Fatal("a message without type accepted")
		}
	})
}

func TestParseSocketFrame(t *testing.T) {
	tests := []struct {
		raw, typ, reason string
		bad              bool
	}{
		{`{"type":"hello","num_connections":1,"debug_info":{"host":"applink-7fc4fdbb64-4x5xq","build_number":10,"approximate_connection_time":18060},"connection_info":{"app_id":"A01K58AR4RF"}}`, "hello", "", false},
		{`{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"wss-parent.slack.com"}}`, "disconnect", "link_disabled", false},
		{`{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"applink-1"}}`, "disconnect", "refresh_requested", false},
		{`{"envelope_id":"dbdd0ef3-1543-4f94-bfb4-133d0e6c1545","payload":{"type":"event_callback"},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}`, "events_api", "", false},
		{`{"payload":{},"type":"events_api"}`, "", "", true},
		{`{"reason":"warning"}`, "", "", true},
		{`[]`, "", "", true},
		{`not json`, "", "", true},
	}
	for _, tt := range tests {
		typ, reason, err := slack.ParseSocketFrame([]byte(tt.raw))
		if (err != nil) != tt.bad || typ != tt.typ || reason != tt.reason {
			t.Errorf("ParseSocketFrame(%.40s) = %q %q %v", tt.raw, typ, reason, err)
		}
	}
}

func TestParseSeeds(t *testing.T) {
	for i, s := range eventSeeds {
		err := slack.ParseEvents([]byte(s))
		if wantErr := i >= 6; (err != nil) != wantErr {
			t.Errorf("event seed %d: err %v", i, err)
		}
	}
	for i, s := range interactionSeeds {
		err := slack.ParseInteraction([]byte(s))
		if wantErr := i >= 4; (err != nil) != wantErr {
			t.Errorf("interaction seed %d: err %v", i, err)
		}
	}
	for i, s := range commandSeeds {
		err := slack.ParseCommand([]byte(s))
		if wantErr := i >= 2; (err != nil) != wantErr {
			t.Errorf("command seed %d: err %v", i, err)
		}
	}
}

func TestSplitText(t *testing.T) {
	long := strings.Repeat("a", 2500) + " " + strings.Repeat("b", 2500) + "\n\n" + strings.Repeat("c", 100)
	tests := []struct {
		in    string
		limit int
		want  []string
	}{
		{"short", 10, []string{"short"}},
		{"  padded  ", 10, []string{"padded"}},
		{"", 10, nil},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"para one\n\npara two", 12, []string{"para one", "para two"}},
		{"aaaaaaaaaaaa", 5, []string{"aaaaa", "aaaaa", "aa"}},
		{"x &amp; y", 6, []string{"x", "&amp;", "y"}},
		{"see you <https://example.com|link> ok", 30, []string{"see you", "<https://example.com|link> ok"}},
		{"ééééé", 2, []string{"éé", "éé", "é"}},
		{long, 3000, []string{strings.Repeat("a", 2500), strings.Repeat("b", 2500) + "\n\n" + strings.Repeat("c", 100)}},
	}
	for _, tt := range tests {
		got := slack.SplitText(tt.in, tt.limit)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("SplitText(%.30q, %d) = %.80q, want %.80q", tt.in, tt.limit, got, tt.want)
		}
		for _, p := range got {
			if !utf8.ValidString(p) {
				t.Errorf("piece %q is not valid UTF-8", p)
			}
		}
	}
}

func TestParsePermalink(t *testing.T) {
	tests := []struct{ in, ch, ts string }{
		{"https://acme.slack.com/archives/C0123ABC/p1712345678000100", "C0123ABC", "1712345678.000100"},
		{"https://acme.slack.com/archives/C0123ABC/p1712345679000200?thread_ts=1712345678.000100&cid=C0123ABC", "C0123ABC", "1712345678.000100"},
		{"https://acme.enterprise.slack.com/archives/G0123ABC/p1712345678000100", "G0123ABC", "1712345678.000100"},
		{"https://evil.example.com/archives/C0123ABC/p1712345678000100", "", ""},
		{"http://acme.slack.com/archives/C0123ABC/p1712345678000100", "", ""},
		{"https://acme.slack.com/archives/C0123ABC/x1", "", ""},
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "", ""},
	}
	for _, tt := range tests {
		ch, ts, ok := slack.ParsePermalink(tt.in)
		if ch != tt.ch || ts != tt.ts || ok != (tt.ch != "") {
			t.Errorf("ParsePermalink(%q) = %q %q %v, want %q %q", tt.in, ch, ts, ok, tt.ch, tt.ts)
		}
	}
}

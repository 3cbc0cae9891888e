package core_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/omnigate/omnigate/core"
)

const schemaPath = "../docs/envelope.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return s
}

func schemaAccepts(t *testing.T, s *jsonschema.Schema, doc []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("unmarshal %.200s: %v", doc, err)
	}
	return s.Validate(v)
}

// TestSchema_AcceptsEncoded checks that what Go writes, the schema accepts.
func TestSchema_AcceptsEncoded(t *testing.T) {
	s := compileSchema(t)
	tests := []struct {
		name string
		msg  func() *core.Message
	}{
		{"inbound sms, every field", inboundSMS},
		{"outbound to", func() *core.Message {
			m := core.NewMessage(core.KindMessage, core.Outbound, "email")
			m.To = core.NewIdentity("email", "ann@example.com")
			m.HTML = "<p>Thanks!</p>"
			return m
		}},
		{"outbound by conversation", func() *core.Message {
			m := core.NewMessage(core.KindMessage, core.Outbound, "web")
			m.ConversationID = "cv_1"
			m.Text = "Hello"
			return m
		}},
		{"event", func() *core.Message {
			m := core.NewMessage(core.KindEvent, core.Outbound, "sms")
			m.Type = "delivery.failed"
			m.ReplyTo = core.NewID()
			m.Meta = map[string]string{"error_code": "30003"}
			return m
		}},
		{"inbound event", func() *core.Message {
			m := core.NewMessage(core.KindEvent, core.Inbound, "telegram")
			m.Type = "conversation.assigned"
			return m
		}},
		{"every limit reached", func() *core.Message {
			m := core.NewMessage(core.KindMessage, core.Inbound, strings.Repeat("c", 32))
			m.Type = "t" + strings.Repeat("x", 63)
			m.From = core.NewIdentity("web", strings.Repeat("v", core.MaxAddressBytes))
			m.Text = strings.Repeat("t", core.MaxTextBytes)
			m.HTML = strings.Repeat("h", core.MaxHTMLBytes)
			for i := range core.MaxAttachments {
				m.Attachments = append(m.Attachments, core.Attachment{
					Name: strings.Repeat("n", core.MaxAttachmentNameBytes), ContentType: "application/octet-stream",
					Size: 1 << 62, Key: fmt.Sprint("k", i),
				})
			}
			for range core.MaxQuickReplies {
				m.QuickReplies = append(m.QuickReplies, strings.Repeat("q", core.MaxQuickReplyBytes))
			}
			m.Meta = map[string]string{}
			for i := range core.MaxMetaEntries {
				m.Meta[fmt.Sprintf("%0128d", i)] = strings.Repeat("v", core.MaxMetaValueBytes)
			}
			return m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.msg().Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if err := schemaAccepts(t, s, data); err != nil {
				t.Errorf("schema rejects an encoded message: %v", err)
			}
		})
	}
}

// baseDoc is a valid inbound message as a JSON object.
func baseDoc() map[string]any {
	return map[string]any{
		"v": 1, "id": "01HZY3K8Q2XJ4V6M9N0P1R2S3T", "kind": "message", "direction": "inbound",
		"channel": "sms", "from": "sms:+15551234567", "text": "hi",
	}
}

// TestSchema_AgreesWithDecode runs one table of documents through both the
// schema and Decode: they must agree on every row, so neither can drift.
func TestSchema_AgreesWithDecode(t *testing.T) {
	s := compileSchema(t)
	manyAttachments := func(n int) []any {
		var as []any
		for range n {
			as = append(as, map[string]any{"key": "k"})
		}
		return as
	}
	manyMeta := func(n int) map[string]any {
		mm := map[string]any{}
		for i := range n {
			mm[fmt.Sprint(i)] = "v"
		}
		return mm
	}
	tests := []struct {
		name   string
		modify func(d map[string]any)
		valid  bool
	}{
		{name: "base", modify: func(map[string]any) {}, valid: true},
		{name: "unknown fields", valid: true, modify: func(d map[string]any) {
			d["x_future"] = map[string]any{"a": []any{1, nil}}
			d["Text"] = 5
		}},
		{name: "event without from", valid: true, modify: func(d map[string]any) {
			d["kind"], d["type"] = "event", "delivery.delivered"
			delete(d, "from")
		}},
		{name: "outbound with to", valid: true, modify: func(d map[string]any) {
			d["direction"], d["to"] = "outbound", "email:ann@example.com"
			delete(d, "from")
		}},
		{name: "outbound with conversation", valid: true, modify: func(d map[string]any) {
			d["direction"], d["conversation"] = "outbound", "cv_1"
			delete(d, "from")
		}},
		{name: "every optional field", valid: true, modify: func(d map[string]any) {
			d["type"] = "reaction"
			d["external"] = map[string]any{"message": "m", "thread": "t", "chat": "c"}
			d["to"] = "sms:+1555"
			d["contact"], d["conversation"] = "ct", "cv"
			d["html"] = "<p>hi</p>"
			d["attachments"] = []any{map[string]any{"name": "a.png", "content_type": "image/png; q=1", "size": 0, "url": "https://x/a.png"}}
			d["quick_replies"] = []any{"Track my order", "Talk to an agent"}
			d["reply_to"], d["language"] = "01HZY3K8Q2XJ4V6M9N0P1R2S3V", "pt-BR"
			d["sent_at"], d["received_at"] = "2025-03-14T09:26:53.5-05:00", "2025-03-14T14:26:54Z"
			d["meta"] = map[string]any{"k": "v"}
		}},
		{name: "colon in address", valid: true, modify: func(d map[string]any) { d["from"] = "matrix:@ann:example.org" }},
		{name: "longest fields", valid: true, modify: func(d map[string]any) {
			d["channel"] = strings.Repeat("c", 32)
			d["type"] = "t" + strings.Repeat("x", 63)
			d["from"] = "web:" + strings.Repeat("a", 512)
			d["text"] = strings.Repeat("a", core.MaxTextBytes)
			d["html"] = strings.Repeat("a", core.MaxHTMLBytes)
			as := manyAttachments(core.MaxAttachments)
			as[0] = map[string]any{"url": "u", "name": strings.Repeat("n", core.MaxAttachmentNameBytes)}
			d["attachments"] = as
			mm := manyMeta(core.MaxMetaEntries - 1)
			mm[strings.Repeat("k", core.MaxMetaKeyBytes)] = strings.Repeat("v", core.MaxMetaValueBytes)
			d["meta"] = mm
		}},

		{name: "missing v", modify: func(d map[string]any) { delete(d, "v") }},
		{name: "v 2", modify: func(d map[string]any) { d["v"] = 2 }},
		{name: "v string", modify: func(d map[string]any) { d["v"] = "1" }},
		{name: "missing id", modify: func(d map[string]any) { delete(d, "id") }},
		{name: "lower-case id", modify: func(d map[string]any) { d["id"] = "01hzy3k8q2xj4v6m9n0p1r2s3t" }},
		{name: "short id", modify: func(d map[string]any) { d["id"] = "01HZY3K8Q2" }},
		{name: "overflowing id", modify: func(d map[string]any) { d["id"] = "8ZZZZZZZZZZZZZZZZZZZZZZZZZ" }},
		{name: "missing kind", modify: func(d map[string]any) { delete(d, "kind") }},
		{name: "unknown kind", modify: func(d map[string]any) { d["kind"] = "note" }},
		{name: "missing direction", modify: func(d map[string]any) { delete(d, "direction") }},
		{name: "unknown direction", modify: func(d map[string]any) { d["direction"] = "sideways" }},
		{name: "missing channel", modify: func(d map[string]any) { delete(d, "channel") }},
		{name: "upper-case channel", modify: func(d map[string]any) { d["channel"] = "SMS" }},
		{name: "channel too long", modify: func(d map[string]any) { d["channel"] = strings.Repeat("c", 33) }},
		{name: "event without type", modify: func(d map[string]any) { d["kind"] = "event" }},
		{name: "bad type", modify: func(d map[string]any) { d["type"] = "Delivery" }},
		{name: "type too long", modify: func(d map[string]any) { d["type"] = strings.Repeat("t", 65) }},
		{name: "inbound message without from", modify: func(d map[string]any) { delete(d, "from") }},
		{name: "outbound message without to or conversation", modify: func(d map[string]any) {
			d["direction"] = "outbound"
			delete(d, "from")
		}},
		{name: "outbound message with empty conversation", modify: func(d map[string]any) {
			d["direction"], d["conversation"] = "outbound", ""
			delete(d, "from")
		}},
		{name: "identity without colon", modify: func(d map[string]any) { d["from"] = "sms+1555" }},
		{name: "identity with empty address", modify: func(d map[string]any) { d["from"] = "sms:" }},
		{name: "identity with bad channel", modify: func(d map[string]any) { d["to"] = "Sms:+1" }},
		{name: "identity with control character", modify: func(d map[string]any) { d["from"] = "email:a@b\nbcc:c@d" }},
		{name: "identity with c1 control", modify: func(d map[string]any) { d["from"] = "email:a@b\u0085" }},
		{name: "address too long", modify: func(d map[string]any) { d["from"] = "web:" + strings.Repeat("a", 513) }},
		{name: "text too long", modify: func(d map[string]any) { d["text"] = strings.Repeat("a", core.MaxTextBytes+1) }},
		{name: "text not a string", modify: func(d map[string]any) { d["text"] = 5 }},
		{name: "html too long", modify: func(d map[string]any) { d["html"] = strings.Repeat("a", core.MaxHTMLBytes+1) }},
		{name: "too many attachments", modify: func(d map[string]any) { d["attachments"] = manyAttachments(core.MaxAttachments + 1) }},
		{name: "attachments not an array", modify: func(d map[string]any) { d["attachments"] = map[string]any{} }},
		{name: "attachment without url or key", modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"name": "a"}}
		}},
		{name: "attachment with negative size", modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"key": "k", "size": -1}}
		}},
		{name: "attachment name too long", modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"key": "k", "name": strings.Repeat("n", 256)}}
		}},
		{name: "attachment content type without subtype", modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"key": "k", "content_type": "image"}}
		}},
		{name: "attachment content type with space", modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"key": "k", "content_type": "image /png"}}
		}},
		{name: "too many quick replies", modify: func(d map[string]any) {
			d["quick_replies"] = []any{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}
		}},
		{name: "empty quick reply", modify: func(d map[string]any) { d["quick_replies"] = []any{"Yes", ""} }},
		{name: "quick reply too long", modify: func(d map[string]any) {
			d["quick_replies"] = []any{strings.Repeat("q", core.MaxQuickReplyBytes+1)}
		}},
		{name: "quick reply not a string", modify: func(d map[string]any) { d["quick_replies"] = []any{1} }},
		{name: "quick replies not an array", modify: func(d map[string]any) { d["quick_replies"] = "Yes" }},
		{name: "too many meta entries", modify: func(d map[string]any) { d["meta"] = manyMeta(core.MaxMetaEntries + 1) }},
		{name: "meta key too long", modify: func(d map[string]any) { d["meta"] = map[string]any{strings.Repeat("k", 129): "v"} }},
		{name: "meta empty key", modify: func(d map[string]any) { d["meta"] = map[string]any{"": "v"} }},
		{name: "meta value too long", modify: func(d map[string]any) { d["meta"] = map[string]any{"k": strings.Repeat("v", 4097)} }},
		{name: "meta value not a string", modify: func(d map[string]any) { d["meta"] = map[string]any{"k": 1} }},
		{name: "sent_at not a timestamp", modify: func(d map[string]any) { d["sent_at"] = "yesterday" }},
		{name: "received_at without zone", modify: func(d map[string]any) { d["received_at"] = "2025-03-14T09:26:53" }},
		{name: "external not an object", modify: func(d map[string]any) { d["external"] = "m1" }},
		{name: "external id not a string", modify: func(d map[string]any) { d["external"] = map[string]any{"message": 1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := baseDoc()
			tt.modify(d)
			doc, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			schemaErr := schemaAccepts(t, s, doc)
			_, decodeErr := core.Decode(doc)
			if tt.valid {
				if schemaErr != nil {
					t.Errorf("schema rejects a valid document: %v", schemaErr)
				}
				if decodeErr != nil {
					t.Errorf("Decode rejects a valid document: %v", decodeErr)
				}
				return
			}
			if schemaErr == nil {
				t.Errorf("schema accepts an invalid document: %.300s", doc)
			}
			if decodeErr == nil {
				t.Errorf("Decode accepts an invalid document: %.300s", doc)
			}
		})
	}
}

// TestSchema_KnownDifferences pins down the few places where the schema and
// Decode disagree by design (see the schema's description), so that a change to
// either side shows up here.
func TestSchema_KnownDifferences(t *testing.T) {
	s := compileSchema(t)
	tests := []struct {
		name           string
		modify         func(d map[string]any)
		schemaOK, goOK bool
	}{
		{name: "null optional field", modify: func(d map[string]any) { d["html"] = nil }, goOK: true},
		{name: "empty optional identity", modify: func(d map[string]any) { d["to"] = "" }, goOK: true},
		{name: "empty type on a message", modify: func(d map[string]any) { d["type"] = "" }, goOK: true},
		{name: "text over the byte limit within the character limit", schemaOK: true, modify: func(d map[string]any) {
			d["text"] = strings.Repeat("é", core.MaxTextBytes/2+1)
		}},
		{name: "content type with broken parameters", schemaOK: true, modify: func(d map[string]any) {
			d["attachments"] = []any{map[string]any{"key": "k", "content_type": "image/png; =x"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := baseDoc()
			tt.modify(d)
			doc, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := schemaAccepts(t, s, doc) == nil; got != tt.schemaOK {
				t.Errorf("schema accepts = %v, want %v", got, tt.schemaOK)
			}
			if _, err := core.Decode(doc); (err == nil) != tt.goOK {
				t.Errorf("Decode = %v, want ok = %v", err, tt.goOK)
			}
		})
	}
}

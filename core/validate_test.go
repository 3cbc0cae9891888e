package core_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
)

func TestMessage_Validate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *core.Message)
		want   []core.FieldError // nil when valid
	}{
		{name: "inbound message", modify: func(*core.Message) {}},
		{name: "outbound message to", modify: func(m *core.Message) {
			m.Direction, m.From, m.To = core.Outbound, "", "sms:+15551234567"
		}},
		{name: "outbound message by conversation", modify: func(m *core.Message) {
			m.Direction, m.From, m.ConversationID = core.Outbound, "", "c_1"
		}},
		{name: "event without identities", modify: func(m *core.Message) {
			m.Kind, m.Type, m.From = core.KindEvent, "delivery.delivered", ""
		}},
		{name: "message with type", modify: func(m *core.Message) { m.Type = "reaction" }},
		{name: "text at the limit", modify: func(m *core.Message) { m.Text = strings.Repeat("a", core.MaxTextBytes) }},
		{name: "html at the limit", modify: func(m *core.Message) { m.HTML = strings.Repeat("a", core.MaxHTMLBytes) }},
		{name: "attachments at the limit", modify: func(m *core.Message) {
			m.Attachments = slices.Repeat([]core.Attachment{{Key: "k"}}, core.MaxAttachments)
		}},
		{name: "meta at the limits", modify: func(m *core.Message) {
			m.Meta = map[string]string{strings.Repeat("k", core.MaxMetaKeyBytes): strings.Repeat("v", core.MaxMetaValueBytes)}
			for i := range core.MaxMetaEntries - 1 {
				m.Meta[fmt.Sprint(i)] = ""
			}
		}},
		{name: "content type with parameters", modify: func(m *core.Message) {
			m.Attachments = []core.Attachment{{URL: "https://x/y", ContentType: "text/plain; charset=utf-8"}}
		}},
		{name: "type at the limit", modify: func(m *core.Message) { m.Type = "a" + strings.Repeat("b.-_9", 12) + "abc" }},

		{name: "zero version", modify: func(m *core.Message) { m.V = 0 },
			want: []core.FieldError{{Field: "v", Problem: "required, must be 1"}}},
		{name: "other version", modify: func(m *core.Message) { m.V = 2 },
			want: []core.FieldError{{Field: "v", Problem: "2, must be 1"}}},
		{name: "no id", modify: func(m *core.Message) { m.ID = "" },
			want: []core.FieldError{{Field: "id", Problem: "required"}}},
		{name: "bad id", modify: func(m *core.Message) { m.ID = "01hzy3k8q2xj4v6m9n0p1r2s3t" },
			want: []core.FieldError{{Field: "id", Problem: "not a ulid (26 characters of upper-case crockford base32)"}}},
		{name: "no kind", modify: func(m *core.Message) { m.Kind = "" },
			want: []core.FieldError{{Field: "kind", Problem: "required"}}},
		{name: "bad kind", modify: func(m *core.Message) { m.Kind = "note" },
			want: []core.FieldError{{Field: "kind", Problem: `"note", must be "message" or "event"`}}},
		{name: "event without type", modify: func(m *core.Message) { m.Kind = core.KindEvent },
			want: []core.FieldError{{Field: "type", Problem: "required for an event"}}},
		{name: "bad type", modify: func(m *core.Message) { m.Type = "Delivery.Failed" },
			want: []core.FieldError{{Field: "type", Problem: `"Delivery.Failed" does not match ^[a-z][a-z0-9_.-]{0,63}$`}}},
		{name: "type too long", modify: func(m *core.Message) { m.Type = strings.Repeat("a", 65) },
			want: []core.FieldError{{Field: "type", Problem: `"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... does not match ^[a-z][a-z0-9_.-]{0,63}$`}}},
		{name: "no direction", modify: func(m *core.Message) { m.Direction = "" },
			want: []core.FieldError{{Field: "direction", Problem: "required"}}},
		{name: "bad direction", modify: func(m *core.Message) { m.Direction = "sideways" },
			want: []core.FieldError{{Field: "direction", Problem: `"sideways", must be "inbound" or "outbound"`}}},
		{name: "no channel", modify: func(m *core.Message) { m.Channel = "" },
			want: []core.FieldError{{Field: "channel", Problem: "required"}}},
		{name: "bad channel", modify: func(m *core.Message) { m.Channel = "SMS" },
			want: []core.FieldError{{Field: "channel", Problem: `"SMS" does not match ^[a-z][a-z0-9_]{0,31}$`}}},
		{name: "inbound message without from", modify: func(m *core.Message) { m.From = "" },
			want: []core.FieldError{{Field: "from", Problem: "required for an inbound message"}}},
		{name: "outbound message without to", modify: func(m *core.Message) {
			m.Direction, m.From, m.To, m.ConversationID = core.Outbound, "", "", ""
		},
			want: []core.FieldError{{Field: "to", Problem: "required for an outbound message without a conversation"}}},
		{name: "bad from", modify: func(m *core.Message) { m.From = "sms" },
			want: []core.FieldError{{Field: "from", Problem: `missing ":" between channel and address`}}},
		{name: "bad to", modify: func(m *core.Message) { m.To = "sms:" },
			want: []core.FieldError{{Field: "to", Problem: "empty address"}}},
		{name: "text too long", modify: func(m *core.Message) { m.Text = strings.Repeat("a", 70000) },
			want: []core.FieldError{{Field: "text", Problem: "70000 bytes, at most 65536"}}},
		{name: "text multi-byte over the limit", modify: func(m *core.Message) { m.Text = strings.Repeat("é", core.MaxTextBytes/2+1) },
			want: []core.FieldError{{Field: "text", Problem: "65538 bytes, at most 65536"}}},
		{name: "text bad utf-8", modify: func(m *core.Message) { m.Text = "caf\xe9" },
			want: []core.FieldError{{Field: "text", Problem: "not valid utf-8"}}},
		{name: "html too long", modify: func(m *core.Message) { m.HTML = strings.Repeat("a", core.MaxHTMLBytes+1) },
			want: []core.FieldError{{Field: "html", Problem: "262145 bytes, at most 262144"}}},
		{name: "too many attachments", modify: func(m *core.Message) {
			m.Attachments = slices.Repeat([]core.Attachment{{Key: "k"}}, core.MaxAttachments+1)
		}, want: []core.FieldError{{Field: "attachments", Problem: "21 attachments, at most 20"}}},
		{name: "attachment problems", modify: func(m *core.Message) {
			m.Attachments = []core.Attachment{
				{URL: "https://x/a"},
				{Name: strings.Repeat("n", 256), ContentType: "image", Size: -1},
				{Key: "k", ContentType: "image/png;;"},
			}
		}, want: []core.FieldError{
			{Field: "attachments[1].name", Problem: "256 bytes, at most 255"},
			{Field: "attachments[1].content_type", Problem: `not a media type like "image/png"`},
			{Field: "attachments[1].size", Problem: "-1, must be at least 0"},
			{Field: "attachments[1]", Problem: "url or key required"},
			{Field: "attachments[2].content_type", Problem: `not a media type like "image/png"`},
		}},
		{name: "meta problems", modify: func(m *core.Message) {
			m.Meta = map[string]string{"": "x", strings.Repeat("k", 129): "", "big": strings.Repeat("v", 4097), "bad": "\xff"}
		}, want: []core.FieldError{
			{Field: `meta[""]`, Problem: "empty key"},
			{Field: `meta["bad"]`, Problem: "not valid utf-8"},
			{Field: `meta["big"]`, Problem: "4097 bytes, at most 4096"},
			{Field: `meta["kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"...]`, Problem: "key 129 bytes, at most 128"},
		}},
		{name: "too many meta entries", modify: func(m *core.Message) {
			m.Meta = map[string]string{}
			for i := range core.MaxMetaEntries + 1 {
				m.Meta[fmt.Sprint(i)] = ""
			}
		}, want: []core.FieldError{{Field: "meta", Problem: "65 entries, at most 64"}}},
		{name: "time out of range", modify: func(m *core.Message) { m.SentAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			want: []core.FieldError{{Field: "sent_at", Problem: "not representable in rfc 3339: year must be 0 to 9999 and the zone offset under 24 hours"}}},
		{name: "bad utf-8 in ids", modify: func(m *core.Message) {
			m.External = core.External{Message: "\xff", Thread: "\xff", Chat: "\xff"}
			m.ContactID, m.ConversationID, m.ReplyTo, m.Language = "\xff", "\xff", "\xff", "\xff"
		}, want: []core.FieldError{
			{Field: "external.message", Problem: "not valid utf-8"},
			{Field: "external.thread", Problem: "not valid utf-8"},
			{Field: "external.chat", Problem: "not valid utf-8"},
			{Field: "contact", Problem: "not valid utf-8"},
			{Field: "conversation", Problem: "not valid utf-8"},
			{Field: "reply_to", Problem: "not valid utf-8"},
			{Field: "language", Problem: "not valid utf-8"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := inboundSMS()
			tt.modify(m)
			err := m.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var verr *core.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			if !slices.Equal(verr.Errors, tt.want) {
				t.Errorf("Validate errors:\n got %q\nwant %q", verr.Errors, tt.want)
			}
		})
	}
}

func TestMessage_ValidateListsEveryError(t *testing.T) {
	m := &core.Message{
		Kind:        core.KindEvent,
		Direction:   "up",
		Channel:     "Web Chat",
		To:          "nocolon",
		Text:        strings.Repeat("x", 70000),
		Attachments: []core.Attachment{{Size: -5}},
		Meta:        map[string]string{"": ""},
	}
	err := m.Validate()
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var verr *core.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("errors.As(%T, *ValidationError) = false", err)
	}
	want := []core.FieldError{
		{Field: "v", Problem: "required, must be 1"},
		{Field: "id", Problem: "required"},
		{Field: "type", Problem: "required for an event"},
		{Field: "direction", Problem: `"up", must be "inbound" or "outbound"`},
		{Field: "channel", Problem: `"Web Chat" does not match ^[a-z][a-z0-9_]{0,31}$`},
		{Field: "to", Problem: `missing ":" between channel and address`},
		{Field: "text", Problem: "70000 bytes, at most 65536"},
		{Field: "attachments[0].size", Problem: "-5, must be at least 0"},
		{Field: "attachments[0]", Problem: "url or key required"},
		{Field: `meta[""]`, Problem: "empty key"},
	}
	if !slices.Equal(verr.Errors, want) {
		t.Errorf("errors:\n got %q\nwant %q", verr.Errors, want)
	}
	wantMsg := `core: invalid envelope: v: required, must be 1; id: required; type: required for an event; ` +
		`direction: "up", must be "inbound" or "outbound"; channel: "Web Chat" does not match ^[a-z][a-z0-9_]{0,31}$; ` +
		`to: missing ":" between channel and address; text: 70000 bytes, at most 65536; ` +
		`attachments[0].size: -5, must be at least 0; attachments[0]: url or key required; meta[""]: empty key`
	if got := err.Error(); got != wantMsg {
		t.Errorf("Error() =\n%s\nwant\n%s", got, wantMsg)
	}
}

func TestMessage_ValidateNil(t *testing.T) {
	var m *core.Message
	if err := m.Validate(); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("nil Validate = %v, want ErrInvalid", err)
	}
}

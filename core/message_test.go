package core_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
)

// inboundSMS returns a valid inbound SMS with every field set.
func inboundSMS() *core.Message {
	m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m.External = core.External{Message: "SM0123456789abcdef", Chat: "+15557654321"}
	m.From = core.NewIdentity("sms", "+15551234567")
	m.To = core.NewIdentity("sms", "+15557654321")
	m.ContactID = "ct_01"
	m.ConversationID = "cv_01"
	m.Text = "Hi, my order <#1234> & \"the box\" arrived broken\u2028see photo ✅"
	m.HTML = "<p>Hi &amp; hello</p>"
	m.Attachments = []core.Attachment{
		{Name: "box.jpg", ContentType: "image/jpeg", Size: 48213, URL: "https://api.twilio.com/media/ME1"},
		{Name: "receipt.pdf", Key: "media/01/receipt.pdf"},
	}
	m.QuickReplies = []string{"Yes", "No, thanks"}
	m.ReplyTo = core.NewID()
	m.Language = "en"
	m.SentAt = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.FixedZone("", -5*3600))
	m.Meta = map[string]string{"num_segments": "1", "account": "AC1"}
	return m
}

// sameMessage reports whether a and b hold the same envelope: times are the
// same instant with the same zone offset, everything else (unknown fields
// included) deeply equal.
func sameMessage(t *testing.T, a, b *core.Message) bool {
	t.Helper()
	sameTime := func(x, y time.Time) bool {
		_, xo := x.Zone()
		_, yo := y.Zone()
		return x.Equal(y) && (x.IsZero() || xo == yo)
	}
	if !sameTime(a.SentAt, b.SentAt) || !sameTime(a.ReceivedAt, b.ReceivedAt) {
		return false
	}
	a, b = a.Clone(), b.Clone()
	a.SentAt, b.SentAt, a.ReceivedAt, b.ReceivedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestNewMessage(t *testing.T) {
	before := time.Now()
	m := core.NewMessage(core.KindEvent, core.Outbound, "email")
	if m.V != core.EnvelopeVersion || m.Kind != core.KindEvent || m.Direction != core.Outbound || m.Channel != "email" {
		t.Errorf("NewMessage = %+v", m)
	}
	if !core.ValidID(m.ID) {
		t.Errorf("ID %q is not a ULID", m.ID)
	}
	if m.ReceivedAt.Location() != time.UTC || m.ReceivedAt.Before(before.Add(-time.Second)) || m.ReceivedAt.After(time.Now()) {
		t.Errorf("ReceivedAt = %v, want now in UTC", m.ReceivedAt)
	}
}

func TestMessage_RoundTripKeepsUnknownFields(t *testing.T) {
	known := `"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+15551234567","text":"hi"`
	tests := []struct {
		name    string
		unknown map[string]string // key -> raw JSON value, written verbatim
	}{
		{name: "none"},
		{name: "scalars", unknown: map[string]string{
			"priority": `7`, "vip": `true`, "note": `"call back"`, "gone": `null`, "pi": `3.14159265358979323846264338327950288`,
		}},
		{name: "nested object", unknown: map[string]string{
			"x_routing": `{"queue":"billing","skills":["fr","de"],"weights":{"a":1.5,"b":[{"c":null}]}}`,
		}},
		{name: "array", unknown: map[string]string{"tags": `["a",{"b":[]},[1,[2]]]`}},
		{name: "escapes kept as written", unknown: map[string]string{"s": `"caf\u00e9 \u003cb\u003e \/ \ud83d\ude00"`}},
		{name: "big integer kept exact", unknown: map[string]string{"seq": `123456789012345678901234567890`}},
		{name: "case differs from a known field", unknown: map[string]string{"Text": `"other"`, "V": `2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "{" + known
			for k, v := range tt.unknown {
				in += `,"` + k + `":` + v
			}
			in += "}"

			m, err := core.Decode([]byte(in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Text != "hi" {
				t.Errorf("Text = %q, want %q", m.Text, "hi")
			}
			out, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !jsonEqual(t, []byte(in), out) {
				t.Errorf("round trip changed the document:\n in %s\nout %s", in, out)
			}
			for k, v := range tt.unknown {
				if member := `"` + k + `":` + v; !bytes.Contains(out, []byte(member)) {
					t.Errorf("output lacks %s verbatim:\n%s", member, out)
				}
			}

			// Marshal and Unmarshal keep them too, and a second trip is stable.
			viaJSON, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			var again core.Message
			if err := json.Unmarshal(viaJSON, &again); err != nil {
				t.Fatalf("json.Unmarshal: %v", err)
			}
			out2, err := again.Encode()
			if err != nil {
				t.Fatalf("Encode again: %v", err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("second round trip differs:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestMessage_UnknownFieldsCompacted(t *testing.T) {
	in := `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1",` +
		"\"w\" : { \"a\" :\t[ 1 , \"x y\" ] }\n}"
	m, err := core.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out, []byte(`,"w":{"a":[1,"x y"]}}`)) {
		t.Errorf("unknown field not compacted:\n%s", out)
	}
}

func TestMessage_EncodeDecode(t *testing.T) {
	m := inboundSMS()
	data, err := m.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := core.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !sameMessage(t, m, got) {
		t.Errorf("Decode(Encode(m)) differs:\n got %+v\nwant %+v", got, m)
	}
	// HTML characters and U+2028 are written as they are, not as \u escapes.
	for _, s := range []string{`<#1234> & \"the box\"`, "\u2028", "<p>Hi &amp; hello</p>"} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("encoded envelope lacks %q:\n%s", s, data)
		}
	}
	// Field order is fixed: v and id first, meta keys sorted.
	if !bytes.HasPrefix(data, []byte(`{"v":1,"id":"`+m.ID+`","kind":"message","direction":"inbound","channel":"sms","external":{`)) {
		t.Errorf("unexpected field order:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`"meta":{"account":"AC1","num_segments":"1"}`)) {
		t.Errorf("meta not sorted:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`"sent_at":"2025-03-14T09:26:53.589793-05:00"`)) {
		t.Errorf("sent_at lost its offset:\n%s", data)
	}
}

func TestMessage_EncodeMinimal(t *testing.T) {
	m := &core.Message{V: 1, ID: "01HZY3K8Q2XJ4V6M9N0P1R2S3T", Kind: core.KindEvent, Type: "delivery.failed", Direction: core.Outbound, Channel: "sms"}
	got, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"event","type":"delivery.failed","direction":"outbound","channel":"sms"}`
	if string(got) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", got, want)
	}
}

func TestMessage_EncodeInvalid(t *testing.T) {
	m := inboundSMS()
	m.From = ""
	if _, err := m.Encode(); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("Encode = %v, want ErrInvalid", err)
	}
}

func TestMessage_EncodeTooLarge(t *testing.T) {
	m := inboundSMS()
	m.Attachments = []core.Attachment{{URL: "https://x/" + strings.Repeat("a", core.MaxEnvelopeBytes)}}
	if _, err := m.Encode(); !errors.Is(err, core.ErrTooLarge) {
		t.Errorf("Encode = %v, want ErrTooLarge", err)
	}
}

func TestDecode_Errors(t *testing.T) {
	valid := func(extra string) string {
		return `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1"` + extra + `}`
	}
	tests := []struct {
		name    string
		in      string
		target  error
		message string // exact error text
	}{
		{name: "too large", in: valid(`,"pad":"` + strings.Repeat(" ", core.MaxEnvelopeBytes) + `"`), target: core.ErrTooLarge,
			message: "core: envelope too large: 1048697 bytes, at most 1048576"},
		{name: "empty", in: ``, target: core.ErrInvalid, message: "core: invalid envelope: unexpected end of JSON input"},
		{name: "syntax", in: `{"v":1,`, target: core.ErrInvalid, message: "core: invalid envelope: unexpected end of JSON input"},
		{name: "trailing data", in: valid("") + `{}`, target: core.ErrInvalid},
		{name: "array", in: `[1,2]`, target: core.ErrInvalid, message: "core: invalid envelope: not a json object"},
		{name: "null", in: `null`, target: core.ErrInvalid, message: "core: invalid envelope: not a json object"},
		{name: "bad utf-8", in: valid(`,"text":"caf` + "\xe9" + `"`), target: core.ErrInvalid, message: "core: invalid envelope: not valid utf-8"},
		{name: "missing version", in: `{"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1"}`,
			target: core.ErrInvalid, message: "core: invalid envelope: v: required, must be 1"},
		{name: "null version", in: `{"v":null,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1"}`,
			target: core.ErrInvalid},
		{name: "newer version", in: `{"v":2,"future":true}`, target: core.ErrUnsupportedVersion,
			message: "core: unsupported envelope version 2, this build reads 1"},
		{name: "version zero", in: `{"v":0}`, target: core.ErrUnsupportedVersion},
		{name: "version as string", in: `{"v":"1"}`, target: core.ErrInvalid, message: "core: invalid envelope: v: must be an integer"},
		{name: "version as float", in: `{"v":1.0}`, target: core.ErrInvalid},
		{name: "wrong types", in: valid(`,"text":5,"attachments":[{"size":"big"}],"meta":{"a":1},"external":[],"sent_at":"yesterday"`),
			target: core.ErrInvalid,
			message: `core: invalid envelope: attachments[0].size: must be an integer; external: must be an object; ` +
				`meta["a"]: must be a string; sent_at: must be an rfc 3339 timestamp string; text: must be a string`},
		{name: "invalid fields", in: valid(`,"kind":"note","text":"` + strings.Repeat("a", 70000) + `"`), target: core.ErrInvalid,
			message: `core: invalid envelope: kind: "note", must be "message" or "event"; text: 70000 bytes, at most 65536`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := core.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode = %+v, want error", m)
			}
			if m != nil {
				t.Errorf("Decode returned a message with error %v", err)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
			for _, other := range []error{core.ErrInvalid, core.ErrTooLarge, core.ErrUnsupportedVersion} {
				if other != tt.target && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true, want only %v", err, other, tt.target)
				}
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.message)
			}
		})
	}
}

func TestDecode_Lenient(t *testing.T) {
	// Things Decode accepts that a strict writer would not produce; none of
	// them survives re-encoding.
	in := `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms",` +
		`"from":"sms:+1","text":null,"meta":{},"attachments":[],"external":{"message":"m1","future":1},` +
		`"sent_at":"2025-01-02T03:04:05+00:00","\u0074o":"sms:+2"}`
	m, err := core.Decode([]byte(in))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := m.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	want := `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms",` +
		`"external":{"message":"m1"},"from":"sms:+1","to":"sms:+2","sent_at":"2025-01-02T03:04:05Z"}`
	if string(out) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", out, want)
	}
}

func TestMessage_UnmarshalJSONReplaces(t *testing.T) {
	m := inboundSMS()
	if err := json.Unmarshal([]byte(`{"v":1,"kind":"event","x":1}`), m); err != nil {
		t.Fatal(err)
	}
	if m.Text != "" || m.From != "" || m.Meta != nil || m.Kind != core.KindEvent {
		t.Errorf("UnmarshalJSON merged instead of replacing: %+v", m)
	}
	if err := json.Unmarshal([]byte(`null`), m); err != nil || m.Kind != core.KindEvent {
		t.Errorf("UnmarshalJSON(null) = %v, changed %+v", err, m)
	}
}

func TestMessage_Clone(t *testing.T) {
	orig, err := core.Decode([]byte(`{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound",` +
		`"channel":"sms","from":"sms:+1","attachments":[{"key":"a"}],"meta":{"k":"v"},"x":{"y":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	before, err := orig.Encode()
	if err != nil {
		t.Fatal(err)
	}

	c := orig.Clone()
	if !sameMessage(t, orig, c) {
		t.Fatalf("Clone differs: %+v", c)
	}
	c.Text = "changed"
	c.Attachments[0].Key = "changed"
	c.Attachments = append(c.Attachments, core.Attachment{Key: "b"})
	c.Meta["k"] = "changed"
	c.Meta["new"] = "x"
	if err := json.Unmarshal([]byte(`{"x":2}`), c); err != nil {
		t.Fatal(err)
	}

	after, err := orig.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("changing the clone changed the original:\nbefore %s\nafter  %s", before, after)
	}
	if (*core.Message)(nil).Clone() != nil {
		t.Error("nil Clone is not nil")
	}
}

func TestMessage_CloneEmpty(t *testing.T) {
	m := &core.Message{}
	if c := m.Clone(); !reflect.DeepEqual(c, m) || c == m {
		t.Errorf("Clone of empty = %+v", c)
	}
}

func FuzzDecode(f *testing.F) {
	valid, err := inboundSMS().Encode()
	if err != nil {
		f.Fatal(err)
	}
	minimal := `{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1"}`
	withField := func(member string) []byte { return []byte(minimal[:len(minimal)-1] + "," + member + "}") }

	f.Add(valid)
	f.Add([]byte(minimal))
	f.Add([]byte(`{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"event","type":"delivery.failed","direction":"outbound","channel":"sms"}`))
	f.Add([]byte(`{"v":1,"id":"01HZY3K8Q2XJ4V6M9N0P1R2S3T","kind":"message","direction":"outbound","channel":"web","conversation":"c1"}`))
	f.Add(withField(`"x":{"a":[1,{"b":null}],"c":"\u00e9"}`))
	f.Add(withField(`"Text":"case","V":2,"":""`))
	f.Add(withField(`"text":"<b>\u2028</b>\n\t\u0001","html":"&amp;"`))
	f.Add(withField(`"attachments":[{"name":"a","content_type":"image/png","size":1,"url":"u","extra":1},{"key":"k"}]`))
	f.Add(withField(`"meta":{"a":"b","":"c"}`))
	f.Add(withField(`"quick_replies":["Yes","caf\u00e9",""]`))
	f.Add(withField(`"quick_replies":[]`))
	f.Add(withField(`"sent_at":"2025-01-02T03:04:05.123456789+05:30","received_at":"0000-01-01T00:00:00Z"`))
	f.Add(withField(`"text":"` + strings.Repeat("a", core.MaxTextBytes+1) + `"`))
	f.Add(withField(`"pad":"` + strings.Repeat("a", core.MaxEnvelopeBytes) + `"`))
	f.Add(withField(`"text":"caf` + "\xe9" + `"`))
	f.Add(withField(`"text":"\ud800"`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":"1"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := core.Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned a message and %v", err)
			}
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode after Decode: %v\ninput %q", err, data)
		}
		if len(out) > len(data) {
			t.Errorf("Encode grew the envelope from %d to %d bytes\n in %q\nout %q", len(data), len(out), data, out)
		}
		again, err := core.Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(m)): %v\ninput %q\noutput %q", err, data, out)
		}
		if !sameMessage(t, m, again) {
			t.Fatalf("Decode(Encode(m)) != m\ninput  %q\noutput %q\n m     %+v\n again %+v", data, out, m, again)
		}
	})
}

func BenchmarkMessage_EncodeDecode(b *testing.B) {
	m := inboundSMS()
	data, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		data, err := m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := core.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

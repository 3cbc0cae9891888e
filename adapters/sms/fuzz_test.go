package sms

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{3,14}$`)

// FuzzParseInbound feeds webhook bodies through the form parser and the
// normalizer of both channels: nothing panics, and whatever is accepted is a
// valid envelope whose sender is an E.164 number (or an sms short code) of
// the channel.
func FuzzParseInbound(f *testing.F) {
	seeds := []string{
		"AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01&Body=Hello&From=%2B14155550100&To=%2B15005550006&MessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&NumSegments=1",
		"MessageSid=MM0123456789abcdef0123456789abcdef&From=%2B14155550100&Body=&NumMedia=2&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fx%2FME1&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fx%2FME2&MediaContentType1=video%2Fmp4",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B14155550100&To=whatsapp%3A%2B14155238886&Body=STOP&ProfileName=Ann&WaId=14155550100",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B1+(415)+555-0100&Body=stop+all",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=12345&Body=carrier+notice",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B14155550100&Body=%FF%FE",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B14155550100&NumMedia=-1",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B14155550100&NumMedia=1&MediaUrl0=javascript%3Aalert(1)",
		"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B14155550100&OptOutType=STOP&Body=ARRET",
		"From=%2B14155550100&From=%2B14155550101",
		"Body=%zz",
		"",
		";;;&&&===",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := parseForm(body)
		if err != nil {
			return
		}
		for _, channel := range []string{channelSMS, channelWhatsApp} {
			m, kw, err := parseInbound(channel, form, "US")
			if err != nil {
				if m != nil {
					t.Fatalf("%s: message and error %v", channel, err)
				}
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("%s: invalid envelope from %q: %v", channel, body, err)
			}
			if m.From.Channel() != channel || m.Channel != channel || m.Kind != core.KindMessage || m.Direction != core.Inbound {
				t.Fatalf("%s: envelope %+v", channel, m)
			}
			addr := m.From.Address()
			if !e164.MatchString(addr) && !(channel == channelSMS && shortCodePattern.MatchString(addr)) {
				t.Fatalf("%s: sender address %q is not E.164", channel, addr)
			}
			if again, err := Normalize(addr, "US"); e164.MatchString(addr) && (err != nil || again != addr) {
				t.Fatalf("Normalize(%q) = %q, %v: not stable", addr, again, err)
			}
			if m.External.Message == "" || !sidPattern.MatchString(m.External.Message) {
				t.Fatalf("%s: external message %q", channel, m.External.Message)
			}
			if kw.kind != kwNone && kw.word == "" {
				t.Fatalf("keyword without its word")
			}
			if _, err := m.Encode(); err != nil && !strings.Contains(err.Error(), "too large") {
				t.Fatalf("%s: encode: %v", channel, err)
			}
		}
	})
}

// FuzzNormalize: Normalize never panics, returns E.164 or an error, and is
// idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+14155550100", "4155550100", "+1 (415) 555-0100", "020 7946 0958", "+44 20 7946 0958", "12345", "", "+", "00000000000000", "+8801", "0-0-0-0", "(((((((("} {
		f.Add(s, "US")
		f.Add(s, "GB")
	}
	f.Fuzz(func(t *testing.T, in, region string) {
		out, err := Normalize(in, region)
		if err != nil {
			return
		}
		if !e164.MatchString(out) {
			t.Fatalf("Normalize(%q, %q) = %q, not E.164", in, region, out)
		}
		if again, err := Normalize(out, "US"); err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q, %v; want it unchanged", out, again, err)
		}
	})
}

// FuzzParseStatus feeds status callback bodies through the form parser and
// parseStatus on both channels: nothing panics; an accepted callback has a
// SID and a lower-case status, and a carrier done date (RawDlrDoneDate) is
// either unread or a UTC time on a whole minute. The seed corpus is in
// testdata/fuzz/FuzzParseStatus: Twilio's documented callbacks.
func FuzzParseStatus(f *testing.F) {
	f.Add("MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=delivered&To=%2B14155550100&From=%2B15005550006&RawDlrDoneDate=2601051030")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := parseForm(body)
		if err != nil {
			return
		}
		for _, channel := range []string{channelSMS, channelWhatsApp} {
			s, err := parseStatus(channel, form, "US")
			if err != nil {
				continue
			}
			if !sidPattern.MatchString(s.sid) || s.status == "" || strings.ToLower(s.status) != s.status {
				t.Fatalf("%s: accepted sid %q status %q", channel, s.sid, s.status)
			}
			if !s.doneAt.IsZero() && (s.doneAt.Location() != time.UTC || s.doneAt.Second() != 0 || s.doneAt.Format(dlrLayout) != form.Get("RawDlrDoneDate")) {
				t.Fatalf("%s: RawDlrDoneDate %q read as %v", channel, form.Get("RawDlrDoneDate"), s.doneAt)
			}
			if s.errCode < 0 {
				t.Fatalf("%s: error code %d", channel, s.errCode)
			}
		}
	})
}

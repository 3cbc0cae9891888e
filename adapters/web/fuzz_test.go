package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
)

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// FuzzDecodeFrame: decodeFrame never panics; what it accepts has a known type,
// valid UTF-8 and fields within limits, and survives a round trip.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","site":"shop","visitor_token":"v1.abc.def","resume_after":12,"lang":"zh-CN","page":"https://shop.example.com/"}`,
		`{"type":"hello","site":"shop","identity":{"user_id":"42","email":"a@b.c","phone":"+15551234567","ts":1700000000,"sig":"00ff"}}`,
		`{"type":"hello","resume_after":"18446744073709551615"}`,
		`{"type":"message","client_id":"c-1","text":"hi <b>there</b>","attachments":[{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaa"}]}`,
		`{"type":"message","client_id":"c-2","text":"","email":"ann@example.com","attachments":[]}`,
		`{"type":"typing"}`,
		`{"type":"read","up_to":"7"}`,
		`{"type":"history","before":10,"limit":50}`,
		`{"type":"history","after":1,"before":2}`,
		`{"type":"message","text":"\u0000\ud800"}`,
		`{"type":"nope"}`, `{}`, `[]`, `null`, `"hello"`, ``, `{"type":`, "{\"type\":\"message\",\"text\":\"\xff\"}",
		`{"type":"message","client_id":"p1","text":"parcel","name":"Ann Lee","email":"ann@example.com","fields":{"order":"A-1042"}}`,
		`{"type":"message","text":"call me","email":"bob@example.com","offline":true}`,
		`{"type":"message","text":"x","offline":true}`,
		`{"type":"message","text":"x","fields":{"Bad Name":"v"}}`,
		`{"type":"message","text":"x","name":"a\u0007b","fields":{"order":null}}`,
		`{"type":"history","limit":-1}`, `{"type":"read","up_to":-1}`, `{"type":"hello","resume_after":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if err.Code == "" || err.Msg == "" {
				t.Fatalf("error without code or message: %+v", err)
			}
			return
		}
		if !slices.Contains([]string{typeHello, typeMessage, typeTyping, typeRead, typeHistory}, fr.Type) {
			t.Fatalf("accepted type %q", fr.Type)
		}
		if len(fr.Text) > core.MaxTextBytes || len(fr.Attachments) > core.MaxAttachments || fr.Limit < 0 || fr.Limit > maxHistoryLimit {
			t.Fatalf("accepted out-of-limit frame: %d text bytes, %d attachments, limit %d", len(fr.Text), len(fr.Attachments), fr.Limit)
		}
		if len(fr.Name) > maxNameBytes || len(fr.Fields) > maxPrechatFields || (fr.Offline && fr.Email == "") {
			t.Fatalf("accepted form fields out of limits: name %d bytes, %d fields, offline %v without email", len(fr.Name), len(fr.Fields), fr.Offline)
		}
		for k, v := range fr.Fields {
			if !fieldNameRE.MatchString(k) || len(v) > maxFieldBytes || !utf8.ValidString(v) {
				t.Fatalf("accepted field %q = %q", k, v)
			}
		}
		for _, s := range []string{fr.Text, fr.Site, fr.ClientID, fr.Email, fr.Lang, fr.Page, fr.Name} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
		}
		if fr.Type == typeMessage && strings.TrimSpace(fr.Text) == "" && len(fr.Attachments) == 0 {
			t.Fatal("accepted an empty message")
		}
		again, jerr := json.Marshal(fr)
		if jerr != nil {
			t.Fatalf("re-encode: %v", jerr)
		}
		fr2, ferr := decodeFrame(again)
		if ferr != nil {
			t.Fatalf("re-encoded frame refused: %v\n%s", ferr, again)
		}
		if !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, fr2)
		}
	})
}

package email

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// TestParseTokenResponse reads token endpoint answers as RFC 6749 and the
// providers write them.
func TestParseTokenResponse(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok, err := parseTokenResponse(200, "application/json; charset=utf-8",
		[]byte(`{"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All","expires_in":4523,"ext_expires_in":4523,"access_token":"EwBAAl3","refresh_token":"M.C5_BAY"}`), at)
	if err != nil || tok.AccessToken != "EwBAAl3" || tok.RefreshToken != "M.C5_BAY" || !tok.Expiry.Equal(at.Add(4523*time.Second)) {
		t.Errorf("microsoft: %+v, %v", tok, err)
	}
	tok, err = parseTokenResponse(200, "application/json", []byte(`{"access_token":"ya29.a0","expires_in":"3599","token_type":"Bearer"}`), at)
	if err != nil || tok.RefreshToken != "" || !tok.Expiry.Equal(at.Add(3599*time.Second)) {
		t.Errorf("google, expires_in as a string: %+v, %v", tok, err)
	}
	_, err = parseTokenResponse(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."}`), at)
	if !errors.Is(err, ErrRefreshRefused) || !strings.Contains(err.Error(), "AADSTS70008") {
		t.Errorf("invalid_grant: %v", err)
	}
	_, err = parseTokenResponse(503, "text/html", []byte("<h1>Service Unavailable</h1>"), at)
	if err == nil || errors.Is(err, ErrRefreshRefused) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("503: %v, want a plain error", err)
	}
	for _, body := range []string{`{"access_token":"x","token_type":"mac"}`, `{"access_token":"x","expires_in":-5}`, `{"token_type":"Bearer"}`, `not json`} {
		if _, err := parseTokenResponse(200, "application/json", []byte(body), at); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
}

// FuzzParseTokenResponse: any answer of a token endpoint gives a token with
// an access token, or an error whose text is printable and bounded; never a
// panic.
func FuzzParseTokenResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"ya29.a0","refresh_token":"1//0g"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`))
	f.Add(401, "application/json; charset=utf-8", []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}`))
	f.Add(200, "text/plain", []byte(`access_token=x&expires_in=3600`))
	f.Add(500, "", []byte("\x00\xff"))
	f.Add(200, "application/json", []byte(`{"access_token":"x","expires_in":99999999999999999999}`))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		tok, err := parseTokenResponse(status, ct, body, at)
		if err != nil {
			msg := err.Error()
			if !utf8.ValidString(msg) || strings.IndexFunc(msg, unicode.IsControl) >= 0 || len(msg) > 1000 {
				t.Errorf("error text %q", msg)
			}
			return
		}
		if tok.AccessToken == "" || !tok.Expiry.IsZero() && tok.Expiry.Before(at) {
			t.Errorf("token %+v", tok)
		}
	})
}

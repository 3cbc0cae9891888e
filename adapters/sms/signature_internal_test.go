package sms

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Twilio's documented example of a request signature (twilio.com/docs/usage/security):
// auth token 12345, the URL and POST parameters below.
const (
	docToken     = "12345"
	docURL       = "https://mycompany.com/myapp.php?foo=1&bar=2"
	docSignature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
)

var docParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+12349013030"},
	"Digits":  {"1234"},
	"From":    {"+12349013030"},
	"To":      {"+18005551212"},
}

// TestVerified_TwilioDocExample runs Twilio's documented example through the
// adapter's own check: the URL is the configured public URL plus the path and
// query the request arrived with.
func TestVerified_TwilioDocExample(t *testing.T) {
	a := &Adapter{public: "https://mycompany.com", validate: newValidator(docToken).Validate}
	tests := []struct {
		name   string
		target string
		params url.Values
		sig    string
		want   bool
	}{
		{"documented", "/myapp.php?foo=1&bar=2", docParams, docSignature, true},
		{"no signature", "/myapp.php?foo=1&bar=2", docParams, "", false},
		{"other signature", "/myapp.php?foo=1&bar=2", docParams, "1/KCTR6DLpKmkAf8muzZqo1nDgQ=", false},
		{"query changed", "/myapp.php?foo=1&bar=3", docParams, docSignature, false},
		{"path changed", "/other.php?foo=1&bar=2", docParams, docSignature, false},
		{"param changed", "/myapp.php?foo=1&bar=2", with(docParams, "Digits", "9999"), docSignature, false},
		{"param added", "/myapp.php?foo=1&bar=2", with(docParams, "Extra", "x"), docSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.params.Encode()))
			// The Host a proxy forwards plays no part.
			r.Host = "10.1.2.3:8080"
			if tt.sig != "" {
				r.Header.Set(SignatureHeader, tt.sig)
			}
			if got := a.verified(r, tt.params); got != tt.want {
				t.Errorf("verified = %v, want %v", got, tt.want)
			}
		})
	}
}

func with(v url.Values, k, val string) url.Values {
	c := url.Values{}
	for kk, vv := range v {
		c[kk] = append([]string(nil), vv...)
	}
	c.Set(k, val)
	return c
}

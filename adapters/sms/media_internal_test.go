package sms

import (
	"net/url"
	"testing"
)

func TestMediaAllowed(t *testing.T) {
	a := &Adapter{
		cfg:     Config{MediaHosts: []string{"media.example.com", "*.cdn.example.net"}},
		apiBase: &url.URL{Scheme: "http", Host: "127.0.0.1:4010"},
	}
	tests := []struct {
		url           string
		allowed, auth bool
	}{
		{"https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", true, true},
		{"https://API.Twilio.com/x", true, true},
		{"https://api.twilio.com:443/x", true, true},
		{"https://media.twiliocdn.com/AC1/abc", true, true},
		{"https://s3-external-1.twiliocdn.com/x", true, true},
		{"https://mcs.us1.twilio.com/v1/Services/IS1/Media/ME1", true, true},
		{"http://127.0.0.1:4010/media/1", true, true}, // api_base_url, a test double
		{"https://media.example.com/a.jpg", true, false},
		{"https://img.cdn.example.net/a.jpg", true, false},
		{"https://cdn.example.net/a.jpg", false, false},
		{"https://example.com/a.jpg", false, false},
		{"https://twilio.com.evil.io/x", false, false},
		{"https://eviltwilio.com/x", false, false},
		{"https://eviltwiliocdn.com/x", false, false},
		{"http://api.twilio.com/x", false, false},
		{"http://127.0.0.1:4011/x", false, false},
		{"https://user:pw@api.twilio.com/x", false, false},
		{"https:///x", false, false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		allowed := a.mediaAllowed(u)
		if allowed != tt.allowed {
			t.Errorf("mediaAllowed(%s) = %v, want %v", tt.url, allowed, tt.allowed)
		}
		if auth := allowed && a.twilioHost(u); auth != tt.auth {
			t.Errorf("credentials for %s = %v, want %v", tt.url, auth, tt.auth)
		}
	}
}

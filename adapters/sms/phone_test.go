package sms_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/sms"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, region, want string
	}{
		{"+14155550100", "US", "+14155550100"},
		{"+1 (415) 555-0100", "US", "+14155550100"},
		{"415.555.0100", "US", "+14155550100"},
		{"4155550100", "US", "+14155550100"},
		{" +14155550100 ", "DE", "+14155550100"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"+44 20 7946 0958", "US", "+442079460958"},
		{"+49 30 901820", "US", "+4930901820"},
		{"030 901820", "DE", "+4930901820"},
		{"+15005550006", "US", "+15005550006"}, // Twilio's test number: possible, not valid
		{"+5511987654321", "US", "+5511987654321"},

		{"", "US", ""},
		{"hello", "US", ""},
		{"+1", "US", ""},
		{"12", "US", ""},
		{"+999 1234567", "US", ""},
		{"+1415555010012345678", "US", ""},
		{"1-800-FLOWERS", "US", ""},
		{"+14155550100 ext. 12", "US", ""},
		{"++14155550100", "US", ""},
		{"415+5550100", "US", ""},
		{"whatsapp:+14155550100", "US", ""},
	}
	for _, tt := range tests {
		got, err := sms.Normalize(tt.in, tt.region)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q, %s) = %q, want an error", tt.in, tt.region, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %s) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
		}
	}
}

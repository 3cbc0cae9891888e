package core_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/core"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		channel string
		address string
		wantErr string // substring of the error; "" when valid
	}{
		{name: "sms", in: "sms:+15551234567", channel: "sms", address: "+15551234567"},
		{name: "email", in: "email:ann@example.com", channel: "email", address: "ann@example.com"},
		{name: "telegram", in: "telegram:42", channel: "telegram", address: "42"},
		{name: "web", in: "web:v_01HZY3K8Q2", channel: "web", address: "v_01HZY3K8Q2"},
		{name: "colon in address", in: "matrix:@ann:example.org", channel: "matrix", address: "@ann:example.org"},
		{name: "underscore and digits", in: "whatsapp_2:+1", channel: "whatsapp_2", address: "+1"},
		{name: "longest channel", in: strings.Repeat("c", 32) + ":x", channel: strings.Repeat("c", 32), address: "x"},
		{name: "longest address", in: "web:" + strings.Repeat("a", 512), channel: "web", address: strings.Repeat("a", 512)},
		{name: "unicode address", in: "email:zoë@exämple.com", channel: "email", address: "zoë@exämple.com"},

		{name: "empty", in: "", wantErr: "empty"},
		{name: "no colon", in: "sms+1555", wantErr: `missing ":"`},
		{name: "empty channel", in: ":+1555", wantErr: `channel "" does not match`},
		{name: "upper-case channel", in: "SMS:+1555", wantErr: `channel "SMS" does not match ^[a-z][a-z0-9_]{0,31}$`},
		{name: "channel starts with digit", in: "1sms:+1555", wantErr: "does not match"},
		{name: "channel with dash", in: "what-sapp:+1555", wantErr: "does not match"},
		{name: "channel too long", in: strings.Repeat("c", 33) + ":x", wantErr: "does not match"},
		{name: "empty address", in: "sms:", wantErr: "empty address"},
		{name: "address too long", in: "web:" + strings.Repeat("a", 513), wantErr: "address: 513 bytes, at most 512"},
		{name: "newline in address", in: "email:ann@example.com\nbcc:eve", wantErr: "control character"},
		{name: "nul in address", in: "sms:+1\x00", wantErr: "control character"},
		{name: "del in address", in: "sms:+1\x7f", wantErr: "control character"},
		{name: "c1 control in address", in: "sms:+1\u0085", wantErr: "control character"},
		{name: "invalid utf-8", in: "sms:+1\xff", wantErr: "not valid utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := core.ParseIdentity(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseIdentity(%q) = %q, want error", tt.in, id)
				}
				if !errors.Is(err, core.ErrInvalid) {
					t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if id != "" {
					t.Errorf("ParseIdentity returned %q with an error", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIdentity(%q): %v", tt.in, err)
			}
			if string(id) != tt.in {
				t.Errorf("ParseIdentity(%q) = %q, want it unchanged", tt.in, id)
			}
			if got := id.Channel(); got != tt.channel {
				t.Errorf("Channel() = %q, want %q", got, tt.channel)
			}
			if got := id.Address(); got != tt.address {
				t.Errorf("Address() = %q, want %q", got, tt.address)
			}
			if again := core.NewIdentity(id.Channel(), id.Address()); again != id {
				t.Errorf("NewIdentity(Channel(), Address()) = %q, want %q", again, id)
			}
		})
	}
}

func TestParseIdentity_ErrorOmitsAddress(t *testing.T) {
	// Addresses are personal data; errors end up in logs.
	_, err := core.ParseIdentity("sms:+15551234567\n")
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), "5551234567") {
		t.Errorf("error %q repeats the address", err)
	}
}

func TestIdentity_ChannelAddress(t *testing.T) {
	tests := []struct {
		in               core.Identity
		channel, address string
	}{
		{"", "", ""},
		{"nocolon", "", ""},
		{"sms:", "sms", ""},
		{":x", "", "x"},
		{"a:b:c", "a", "b:c"},
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			if got := tt.in.Channel(); got != tt.channel {
				t.Errorf("Channel() = %q, want %q", got, tt.channel)
			}
			if got := tt.in.Address(); got != tt.address {
				t.Errorf("Address() = %q, want %q", got, tt.address)
			}
		})
	}
}

func TestNewIdentity(t *testing.T) {
	if got, want := core.NewIdentity("sms", "+15551234567"), core.Identity("sms:+15551234567"); got != want {
		t.Errorf("NewIdentity = %q, want %q", got, want)
	}
}

func TestValidChannel(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"sms", true},
		{"a", true},
		{"whatsapp", true},
		{"my_channel2", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{strings.Repeat("a", 33), false},
		{"Sms", false},
		{"_sms", false},
		{"2sms", false},
		{"sms-2", false},
		{"sms.x", false},
		{"sms ", false},
		{"smś", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := core.ValidChannel(tt.in); got != tt.want {
				t.Errorf("ValidChannel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

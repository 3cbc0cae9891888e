package core

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxChannelBytes is the longest channel name: a lower-case letter followed by
// at most 31 lower-case letters, digits or underscores.
const MaxChannelBytes = 32

// MaxAddressBytes is the longest address an Identity may carry.
const MaxAddressBytes = 512

// channelPattern is ValidChannel's rule, spelled the way error messages and the JSON
// schema spell it.
const channelPattern = `^[a-z][a-z0-9_]{0,31}$`

// Identity names one party on one channel as "channel:address", e.g.
// "sms:+15551234567", "email:ann@example.com", "telegram:42" or "web:v_01H...".
// The channel is everything before the first colon, the address everything after
// it, so an address may itself contain colons. The zero value means "no identity".
// Identities are compared byte for byte: normalizing an address (E.164 phone
// numbers, lower-case email domains) is the adapter's job before it builds one.
type Identity string

// NewIdentity joins channel and address into an Identity without checking them;
// use ParseIdentity, or Message.Validate, to check the result.
func NewIdentity(channel, address string) Identity {
	return Identity(channel + ":" + address)
}

// ParseIdentity checks that s is a valid identity and returns it unchanged. The
// channel must match ^[a-z][a-z0-9_]{0,31}$; the address must be non-empty valid
// UTF-8 of at most MaxAddressBytes bytes without control characters. The error
// matches ErrInvalid.
func ParseIdentity(s string) (Identity, error) {
	if p := identityProblem(s); p != "" {
		return "", &invalidError{msg: "core: invalid identity: " + p}
	}
	return Identity(s), nil
}

// Channel returns the part of i before the first colon, or "" when i has no colon.
func (i Identity) Channel() string {
	c, _, ok := strings.Cut(string(i), ":")
	if !ok {
		return ""
	}
	return c
}

// Address returns the part of i after the first colon, or "" when i has no colon.
func (i Identity) Address() string {
	_, a, _ := strings.Cut(string(i), ":")
	return a
}

// String returns i as it is written on the wire.
func (i Identity) String() string { return string(i) }

// ValidChannel reports whether name is usable as a channel name: a lower-case
// letter followed by at most 31 lower-case letters, digits or underscores. The
// same rule holds for Message.Channel and for the channel part of an Identity.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelBytes || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// identityProblem returns what is wrong with s as an identity, or "" when nothing
// is. It never repeats the address: addresses are personal data and the result
// ends up in logs.
func identityProblem(s string) string {
	channel, address, ok := strings.Cut(s, ":")
	switch {
	case s == "":
		return "empty"
	case !ok:
		return `missing ":" between channel and address`
	case !ValidChannel(channel):
		return fmt.Sprintf("channel %s does not match %s", quote(channel), channelPattern)
	case address == "":
		return "empty address"
	case len(address) > MaxAddressBytes:
		return fmt.Sprintf("address: %d bytes, at most %d", len(address), MaxAddressBytes)
	case !utf8.ValidString(address):
		return "address: not valid utf-8"
	case strings.IndexFunc(address, unicode.IsControl) >= 0:
		return "address: contains a control character"
	}
	return ""
}

// Package sign is omnigate's one way to make and check the HMAC signatures
// that prove where a request or a token comes from: providers' webhooks
// (Twilio, the ticket webhook bridge, Zendesk), the web chat's visitor tokens
// and identity claims, the Slack desk's file links. Each caller keeps its own
// wire format (hex, base64, a prefix); the MAC and its comparison are here, so
// no caller compares a signature in variable time.
package sign

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
)

// MAC returns the HMAC of the parts, written one after the other, with key
// and hash h.
func MAC(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// SHA256 is MAC with SHA-256.
func SHA256(key []byte, parts ...[]byte) []byte { return MAC(sha256.New, key, parts...) }

// SHA1 is MAC with SHA-1, for providers that sign with it (Twilio).
func SHA1(key []byte, parts ...[]byte) []byte { return MAC(sha1.New, key, parts...) }

// Check reports, in constant time, whether sig is the MAC of the parts with
// key and hash h. An empty key or signature never checks.
func Check(h func() hash.Hash, key, sig []byte, parts ...[]byte) bool {
	if len(key) == 0 || len(sig) == 0 {
		return false
	}
	return hmac.Equal(sig, MAC(h, key, parts...))
}

package sign_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/omnigate/omnigate/core/sign"
)

// RFC 4231, test case 2.
func TestSHA256_RFC4231(t *testing.T) {
	got := hex.EncodeToString(sign.SHA256([]byte("Jefe"), []byte("what do ya want "), []byte("for nothing?")))
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Fatalf("HMAC-SHA256 = %s, want %s", got, want)
	}
}

// RFC 2202, test case 2.
func TestSHA1_RFC2202(t *testing.T) {
	got := hex.EncodeToString(sign.SHA1([]byte("Jefe"), []byte("what do ya want for nothing?")))
	if want := "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"; got != want {
		t.Fatalf("HMAC-SHA1 = %s, want %s", got, want)
	}
}

func TestCheck(t *testing.T) {
	key, msg := []byte("k"), []byte("message")
	sig := sign.SHA256(key, msg)
	cases := []struct {
		name     string
		key, sig []byte
		want     bool
	}{
		{"right", key, sig, true},
		{"other key", []byte("x"), sig, false},
		{"cut", key, sig[:10], false},
		{"empty sig", key, nil, false},
		{"empty key", nil, sign.SHA256(nil, msg), false},
	}
	for _, c := range cases {
		if got := sign.Check(sha256.New, c.key, c.sig, msg); got != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, got, c.want)
		}
	}
}

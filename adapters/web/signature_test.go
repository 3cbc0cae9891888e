package web

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Unix(1_700_000_000, 0)
	c := tokenClaims{Channel: "web", Site: "shop", Visitor: newVisitorID(), User: "42", Expires: now.Add(time.Hour).Unix()}
	tok := signToken(key, c)
	got, err := verifyToken(key, tok, now)
	if err != nil || got != c {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	if _, err := verifyToken(key, tok, now.Add(time.Hour)); !errors.Is(err, errTokenExpired) {
		t.Errorf("expired: %v", err)
	}
	if _, err := verifyToken([]byte(strings.Repeat("x", 32)), tok, now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("other key: %v", err)
	}
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, tokenPrefix), ".")
	forged := tokenPrefix + payload[:len(payload)-2] + "AA." + sig
	for _, bad := range []string{"", "v1.", "v1..", "v2." + payload + "." + sig, forged, tok + "x", strings.Repeat("a", 3000)} {
		if _, err := verifyToken(key, bad, now); !errors.Is(err, errTokenInvalid) {
			t.Errorf("verifyToken(%.40q) = %v, want invalid", bad, err)
		}
	}
	bad := c
	bad.Visitor = "admin"
	if _, err := verifyToken(key, signToken(key, bad), now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("token for a malformed visitor id: %v", err)
	}
}

func TestVerifyIdentity(t *testing.T) {
	secret := "site-secret-0123456789"
	now := time.Unix(1_700_000_000, 0)
	sign := func(id Identity) Identity { return SignIdentity(secret, "shop", id) }
	ok := sign(Identity{UserID: "42", Email: "Ann@Example.COM", Phone: "+15551234567", TS: now.Unix()})
	got, err := verifyIdentity([]byte(secret), "shop", ok, time.Hour, now)
	if err != nil || got.Email != "Ann@example.com" || got.Sig != "" || got.UserID != "42" {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	upper := ok
	upper.Sig = strings.ToUpper(ok.Sig)
	if _, err := verifyIdentity([]byte(secret), "shop", upper, time.Hour, now); err != nil {
		t.Errorf("upper-case hex: %v", err)
	}
	// The recipe of the doc comment, spelled out: backends in other languages
	// implement exactly this.
	if want := hmacHex(secret, "omnigate-identity-v1\nshop\n42\nAnn@Example.COM\n+15551234567\n1700000000"); ok.Sig != want {
		t.Errorf("sig %s, want %s", ok.Sig, want)
	}
	tests := []struct {
		name string
		id   Identity
		want error
	}{
		{"other user", func() Identity { i := ok; i.UserID = "43"; return i }(), errIdentityInvalid},
		{"email added", func() Identity { i := ok; i.Email = "eve@example.com"; return i }(), errIdentityInvalid},
		{"no sig", func() Identity { i := ok; i.Sig = ""; return i }(), errIdentityInvalid},
		{"newline smuggling", sign(Identity{UserID: "42\nx", TS: now.Unix()}), errIdentityInvalid},
		{"empty user", sign(Identity{UserID: "", TS: now.Unix()}), errIdentityInvalid},
		{"old", sign(Identity{UserID: "42", TS: now.Add(-61 * time.Minute).Unix()}), errIdentityExpired},
		{"future", sign(Identity{UserID: "42", TS: now.Add(6 * time.Minute).Unix()}), errIdentityExpired},
		{"slightly future", sign(Identity{UserID: "42", TS: now.Add(time.Minute).Unix()}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifyIdentity([]byte(secret), "shop", tt.id, time.Hour, now); !errors.Is(err, tt.want) && err != tt.want {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := verifyIdentity(nil, "shop", ok, time.Hour, now); !errors.Is(err, errIdentityInvalid) {
		t.Errorf("site without secret: %v", err)
	}
}

func TestVisitorIDs(t *testing.T) {
	a, b := newVisitorID(), newVisitorID()
	if a == b || !validVisitorID(a) {
		t.Errorf("anonymous ids %s %s", a, b)
	}
	u := userVisitorID("shop", "42")
	if !validVisitorID(u) || u != userVisitorID("shop", "42") || u == userVisitorID("shop", "43") || u == userVisitorID("other", "42") {
		t.Errorf("user id %s", u)
	}
	for _, bad := range []string{"", "v", "vabc", "u" + strings.Repeat("G", 32), "x" + strings.Repeat("0", 26), a + "."} {
		if validVisitorID(bad) {
			t.Errorf("validVisitorID(%q) = true", bad)
		}
	}
}

// TestDocs_IdentityExample keeps the worked example of docs/web-protocol.md,
// which site backends are written from, true.
func TestDocs_IdentityExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/web-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	id := SignIdentity("site-secret-0123456789", "shop", Identity{UserID: "42", Email: "Ann@Example.COM", Phone: "+15551234567", TS: 1700000000})
	if !strings.Contains(string(doc), `"sig": "`+id.Sig+`"`) {
		t.Errorf("docs/web-protocol.md does not show the signature %s of its example", id.Sig)
	}
}

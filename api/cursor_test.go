package api

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/omnigate/omnigate/core"
)

func TestCursor_RoundTrip(t *testing.T) {
	for _, c := range []cursor{{}, {Before: core.NewID()}, {After: 42}, {After: ^uint64(0)}} {
		got, err := decodeCursor(c.encode())
		if err != nil || got != c {
			t.Errorf("decode(encode(%+v)) = %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"!!", "e30=x", base64.RawURLEncoding.EncodeToString([]byte(`{"b":"not-an-id"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"x":1}`)), base64.RawURLEncoding.EncodeToString([]byte(`{"a":-1}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{} {}`))} {
		if _, err := decodeCursor(bad); !errors.Is(err, errCursor) {
			t.Errorf("decodeCursor(%q) = %v, want errCursor", bad, err)
		}
	}
}

// FuzzCursor_Decode: any "next" a client sends decodes to a cursor that
// encodes and decodes to itself, or is refused with errCursor; never a panic.
func FuzzCursor_Decode(f *testing.F) {
	f.Add("")
	f.Add(cursor{Before: "01JD0000000000000000000000"}.encode())
	f.Add(cursor{After: 17}.encode())
	f.Add("eyJiIjoiIn0")
	f.Add("e30")
	f.Add("=====")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"a":1e30}`)))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, errCursor) {
				t.Fatalf("decodeCursor(%q) = %v", s, err)
			}
			return
		}
		if c.Before != "" && !core.ValidID(c.Before) {
			t.Fatalf("decodeCursor(%q) accepted before %q", s, c.Before)
		}
		again, err := decodeCursor(c.encode())
		if err != nil || again != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}

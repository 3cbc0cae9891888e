package mailtest_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// FuzzParseBearer: the fake servers' reading of a client's initial response
// never panics, and what it accepts names a user and a token.
func FuzzParseBearer(f *testing.F) {
	f.Add(email.MechXOAuth2, []byte("user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"))
	// RFC 7628 section 4.1.
	f.Add(email.MechOAuthBearer, []byte("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"))
	f.Add(email.MechOAuthBearer, []byte("n,,\x01auth=Bearer x\x01\x01"))
	f.Add(email.MechXOAuth2, []byte("user=\x01\x01"))
	f.Add(email.MechXOAuth2, []byte(""))
	f.Add("PLAIN", []byte("\x00u\x00p"))
	f.Fuzz(func(t *testing.T, mech string, resp []byte) {
		user, token, err := mailtest.ParseBearer(mech, resp)
		if err == nil && (user == "" || token == "") {
			t.Errorf("accepted %q with user %q token %q", resp, user, token)
		}
	})
}

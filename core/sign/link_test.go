package sign_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/sign"
)

// query parses the query of a link made by Sign.
func query(t testing.TB, link string) url.Values {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestLinks_SignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	l := sign.NewLinks([]byte("a key of thirty-two bytes, more!"), clock)
	link := l.Sign("/conversations/01ABC", time.Hour)
	if !strings.HasPrefix(link, "/conversations/01ABC?exp=") {
		t.Fatalf("link = %q", link)
	}
	q := query(t, link)
	if err := l.Verify("/conversations/01ABC", q); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
	if got := sign.Expires(q); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("Expires = %v", got)
	}
	for name, tc := range map[string]struct {
		path string
		q    url.Values
		l    *sign.Links
		want error
	}{
		"other path":     {"/conversations/01ABD", q, l, sign.ErrLinkForged},
		"other key":      {"/conversations/01ABC", q, sign.NewLinks([]byte("another key"), clock), sign.ErrLinkForged},
		"no signature":   {"/conversations/01ABC", url.Values{"exp": q["exp"]}, l, sign.ErrLinkForged},
		"exp moved on":   {"/conversations/01ABC", url.Values{"exp": {"9999999999"}, "sig": q["sig"]}, l, sign.ErrLinkForged},
		"bad base64":     {"/conversations/01ABC", url.Values{"exp": q["exp"], "sig": {"!!"}}, l, sign.ErrLinkForged},
		"empty key":      {"/conversations/01ABC", q, sign.NewLinks(nil, clock), sign.ErrLinkForged},
		"an hour later+": {"/conversations/01ABC", q, sign.NewLinks([]byte("a key of thirty-two bytes, more!"), func() time.Time { return now.Add(time.Hour + time.Second) }), sign.ErrLinkExpired},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.l.Verify(tc.path, tc.q); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzLinks_Verify: whatever comes in a link's query, Verify never panics
// and accepts only the signature it made for that path and expiry.
func FuzzLinks_Verify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	l := sign.NewLinks([]byte("fuzz key"), func() time.Time { return now })
	good := query(f, l.Sign("/conversations/01ABC", time.Hour))
	f.Add("/conversations/01ABC", good.Get("exp"), good.Get("sig"))
	f.Add("/conversations/01ABC", good.Get("exp")+"0", good.Get("sig"))
	f.Add("/conversations/01ABC/attachments/0", "-1", "")
	f.Add("", "", "")
	f.Add("/x", "99999999999999999999999", "AAAA")
	f.Add("/conversations/01ABC", "1800003600", strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, path, exp, sig string) {
		err := l.Verify(path, url.Values{"exp": {exp}, "sig": {sig}})
		if err == nil && (path != "/conversations/01ABC" || exp != good.Get("exp") || sig != good.Get("sig")) {
			t.Fatalf("accepted a link it did not make: %q exp=%q sig=%q", path, exp, sig)
		}
		if err != nil && !errors.Is(err, sign.ErrLinkForged) && !errors.Is(err, sign.ErrLinkExpired) {
			t.Fatalf("Verify = %v", err)
		}
		// Every link Sign makes for any path verifies.
		{
			link := l.Sign(path, time.Minute)
			if err := l.Verify(path, query(t, "http://h/"+link[len(path):])); err != nil {
				t.Fatalf("Sign(%q) does not verify: %v", path, err)
			}
		}
	})
}

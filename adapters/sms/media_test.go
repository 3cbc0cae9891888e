package sms_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
)

func TestFetchMedia(t *testing.T) {
	// A host that is not Twilio's, counting what reaches it.
	var evilHits atomic.Int32
	var evilAuth atomic.Bool
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			evilAuth.Store(true)
		}
		_, _ = w.Write([]byte("evil"))
	}))
	t.Cleanup(evil.Close)

	_, a, fake := setup(t, "sms", "max_media_bytes: 1024")
	jpeg := []byte("\xff\xd8\xff\xe0 not really a jpeg")
	photo := fake.AddMedia("ME"+strings.Repeat("1", 32), "image/jpeg", jpeg)
	big := fake.AddMedia("ME"+strings.Repeat("2", 32), "video/mp4", bytes.Repeat([]byte("x"), 2048))
	redirected := fake.AddMediaRedirect("ME"+strings.Repeat("3", 32), evil.URL+"/steal")

	t.Run("twilio media with credentials", func(t *testing.T) {
		data, ct, err := a.FetchMedia(ctx(t), photo)
		if err != nil {
			t.Fatalf("FetchMedia: %v", err)
		}
		if !bytes.Equal(data, jpeg) || ct != "image/jpeg" {
			t.Errorf("got %q %q", data, ct)
		}
	})
	t.Run("too large", func(t *testing.T) {
		if _, _, err := a.FetchMedia(ctx(t), big); !errors.Is(err, sms.ErrMediaTooLarge) {
			t.Errorf("FetchMedia: %v, want ErrMediaTooLarge", err)
		}
	})
	t.Run("other hosts refused", func(t *testing.T) {
		for _, u := range []string{
			evil.URL + "/media.jpg",
			"https://evil.example.com/2010-04-01/Accounts/" + twiliotest.AccountSID + "/Media/ME1",
			"https://api.twilio.com.evil.example.com/x",
			"https://api.twilio.com@evil.example.com/x",
			"http://api.twilio.com/x", // credentials never go in clear text
			"https://api.twilio.com:8443/x",
			"ftp://media.twiliocdn.com/x",
			"not a url \x00",
		} {
			if _, _, err := a.FetchMedia(ctx(t), u); !errors.Is(err, sms.ErrMediaHost) {
				t.Errorf("FetchMedia(%q): %v, want ErrMediaHost", u, err)
			}
		}
	})
	t.Run("redirect to another host refused", func(t *testing.T) {
		if _, _, err := a.FetchMedia(ctx(t), redirected); !errors.Is(err, sms.ErrMediaHost) {
			t.Errorf("FetchMedia: %v, want ErrMediaHost", err)
		}
	})
	if n := evilHits.Load(); n != 0 || evilAuth.Load() {
		t.Errorf("the other host got %d requests (credentials: %v), want none", n, evilAuth.Load())
	}
	t.Run("not found", func(t *testing.T) {
		_, _, err := a.FetchMedia(ctx(t), fake.MediaURL("missing"))
		var ae *sms.APIError
		if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusNotFound {
			t.Errorf("FetchMedia of a missing file: %v, want an APIError 404", err)
		}
	})
}

func TestFetchMedia_MediaHosts(t *testing.T) {
	// media_hosts widens the list, without credentials; a test server is not
	// https, so only the refusal of what the list does not name is checked here.
	_, a, _ := setup(t, "sms", "media_hosts: [media.example.com, '*.cdn.example.net']")
	for _, u := range []string{"https://other.example.com/x", "https://cdn.example.net.evil.com/x"} {
		if _, _, err := a.FetchMedia(ctx(t), u); !errors.Is(err, sms.ErrMediaHost) {
			t.Errorf("FetchMedia(%q): %v, want ErrMediaHost", u, err)
		}
	}
}

package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Sentinel errors of FetchMedia; test with errors.Is.
var (
	// ErrMediaHost: the URL, or a redirect, leads to a host that is not
	// Twilio's (nor one of media_hosts). Nothing is fetched from it, and the
	// account's credentials never go there.
	ErrMediaHost = errors.New("media host not allowed")
	// ErrMediaTooLarge: the file is larger than max_media_bytes.
	ErrMediaTooLarge = errors.New("media too large")
)

// maxMediaRedirects bounds the redirects of one media download; Twilio's media
// URLs redirect once, to a signed CDN URL.
const maxMediaRedirects = 5

// FetchMedia downloads the file at rawURL, an Attachment.URL of an inbound MMS
// or WhatsApp message, and returns its bytes and content type. Twilio's hosts
// get the account's credentials (media may be protected by HTTP basic auth);
// other hosts are refused with ErrMediaHost, also when a redirect leads there,
// so a forged attachment URL cannot make omnigate fetch from, or send the
// credentials to, anywhere else. A file over max_media_bytes fails with
// ErrMediaTooLarge. Safe for concurrent use.
func (a *Adapter) FetchMedia(ctx context.Context, rawURL string) ([]byte, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !a.mediaAllowed(u) {
		return nil, "", fmt.Errorf("%s: fetch media: %w", a.name, ErrMediaHost)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("%s: fetch media: %w", a.name, err)
	}
	if a.twilioHost(u) {
		req.SetBasicAuth(a.cfg.AccountSID, a.cfg.AuthToken.Value())
	}
	resp, err := a.media.Do(req)
	if err != nil {
		if errors.Is(err, ErrMediaHost) {
			return nil, "", fmt.Errorf("%s: fetch media: redirected: %w", a.name, ErrMediaHost)
		}
		return nil, "", fmt.Errorf("%s: fetch media: %w", a.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s: fetch media: %w", a.name, decodeAPIError(resp, a.now()))
	}
	max := a.cfg.MaxMediaBytes
	if resp.ContentLength > max {
		return nil, "", fmt.Errorf("%s: fetch media: %d bytes: %w (max_media_bytes %d)", a.name, resp.ContentLength, ErrMediaTooLarge, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: fetch media: %w", a.name, err)
	}
	if int64(len(data)) > max {
		return nil, "", fmt.Errorf("%s: fetch media: %w (max_media_bytes %d)", a.name, ErrMediaTooLarge, max)
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// checkMediaRedirect allows a media download's redirect only to an allowed
// host. net/http drops the credentials on a redirect to another domain.
func (a *Adapter) checkMediaRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxMediaRedirects {
		return fmt.Errorf("more than %d redirects", maxMediaRedirects)
	}
	if !a.mediaAllowed(req.URL) {
		return ErrMediaHost
	}
	return nil
}

// mediaAllowed reports whether media may be fetched from u: over https (or
// the scheme of api_base_url, for a local test double), with no credentials in
// the URL, from Twilio's hosts or media_hosts.
func (a *Adapter) mediaAllowed(u *url.URL) bool {
	if u.User != nil || u.Host == "" {
		return false
	}
	if a.isAPIHost(u) {
		return true
	}
	if u.Scheme != "https" || (u.Port() != "" && u.Port() != "443") {
		return false
	}
	if a.twilioHost(u) {
		return true
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range a.cfg.MediaHosts {
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// twilioHost reports whether u is on one of Twilio's hosts, which get the
// account's credentials.
func (a *Adapter) twilioHost(u *url.URL) bool {
	if a.isAPIHost(u) {
		return true
	}
	if u.Scheme != "https" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	return host == "twilio.com" || strings.HasSuffix(host, ".twilio.com") ||
		host == "twiliocdn.com" || strings.HasSuffix(host, ".twiliocdn.com")
}

// isAPIHost reports whether u is on api_base_url's scheme and host.
func (a *Adapter) isAPIHost(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, a.apiBase.Scheme) && strings.EqualFold(u.Host, a.apiBase.Host)
}

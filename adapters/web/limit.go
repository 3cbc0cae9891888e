package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters hands out one token bucket per key (an IP address, a visitor) and
// forgets the ones left idle. It is bounded: past maxKeys it sweeps idle
// buckets, and if that frees nothing it lets the request through untracked
// rather than grow without end.
type limiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxKeys bounds the buckets of one limiters.
const maxKeys = 100_000

// idleAfter is when a bucket is forgotten: by then it is full again.
const idleAfter = 10 * time.Minute

func newLimiters(perSecond float64, burst int) *limiters {
	return &limiters{limit: rate.Limit(perSecond), burst: burst, m: map[string]*bucket{}}
}

// allow takes n tokens for key; when there are not enough it takes none and
// says how long to wait.
func (l *limiters) allow(key string, n int, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= maxKeys {
			l.sweepLocked(now)
		}
		if len(l.m) >= maxKeys {
			l.mu.Unlock()
			return true, 0
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = b
	}
	b.seen = now
	l.mu.Unlock()
	r := b.lim.ReserveN(now, n)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets idle buckets.
func (l *limiters) sweep(now time.Time) {
	l.mu.Lock()
	l.sweepLocked(now)
	l.mu.Unlock()
}

func (l *limiters) sweepLocked(now time.Time) {
	for k, b := range l.m {
		if now.Sub(b.seen) > idleAfter {
			delete(l.m, k)
		}
	}
}

// clientIP returns the address a request came from: the peer, or, when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is not one.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseProxies reads trusted_proxies (validated): CIDRs or single addresses.
func parseProxies(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out
}

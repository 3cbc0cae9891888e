package web

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	trusted := parseProxies([]string{"10.0.0.0/8", "192.168.1.1"})
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "203.0.113.5:4000", "", "203.0.113.5"},
		{"direct client lies", "203.0.113.5:4000", "1.2.3.4", "203.0.113.5"},
		{"through a proxy", "10.1.2.3:80", "198.51.100.7", "198.51.100.7"},
		{"through two proxies", "10.1.2.3:80", "198.51.100.7, 192.168.1.1", "198.51.100.7"},
		{"spoofed hop before the real one", "10.1.2.3:80", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		{"proxy without header", "192.168.1.1:80", "", "192.168.1.1"},
		{"garbage header", "10.1.2.3:80", "nonsense", "10.1.2.3"},
		{"ipv6", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"ipv4-mapped", "[::ffff:203.0.113.9]:443", "", "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientIP(r, trusted); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLimiters(t *testing.T) {
	l := newLimiters(1, 2)
	now := time.Unix(1000, 0)
	for i := range 2 {
		if ok, _ := l.allow("a", 1, now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a", 1, now)
	if ok || wait <= 0 || wait > time.Second {
		t.Errorf("over the burst: %v, wait %s", ok, wait)
	}
	if ok, _ := l.allow("b", 1, now); !ok {
		t.Error("another key shares the bucket")
	}
	if ok, _ := l.allow("a", 1, now.Add(time.Second)); !ok {
		t.Error("not refilled after a second")
	}
	l.sweep(now.Add(idleAfter + 2*time.Second))
	if len(l.m) != 0 {
		t.Errorf("%d idle buckets left after a sweep", len(l.m))
	}
}

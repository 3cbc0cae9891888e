package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// tcpProxy forwards connections to a backend until it is cut.
type tcpProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	conns   []net.Conn
}

// newTCPProxy listens on loopback and forwards every connection to backend
// (host:port) until Cut or the end of the test.
func newTCPProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, backend: backend}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

// Addr is where the proxy listens.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes the listener and every connection: the backend is gone.
func (p *tcpProxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// health is /healthz or /readyz, decoded.
type healthAnswer struct {
	code   int
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
	Checks []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"checks"`
}

func (h healthAnswer) errorOf(name string) string {
	for _, c := range h.Checks {
		if c.Name == name {
			return c.Error
		}
	}
	return "(no such check)"
}

func getHealth(t *testing.T, u string) healthAnswer {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := healthAnswer{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("%s: %d, not JSON: %v", u, resp.StatusCode, err)
	}
	return h
}

// With the store's Redis unreachable, the replica still takes traffic:
// /readyz stays 200 (the bus is up, and a webhook is stored on it), while
// /healthz, still 200, says "degraded" with the store's error.
func TestHealth_StoreDownStillReady(t *testing.T) {
	u, err := url.Parse(storetest.RedisURL(t, "readiness"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	prefix := "omnigate-test:" + core.NewID() + ":"
	t.Cleanup(func() { storetest.DeleteRedisPrefix(t, u.String(), prefix) })
	via := *u
	via.Host = proxy.Addr()
	g := startGateway(t, "", fmt.Sprintf("store:\n  backend: redis\n  redis:\n    url: %s\n    prefix: %q\n", via.String(), prefix))

	if h := getHealth(t, g.base+"/readyz"); h.code != http.StatusOK || !h.Ready {
		t.Fatalf("readyz with everything up: %+v", h)
	}
	proxy.Cut()
	bustest.Eventually(t, 30*time.Second, func() error {
		h := getHealth(t, g.base+"/healthz")
		if h.code != http.StatusOK || h.Status != "degraded" || h.errorOf("store") == "" {
			return fmt.Errorf("healthz with the store down: %+v", h)
		}
		if e := h.errorOf("bus"); e != "" {
			return fmt.Errorf("healthz says the bus is down: %s", e)
		}
		t.Logf("healthz with Redis unreachable: store: %s; tickets: %s", h.errorOf("store"), h.errorOf("tickets"))
		return nil
	})
	if h := getHealth(t, g.base+"/readyz"); h.code != http.StatusOK || !h.Ready || len(h.Checks) != 1 || h.Checks[0].Name != "bus" {
		t.Errorf("readyz with the store down: %+v, want 200 ready on the bus alone", h)
	}
	// What ingress needs still works: an SMS webhook is stored on the bus and answered 200.
	code, body := twiliotest.PostWebhook(t, g.base+"/channels/sms/webhook", twiliotest.IncomingMessage("SM"+strings.Repeat("0", 31)+"7", "+15551230007", twiliotest.From, "is anyone there?"))
	if code != http.StatusOK {
		t.Errorf("SMS webhook with the store down: %d %s, want 200", code, body)
	}
}

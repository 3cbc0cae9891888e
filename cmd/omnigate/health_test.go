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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// tcpProxy forwards connections to a backend until it is cut, and again once
// restored.
type tcpProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	conns   []net.Conn
	down    bool
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
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close() // as a dead server's host would refuse it
				continue
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
	t.Cleanup(func() { p.ln.Close(); p.Cut() })
	return p
}

// Addr is where the proxy listens.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and refuses new ones: the backend is gone.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore forwards new connections again: the backend is back.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
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
// /healthz, still 200, says "degraded" with the store's error. The message
// waits for the store (omnigate_bus_waiting_deliveries), is not
// dead-lettered, and reaches the conversation's transcript once Redis is back.
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
	natsAddr := freeAddr(t)
	g := startGateway(t, "", fmt.Sprintf("store:\n  backend: redis\n  redis:\n    url: %s\n    prefix: %q\nnats:\n  consumer:\n    max_deliver: 2\n    backoff: [100ms]\n  embedded:\n    listen: %s\n", via.String(), prefix, natsAddr))

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
		t.Fatalf("SMS webhook with the store down: %d %s, want 200", code, body)
	}
	bustest.Eventually(t, 30*time.Second, func() error {
		if n, err := readMetric(g, "omnigate_bus_waiting_deliveries"); err != nil || n < 1 {
			return fmt.Errorf("omnigate_bus_waiting_deliveries %v (%v), want at least 1 while Redis is down", n, err)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // far past the retry schedule (max_deliver 2, backoff 100ms)
	proxy.Restore()
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, func() error {
		st, err := js.Stream(t.Context(), bus.StreamConv)
		if err != nil {
			return err
		}
		info, err := st.Info(t.Context())
		if err != nil || info.State.Msgs == 0 {
			return fmt.Errorf("transcript empty (%v)", err)
		}
		m, err := st.GetMsg(t.Context(), info.State.LastSeq)
		if err != nil || !strings.Contains(string(m.Data), "is anyone there?") {
			return fmt.Errorf("last transcript entry %v (%v)", m, err)
		}
		return nil
	})
	if st, err := js.Stream(t.Context(), bus.StreamDLQ); err != nil {
		t.Fatal(err)
	} else if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != 0 {
		t.Errorf("DLQ holds %d messages (%v), want none: an outage is not the message's fault", info.State.Msgs, err)
	}
	if n := metric(t, g, "omnigate_bus_unavailable_retries_total"); n < 2 {
		t.Errorf("omnigate_bus_unavailable_retries_total %v, want the retries counted", n)
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		if n, err := readMetric(g, "omnigate_bus_waiting_deliveries"); err != nil || n != 0 {
			return fmt.Errorf("omnigate_bus_waiting_deliveries %v (%v) after Redis is back, want 0", n, err)
		}
		return nil
	})
}

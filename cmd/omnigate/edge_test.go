package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// The HTTP edge of a running omnigate (issue 15): slow bodies cut off, large
// bodies and headers refused, connections per client capped, forged webhooks
// counted without flooding the log, and the web chat's WebSocket untouched.

// edgeAdminToken is the tickets admin API's token in the edge tests.
const edgeAdminToken = "edge-admin-token-0123456789"

// logLines is a slog handler's output, safe for concurrent use.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// with returns the lines (JSON records) that contain s.
func (l *logLines) with(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// gw is an omnigate serving on loopback, started by startGateway.
type gw struct {
	base string // http://127.0.0.1:port
	addr string // 127.0.0.1:port
	logs *logLines
}

// startGateway runs serve in this process with the http keys httpKeys
// (YAML lines indented two spaces), the sms, web and tickets sections and
// then rest, until the test ends; it waits until /healthz says "ok".
func startGateway(t *testing.T, httpKeys, rest string) *gw {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gw{base: "http://" + ln.Addr().String(), addr: ln.Addr().String(), logs: &logLines{}}
	twilio := twiliotest.NewServer(t)
	dir := t.TempDir()
	yml := fmt.Sprintf(`http:
  public_url: %s
%sdata_dir: %s
log:
  level: warn
tickets:
  admin_token: %s
channels:
  sms:
    account_sid: %s
    auth_token: %s
    from: "%s"
    api_base_url: %s
  web:
    sites:
      shop:
        origins: ["*"]
%s`, g.base, httpKeys, filepath.Join(dir, "data"), edgeAdminToken, twiliotest.AccountSID, twiliotest.AuthToken, twiliotest.From, twilio.URL, rest)
	file := filepath.Join(dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml)
	}
	log := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, file, ln, log, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	// A client of its own, whose connection does not stay open to count
	// against the per-client cap.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	bustest.Eventually(t, 30*time.Second, func() error {
		resp, err := c.Get(g.base + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"status":"ok"`) {
			return fmt.Errorf("healthz %d %s", resp.StatusCode, b)
		}
		return nil
	})
	return g
}

// client is an HTTP client of its own, closed when the test ends.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// slowBody connects to addr, sends head (a request's line and headers, with
// a Content-Length), then one byte of body per second until the server
// closes the connection. It returns what the server answered and how long
// after the headers it closed the connection, failing t when it is still
// open after limit.
func slowBody(t *testing.T, addr, head string, limit time.Duration) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(start.Add(limit))
	var got bytes.Buffer
	_, err = io.Copy(&got, c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("connection still open %s after the headers; answered %q", limit, got.String())
	}
	return got.String(), time.Since(start)
}

// statusLine is the first line of a raw HTTP answer.
func statusLine(answer string) string {
	line, _, _ := strings.Cut(answer, "\r\n")
	return line
}

func TestEdge_SlowBodiesCutOff(t *testing.T) {
	const bodyTimeout = 2 * time.Second
	g := startGateway(t, "  body_timeout: 2s\n  read_header_timeout: 2s\n", "")
	tests := []struct {
		name, head, want string
	}{
		{"sms webhook", "POST /channels/sms/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\nBody=", "HTTP/1.1 408 "},
		// The JSON decoder reads on while the string goes on.
		{"tickets API with the token", "POST /api/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + edgeAdminToken + "\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"subject\":\"", "HTTP/1.1 408 "},
		// Refused before its body is read: the server drains it, under the same deadline.
		{"tickets API without a token", "POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n", "HTTP/1.1 401 "},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Go(func() {
			got, took := slowBody(t, g.addr, tt.head, 30*time.Second)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("%s: answered %q, want %s", tt.name, statusLine(got), tt.want)
			}
			t.Logf("%s, one byte per second: closed %s after the headers (body_timeout %s)", tt.name, took.Round(10*time.Millisecond), bodyTimeout)
		})
	}
	wg.Wait()
	if n := metric(t, g, `omnigate_http_rejected_requests_total{channel="sms",reason="body_timeout"}`); n != 1 {
		t.Errorf("sms body timeouts counted: %v, want 1", n)
	}
	if n := metric(t, g, `omnigate_http_rejected_requests_total{channel="tickets",reason="body_timeout"}`); n != 1 {
		t.Errorf("tickets body timeouts counted: %v, want 1", n)
	}
}

func TestEdge_LargeBodiesAndHeadersRefused(t *testing.T) {
	g := startGateway(t, "", "")
	c := client(t)
	post := func(path, ct string, body []byte, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	form := twiliotest.IncomingMessage("SM"+strings.Repeat("0", 31)+"1", "+15551230001", twiliotest.From, strings.Repeat("x", 300<<10))
	if code, body := post("/channels/sms/webhook", "application/x-www-form-urlencoded", []byte(form.Encode())); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 262144 bytes") {
		t.Errorf("300 KB SMS webhook: %d %q, want 413 saying the limit", code, body)
	}
	big := []byte(`{"subject":"` + strings.Repeat("x", 2<<20) + `"}`)
	if code, body := post("/api/tickets", "application/json", big, "Authorization", "Bearer "+edgeAdminToken); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 1048576 bytes") {
		t.Errorf("2 MB tickets API body: %d %.200q, want 413 saying the limit", code, body)
	}
	if code, body := post("/api/tickets/hooks/webhook", "application/json", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MB tracker hook: %d %.200q, want 413", code, body)
	}

	// A 900 KB header: 431, before any handler.
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 900<<10)+"\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 431 ") {
		t.Errorf("900 KB header: answered %q (%v), want 431", line, err)
	}
}

func TestEdge_ConnectionsPerClientCapped(t *testing.T) {
	const max = 4
	g := startGateway(t, "  max_conns_per_client: 4\n", "")
	get := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	// Connections just closed may linger a moment on the server (it waits
	// before closing one it answered with Connection: close): retry until
	// max of them are served at once.
	var open []net.Conn
	bustest.Eventually(t, 10*time.Second, func() error {
		for _, c := range open {
			c.Close()
		}
		open = open[:0]
		for i := range max {
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				return err
			}
			open = append(open, c)
			if err := get(c); err != nil {
				return fmt.Errorf("connection %d of %d: %w", i+1, max, err)
			}
		}
		return nil
	})
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	extra, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := get(extra); err == nil {
		t.Fatalf("connection %d of one client was served; max_conns_per_client is %d", max+1, max)
	} else {
		t.Logf("connection %d of one client: %v", max+1, err)
	}
	// The open ones still work; a closed one frees its place.
	if err := get(open[1]); err != nil {
		t.Errorf("an open connection after the refusal: %v", err)
	}
	open[0].Close()
	bustest.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return get(c)
	})
	for _, c := range open {
		c.Close()
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		n, err := readMetric(g, "omnigate_http_refused_connections_total")
		if err == nil && n < 1 {
			err = fmt.Errorf("refused connections counted: %v, want at least 1", n)
		}
		return err
	})
}

// The web chat's WebSocket has no body, so no body deadline: it stays up
// well past http.body_timeout and keeps carrying frames.
func TestEdge_WebSocketOutlivesBodyTimeout(t *testing.T) {
	const bodyTimeout = time.Second
	g := startGateway(t, "  body_timeout: 1s\n  read_header_timeout: 1s\n", "")
	wsURL := "ws" + strings.TrimPrefix(g.base, "http") + "/channels/web/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {g.base}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	type frame struct{ Type, ClientID, Text, Code, Message string }
	next := func(typ string) frame {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			var f frame
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if f.Type == typ {
				return f
			}
		}
	}
	if err := conn.WriteJSON(map[string]any{"type": "hello", "site": "shop"}); err != nil {
		t.Fatal(err)
	}
	next("welcome")
	// Idle for three body timeouts: time has to pass for this test to say anything.
	time.Sleep(3 * bodyTimeout)
	if err := conn.WriteJSON(map[string]any{"type": "message", "client_id": "late", "text": "still here?"}); err != nil {
		t.Fatalf("write after %s: %v", 3*bodyTimeout, err)
	}
	if f := next("message"); f.Text != "still here?" {
		t.Errorf("echo %+v", f)
	}
}

func TestEdge_ForgedWebhooksCountedNotFlooding(t *testing.T) {
	g := startGateway(t, "", "")
	c := client(t)
	const n = 1000
	hook := g.base + "/channels/sms/webhook"
	for i := range n {
		form := twiliotest.IncomingMessage(fmt.Sprintf("SM%032x", i), "+15551230001", twiliotest.From, "forged")
		req := twiliotest.WebhookRequest(t, hook, form)
		req.Header.Set(sms.SignatureHeader, sms.Sign("not-the-token", hook, form))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged webhook %d: %d, want 403", i, resp.StatusCode)
		}
	}
	lines := g.logs.with("signature missing or invalid")
	t.Logf("%d forged SMS webhooks: %d log lines: %s", n, len(lines), strings.Join(lines, "\n"))
	if len(lines) == 0 || len(lines) > 3 {
		t.Errorf("%d log lines for %d forged webhooks, want 1 to 3", len(lines), n)
	}
	if got := metric(t, g, `omnigate_http_rejected_requests_total{channel="sms",reason="signature"}`); got != n {
		t.Errorf("counter = %v, want %d", got, n)
	}
	// A genuine one still goes through.
	if code, _ := twiliotest.PostWebhook(t, hook, twiliotest.IncomingMessage(fmt.Sprintf("SM%032x", n+1), "+15551230001", twiliotest.From, "hi")); code != http.StatusOK {
		t.Errorf("signed webhook after the flood: %d", code)
	}
}

// A visitor's upload over uploads.max_bytes (10 MB by default) is refused
// without the server holding it: declared (Content-Length) it is refused
// unread; streamed without a length, it goes to the store one chunk at a
// time and is deleted when it turns out too large.
func TestEdge_RejectedUploadMemoryFlat(t *testing.T) {
	g := startGateway(t, "", "")
	c := client(t)
	resp, err := c.Post(g.base+"/channels/web/hello", "application/json", strings.NewReader(`{"site":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	var welcome struct {
		VisitorToken string `json:"visitor_token"`
	}
	json.NewDecoder(resp.Body).Decode(&welcome)
	resp.Body.Close()
	if welcome.VisitorToken == "" {
		t.Fatalf("hello: %d", resp.StatusCode)
	}
	const size = 12 << 20 // over the 10 MiB default
	png := []byte("\x89PNG\r\n\x1a\n")
	for _, tt := range []struct {
		name     string
		declared bool
		maxAlloc uint64 // allowed growth of TotalAlloc over the upload
	}{
		{"declared", true, 2 << 20},
		// Stored chunk by chunk until it is found too large, then deleted:
		// each 256 KiB chunk costs its JSON encoding and the store's copies.
		{"streamed", false, 128 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := io.MultiReader(bytes.NewReader(png), io.LimitReader(zeros{}, size-int64(len(png))))
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+"/channels/web/uploads?name=big.png", body)
			req.Header.Set("Authorization", "Bearer "+welcome.VisitorToken)
			req.Header.Set("Content-Type", "application/octet-stream")
			if tt.declared {
				req.ContentLength = size
			}
			runtime.GC()
			var before, after, live runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d, want 413", resp.StatusCode)
			}
			total := after.TotalAlloc - before.TotalAlloc
			runtime.GC()
			runtime.ReadMemStats(&live)
			grown := int64(live.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("rejected %d MiB upload (%s): allocated %.1f MiB in all, live heap %+.1f MiB right after it (client, server and embedded NATS in this process)",
				size>>20, tt.name, float64(total)/(1<<20), float64(grown)/(1<<20))
			if total > tt.maxAlloc {
				t.Errorf("allocated %d bytes for a rejected upload of %d, want at most %d", total, size, tt.maxAlloc)
			}
			start := time.Now()
			bustest.Eventually(t, 60*time.Second, func() error {
				runtime.GC()
				runtime.ReadMemStats(&live)
				if grown := int64(live.HeapAlloc) - int64(before.HeapAlloc); grown > 4<<20 {
					return fmt.Errorf("live heap %+d bytes after a rejected upload of %d, want at most 4 MiB more", grown, size)
				}
				return nil
			})
			t.Logf("live heap back within 4 MiB of before %s after", time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// metricLine matches one sample of the Prometheus text format.
var metricLine = regexp.MustCompile(`^(\S+) (\S+)$`)

// metric reads the sample named series (name with labels, as /metrics
// writes it) from g's /metrics; 0 when it is not there.
func metric(t *testing.T, g *gw, series string) float64 {
	t.Helper()
	v, err := readMetric(g, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readMetric is metric, returning its error.
func readMetric(g *gw, series string) (float64, error) {
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(g.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil && m[1] == series {
			return strconv.ParseFloat(m[2], 64)
		}
	}
	return 0, sc.Err()
}

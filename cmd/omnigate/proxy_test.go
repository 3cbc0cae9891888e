package main

// TestComposeProxy_EndToEnd runs the compose file's reverse proxy for real:
// Debian's caddy with deploy/caddy/Caddyfile (only its listen address and
// upstreams moved to loopback ports) in front of two omnigate replicas on one
// NATS server, as in docker-compose.yml. It skips when caddy is not installed;
// .ci/run installs it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// proxyMarker is in the query of every request the test sends through the
// proxy, so that a replica's count leaves out the proxy's own health checks.
const proxyMarker = "via=compose-proxy"

func TestComposeProxy_EndToEnd(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (Debian package caddy; .ci/run installs it)")
	}
	nats := bustest.RunServer(t)
	proxyAddr := freeAddr(t)
	base := "http://" + proxyAddr
	a := startReplica(t, nats.URL(), base)
	b := startReplica(t, nats.URL(), base)
	startCaddy(t, caddy, proxyAddr, a.addr, b.addr)

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s through the proxy: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// One address spreads the requests over both replicas.
	const n = 20
	for i := range n {
		if code, body := get(fmt.Sprintf("/widget.js?%s&n=%d", proxyMarker, i)); code != 200 || !strings.Contains(body, "function") {
			t.Fatalf("GET /widget.js through the proxy: %d %.100q", code, body)
		}
	}
	if ca, cb := a.seen(), b.seen(); ca+cb != n || ca == 0 || cb == 0 {
		t.Errorf("of %d requests through the proxy, replica a served %d and b %d: want both to serve some", n, ca, cb)
	}
	if code, _ := get("/metrics?" + proxyMarker); code != http.StatusNotFound {
		t.Errorf("GET /metrics through the proxy = %d, want 404 (kept inside)", code)
	}

	// The web chat's WebSocket passes through the proxy.
	ws := "ws://" + proxyAddr + "/channels/web/ws?" + proxyMarker
	conn := dialChat(t, ws, base)
	conn.send(map[string]any{"type": "hello", "site": "shop"})
	welcome := conn.next("welcome")
	conn.send(map[string]any{"type": "message", "client_id": "c1", "text": "hello through the proxy"})
	if f := conn.next("message"); f.Text != "hello through the proxy" {
		t.Fatalf("echo through the proxy: %+v", f)
	}
	conn.Close()

	// A replica stops: the proxy sends everything to the other, and the
	// visitor resumes there with its token, history included (no sticky
	// sessions needed).
	a.stop(t)
	before := b.seen()
	for i := range 10 {
		if code, _ := get(fmt.Sprintf("/readyz?%s&after-stop=%d", proxyMarker, i)); code != 200 {
			t.Fatalf("GET /readyz through the proxy after a replica stopped: %d", code)
		}
	}
	if got := b.seen() - before; got != 10 {
		t.Errorf("after replica a stopped, b served %d of 10 requests", got)
	}
	conn = dialChat(t, ws, base)
	defer conn.Close()
	conn.send(map[string]any{"type": "hello", "site": "shop", "visitor_token": welcome.VisitorToken})
	again := conn.next("welcome")
	if again.Visitor != welcome.Visitor {
		t.Errorf("visitor after reconnecting = %q, want %q", again.Visitor, welcome.Visitor)
	}
	var texts []string
	for _, m := range again.History {
		texts = append(texts, m.Text)
	}
	if !strings.Contains(strings.Join(texts, "|"), "hello through the proxy") {
		t.Errorf("history after reconnecting to the other replica = %q, want the message sent before", texts)
	}
}

// replica is an omnigate serve in this process whose listener notes the
// requests that came through the proxy.
type replica struct {
	addr   string
	ln     *sniffListener
	cancel context.CancelFunc
	done   chan struct{} // closed when serve has returned err
	err    error
}

func (r *replica) seen() int { return r.ln.count(proxyMarker) }

// stop shuts the replica down and waits for serve to return.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("serve: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s")
	}
}

// startReplica runs serve on a loopback port against the NATS server at
// natsURL (JetStream KV store), with public URL publicURL and the web chat's
// site shop, and waits until /readyz answers 200.
func startReplica(t *testing.T, natsURL, publicURL string) *replica {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &sniffListener{Listener: inner}
	dir := t.TempDir()
	yml := fmt.Sprintf(`http:
  public_url: %s
  max_conns_per_client: -1
data_dir: %s
log:
  level: warn
nats:
  url: %s
channels:
  web:
    sites:
      shop:
        origins: ["*"]
`, publicURL, filepath.Join(dir, "data"), natsURL)
	file := filepath.Join(dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{addr: inner.Addr().String(), ln: ln, cancel: cancel, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { r.err = serve(ctx, cfg, file, ln, log, io.Discard); close(r.done) }()
	t.Cleanup(func() { r.stop(t) })
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus("http://" + r.addr + "/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz %d %s", code, body)
		}
		return err
	})
	return r
}

// startCaddy runs caddy with deploy/caddy/Caddyfile, listening on listen
// (loopback) instead of :8080 and proxying to upstreams instead of the
// compose services, until the test ends; it waits until the proxy answers
// /readyz with 200.
func startCaddy(t *testing.T, caddy, listen string, upstreams ...string) {
	t.Helper()
	file := filepath.Join(composeRepoRoot(t), filepath.FromSlash(composeCaddyfile))
	cf := parseCaddyfile(t, file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(listen)
	conf := string(b)
	for old, repl := range map[string]string{
		":" + cf.port + " {": ":" + port + " {\n\tbind " + host,
		"reverse_proxy " + strings.Join(cf.upstreams, " "): "reverse_proxy " + strings.Join(upstreams, " "),
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("%s: no %q to move to loopback", composeCaddyfile, old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	dir := t.TempDir()
	test := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(test, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddy, "run", "--config", test, "--adapter", "caddyfile")
	// Caddy keeps its state under these: a temporary directory, not $HOME.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("caddy's log:\n%s", out.String())
		}
	})
	bustest.Eventually(t, 30*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("caddy exited:\n%s", out.String())
		default:
		}
		code, body, err := getStatus("http://" + listen + "/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz through the proxy %d %s", code, body)
		}
		return err
	})
}

// sniffListener keeps what its connections read, so a test can count the
// requests a server received.
type sniffListener struct {
	net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, l: l}, nil
}

// count returns how many times s was read, over every connection.
func (l *sniffListener) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte(s))
}

type sniffConn struct {
	net.Conn
	l *sniffListener
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.mu.Lock()
		c.l.buf.Write(p[:n])
		c.l.mu.Unlock()
	}
	return n, err
}

// chatConn is a web chat WebSocket.
type chatConn struct {
	*websocket.Conn
	t *testing.T
}

// chatFrame is what the test reads of a frame from the server.
type chatFrame struct {
	Type         string `json:"type"`
	Text         string `json:"text"`
	VisitorToken string `json:"visitor_token"`
	Visitor      string `json:"visitor"`
	History      []struct {
		Text string `json:"text"`
	} `json:"history"`
}

func dialChat(t *testing.T, url, origin string) *chatConn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {origin}})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	return &chatConn{Conn: conn, t: t}
}

func (c *chatConn) send(v any) {
	c.t.Helper()
	if err := c.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame of type typ, skipping others.
func (c *chatConn) next(typ string) chatFrame {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var f chatFrame
		if err := c.ReadJSON(&f); err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

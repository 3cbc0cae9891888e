package edge_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/edge"
)

// echoBody answers the body it read with ReadBody (limit 1 KiB), or the
// error's status.
func echoBody(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, 1<<10)
	if err != nil {
		http.Error(w, err.Error(), edge.Status(err))
		return
	}
	w.Write(body)
}

// slowClient connects to addr, sends head and then one byte of body every
// 50 ms until the connection fails or stop is closed.
func slowClient(t *testing.T, addr, head string, stop <-chan struct{}) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	return c
}

// readUntilClosed reads c until it is closed (or fails), and returns what
// it read and how long that took; it gives up after limit.
func readUntilClosed(t *testing.T, c net.Conn, limit time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	var got bytes.Buffer
	_, err := io.Copy(&got, c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s; read %q", limit, got.String())
	}
	return got.String(), time.Since(start)
}

func TestHandler_SlowBodyCutOff(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := newFixture(t, edge.Config{BodyTimeout: timeout, Channel: func(*http.Request) string { return "sms" }}, http.HandlerFunc(echoBody))
	stop := make(chan struct{})
	defer close(stop)
	c := slowClient(t, f.srv.Listener.Addr().String(), "POST /channels/sms/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", stop)
	got, took := readUntilClosed(t, c, 15*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "not received in time") {
		t.Errorf("answer %q, want 408", got)
	}
	t.Logf("a body of one byte per 50 ms was cut off and the connection closed %s after it began (body timeout %s)", took.Round(time.Millisecond), timeout)
	if n := f.rejected("sms", edge.BodyTimeout); n != 1 {
		t.Errorf("counter sms/body_timeout = %v, want 1", n)
	}
	if got := f.logs.lines("request body not received in time, connection closed"); len(got) != 1 {
		t.Errorf("%d log lines about it, want 1", len(got))
	}
}

// A handler that answers without reading the body (a 401 before anything
// else) leaves the server to drain it: that too ends at the deadline.
func TestHandler_SlowBodyUnreadCutOff(t *testing.T) {
	f := newFixture(t, edge.Config{BodyTimeout: 500 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	stop := make(chan struct{})
	defer close(stop)
	c := slowClient(t, f.srv.Listener.Addr().String(), "POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", stop)
	got, took := readUntilClosed(t, c, 15*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 401 ") {
		t.Errorf("answer %q, want 401", got)
	}
	t.Logf("closed %s after it began", took.Round(time.Millisecond))
}

// Once the body is read, the handler may take longer than the body timeout:
// its context is not cancelled and its answer arrives.
func TestHandler_DeadlineLiftedAfterBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ctxErr := make(chan error, 1)
	f := newFixture(t, edge.Config{BodyTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := edge.ReadBody(w, r, 1<<10)
		if err != nil {
			http.Error(w, err.Error(), edge.Status(err))
			return
		}
		select {
		case <-r.Context().Done(): // what waiting for a slow JetStream ack looks like
		case <-time.After(4 * timeout):
		}
		ctxErr <- r.Context().Err()
		w.Write(body)
	}))
	for i := range 2 { // the second on the same connection
		resp, err := f.srv.Client().Post(f.srv.URL, "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Errorf("request %d: %d %q", i, resp.StatusCode, b)
		}
		if err := <-ctxErr; err != nil {
			t.Errorf("request %d: handler context ended after the body was read: %v", i, err)
		}
	}
}

// Requests without a body (Server-Sent Events, WebSocket upgrades) get no
// deadline: a stream outlives the body timeout many times.
func TestHandler_BodylessStreamNotCut(t *testing.T) {
	const timeout = 100 * time.Millisecond
	f := newFixture(t, edge.Config{BodyTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 10 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(timeout / 2):
			}
			fmt.Fprintf(w, "event %d\n", i)
			rc.Flush()
		}
	}))
	resp, err := f.srv.Client().Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		n++
	}
	if n != 10 {
		t.Errorf("%d events of 10 over %s (body timeout %s): %v", n, 5*timeout, timeout, sc.Err())
	}
}

func TestReadBody_Limits(t *testing.T) {
	f := newFixture(t, edge.Config{BodyTimeout: 10 * time.Second}, http.HandlerFunc(echoBody))
	tests := []struct {
		name    string
		body    io.Reader
		length  int64 // -1: chunked
		want    int
		wantMsg string
	}{
		{"within", strings.NewReader("ok"), 2, 200, "ok"},
		{"at the limit", strings.NewReader(strings.Repeat("a", 1<<10)), 1 << 10, 200, strings.Repeat("a", 1<<10)},
		{"declared too large", strings.NewReader(strings.Repeat("a", 5000)), 5000, 413, "request body too large: at most 1024 bytes here"},
		{"chunked too large", io.MultiReader(strings.NewReader(strings.Repeat("a", 5000))), -1, 413, "request body too large: at most 1024 bytes here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL, tt.body)
			req.ContentLength = tt.length
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || strings.TrimSpace(string(b)) != tt.wantMsg {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, b, tt.want, tt.wantMsg)
			}
		})
	}
}

// A declared oversized body is refused before it is read: the answer comes
// while the client has sent nothing of it.
func TestReadBody_DeclaredTooLargeRefusedUnread(t *testing.T) {
	f := newFixture(t, edge.Config{BodyTimeout: 10 * time.Second}, http.HandlerFunc(echoBody))
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
	got, _ := readUntilClosed(t, c, 15*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 413 ") {
		t.Errorf("answer %q, want 413", got)
	}
}

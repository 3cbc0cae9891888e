package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/edge"
)

// answered sends a GET on c and reports whether an answer came back.
func answered(c net.Conn) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}

func TestListener_CapPerClient(t *testing.T) {
	const max = 3
	f := newFixture(t, edge.Config{MaxConnsPerClient: max}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := f.srv.Listener.Addr().String()
	var conns []net.Conn
	for i := range max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := answered(c); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, max, err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := answered(extra); err == nil {
		t.Fatalf("connection %d of a client allowed %d was served", max+1, max)
	}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "omnigate_http_refused_connections_total" && mf.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Errorf("refused connections = %v, want 1", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	if got := f.logs.lines("connection refused: its client already holds the most connections allowed"); len(got) != 1 {
		t.Errorf("%d log lines, want 1", len(got))
	}

	// A closed connection frees its place.
	conns[0].Close()
	eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return answered(c)
	})
}

func TestListener_NoCap(t *testing.T) {
	f := newFixture(t, edge.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 20 {
		c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := answered(c); err != nil {
			t.Fatal(err)
		}
	}
}

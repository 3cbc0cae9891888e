// Package bustest runs a real embedded NATS server with JetStream for tests: on a
// random port, with its store in a temporary directory, restartable on the same
// directory so tests can prove that what JetStream acknowledged survives a restart.
package bustest

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded nats-server with JetStream, owned by one test.
type Server struct {
	srv  *server.Server
	opts server.Options
}

// RunServer starts a JetStream-enabled nats-server on a random local port with its
// store in t.TempDir(). It is shut down when the test ends.
func RunServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{opts: server.Options{
		ServerName: "omnigate-test",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}}
	s.start(t)
	// Later starts reuse the port the first one picked, so clients reconnect.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("bustest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatalf("bustest: server not ready within 10s")
	}
	s.srv = srv
}

// URL is the client URL of the running server, e.g. nats://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.ClientURL() }

// StoreDir is the JetStream store directory that survives Restart.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// NATS returns the running server, for tests that need its internals.
func (s *Server) NATS() *server.Server { return s.srv }

// Shutdown stops the server and waits until it is down. It is safe to call twice.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Restart stops the server and starts it again on the same port and store
// directory, as a crash and restart of the process would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	s.start(t)
}

// Connect opens a client connection that reconnects forever, closed when the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("bustest: connect %s: %v", s.URL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Eventually calls check every 10ms until it returns nil or timeout passes, then
// fails the test with the last error. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	err := errors.New("never checked")
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("bustest: condition not met within %s: %v", timeout, err)
}

package edge

import (
	"io"
	"net"
	"sync"
)

// Listener returns ln capped to Config.MaxConnsPerClient open connections
// per client address (the remote IP): a connection beyond the cap is closed
// as soon as it is accepted, counted in
// omnigate_http_refused_connections_total and logged (at most once per
// interval). Behind a proxy or load balancer every connection comes from its
// address, so the cap must allow for its pool. With no cap, ln is returned.
func (e *Edge) Listener(ln net.Listener) net.Listener {
	if e.cfg.MaxConnsPerClient <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, e: e, max: e.cfg.MaxConnsPerClient, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	e   *Edge
	max int

	mu   sync.Mutex     // guards open
	open map[string]int // connections open per client address
}

// Accept returns the next connection whose client is under the cap.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientAddr(c.RemoteAddr())
		l.mu.Lock()
		ok := l.open[client] < l.max
		if ok {
			l.open[client]++
		}
		l.mu.Unlock()
		if ok {
			return &limitConn{Conn: c, l: l, client: client}, nil
		}
		_ = c.Close()
		l.e.refused.Inc()
		l.e.throttle.warn("\x00conn", l.e.log, "connection refused: its client already holds the most connections allowed",
			[]any{"remote", client, "max_conns_per_client", l.max})
	}
}

func (l *limitListener) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client]--; l.open[client] <= 0 {
		delete(l.open, client)
	}
}

// clientAddr is the address a connection counts against: its remote IP.
func clientAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitConn is an accepted connection; closing it frees its place.
type limitConn struct {
	net.Conn
	l      *limitListener
	client string
	once   sync.Once
}

// CloseWrite half-closes a TCP connection, which the HTTP server does before
// it closes one after an error answer, so the client reads the answer.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the TCP connection's sendfile path for files served.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.client) })
	return err
}

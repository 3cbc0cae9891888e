package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Timeouts of a WebSocket session.
const (
	helloTimeout = 10 * time.Second // to send hello after connecting
	writeTimeout = 10 * time.Second // to take one frame
	pingEvery    = 30 * time.Second // keeps proxies and NATs from dropping an idle connection
)

// Frames per second one connection may send, of any type; a client beyond it
// is disconnected. Messages have their own, lower, per-visitor limit.
const (
	frameRate  = 20
	frameBurst = 60
)

// serveWS is GET /channels/<name>/ws: the WebSocket protocol of
// docs/web-protocol.md.
func (a *Adapter) serveWS(w http.ResponseWriter, r *http.Request) {
	if ok, d := a.ipLim.allow(clientIP(r, a.proxies), 1, a.now()); !ok {
		writeError(w, r, &frameError{Code: codeRateLimited, Msg: "too many requests", Status: http.StatusTooManyRequests, RetryAfter: d})
		return
	}
	// Per site once the hello names it; here whether any site allows the page.
	if !a.originAllowed(r, r.Header.Get("Origin"), nil) {
		writeError(w, r, &frameError{Code: codeOriginForbidden, Msg: "this page's origin may not use the chat", Status: http.StatusForbidden})
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked above
	if err != nil {
		return // Accept answered the client
	}
	a.conns.Add(1)
	defer a.conns.Add(-1)
	defer c.CloseNow()
	c.SetReadLimit(maxFrameBytes)
	ctx := r.Context()

	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	_, data, err := c.Read(hctx)
	cancel()
	if err != nil {
		return
	}
	f, ferr := decodeFrame(data)
	if ferr == nil && f.Type != typeHello {
		ferr = &frameError{Code: codeHelloFirst, Msg: "the first frame must be hello"}
	}
	if ferr != nil {
		ferr.Fatal = true
		closeWith(ctx, c, ferr, "")
		return
	}
	v, ferr := a.hello(ctx, r, f)
	if ferr != nil {
		closeWith(ctx, c, ferr, "")
		return
	}
	s := newSession(v.id, v.site.name)
	if err := a.hub.add(s); err != nil {
		closeWith(ctx, c, &frameError{Code: codeRateLimited, Msg: err.Error(), Fatal: true}, "")
		return
	}
	defer a.hub.remove(s)
	if a.stopped.Load() {
		s.kick(kickShutdown)
	}
	// The session was registered before the log is read: what is appended from
	// now on is queued for it, and what the welcome holds is skipped below.
	wf, ferr := a.welcome(ctx, v, f.ResumeAfter)
	if ferr != nil {
		ferr.Fatal = true
		closeWith(ctx, c, ferr, "")
		return
	}
	if err := write(ctx, c, encodeFrame(wf)); err != nil {
		return
	}
	var seen uint64
	if n := len(wf.History); n > 0 {
		seen = wf.History[n-1].Seq
	}

	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.writeLoop(wctx, c, s, seen)
	}()
	a.readLoop(ctx, c, v, r)
	stop()
	<-done
}

// readLoop handles the client's frames until the connection ends.
func (a *Adapter) readLoop(ctx context.Context, c *websocket.Conn, v *visitor, r *http.Request) {
	lim := rate.NewLimiter(frameRate, frameBurst)
	base := a.baseURL(r)
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if !lim.Allow() {
			c.Close(websocket.StatusPolicyViolation, codeRateLimited)
			return
		}
		f, ferr := decodeFrame(data)
		ref := ""
		if f != nil {
			ref = f.ClientID
		}
		if ferr == nil {
			ferr = a.handle(ctx, c, v, f, base)
		}
		if ferr != nil && write(ctx, c, encodeFrame(ferr.frame(ref))) != nil {
			return
		}
	}
}

// handle acts on one frame after the hello.
func (a *Adapter) handle(ctx context.Context, c *websocket.Conn, v *visitor, f *clientFrame, base string) *frameError {
	switch f.Type {
	case typeHello:
		return badFrame("hello was said already")
	case typeMessage:
		_, ferr := a.receive(ctx, v, f, base) // the hub echoes it to this session
		return ferr
	case typeTyping:
		// Accepted and dropped: desks have no typing feed yet.
		return nil
	case typeRead:
		return a.read(ctx, v, uint64(f.UpTo))
	case typeHistory:
		h, ferr := a.historyPage(ctx, v, f.Before, f.After, f.Limit)
		if ferr != nil {
			return ferr
		}
		if err := write(ctx, c, encodeFrame(h)); err != nil {
			return nil // the read loop sees the broken connection
		}
	}
	return nil
}

// writeLoop sends the session's queued frames, skipping messages the welcome
// held already, and pings, until ctx is done or the session is ended.
func (a *Adapter) writeLoop(ctx context.Context, c *websocket.Conn, s *session, seen uint64) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			switch s.reason {
			case kickSlow:
				c.Close(websocket.StatusTryAgainLater, "too slow: reconnect with resume_after")
			default:
				c.Close(websocket.StatusGoingAway, "server going away: reconnect with resume_after")
			}
			return
		case f := <-s.out:
			if f.seq != 0 && f.seq <= seen {
				continue
			}
			if err := write(ctx, c, f.data); err != nil {
				return
			}
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				c.CloseNow()
				return
			}
		}
	}
}

// write sends one frame, bounded by writeTimeout.
func write(ctx context.Context, c *websocket.Conn, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, data)
}

// closeWith sends an error frame and, when it is fatal, closes the connection.
func closeWith(ctx context.Context, c *websocket.Conn, e *frameError, ref string) {
	if write(ctx, c, encodeFrame(e.frame(ref))) != nil || !e.Fatal {
		return
	}
	if e.Code == codeUnavailable {
		c.Close(websocket.StatusTryAgainLater, e.Code)
		return
	}
	c.Close(websocket.StatusPolicyViolation, e.Code)
}

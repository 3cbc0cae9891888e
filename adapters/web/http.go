package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/core/edge"
)

// The HTTP fallback of the protocol, for clients that cannot keep a WebSocket:
// POST hello, POST messages, GET history and GET events (Server-Sent Events).
// Frames are the same JSON as on the WebSocket.

// limitIP applies the per-IP rate limit; false means it answered 429.
func (a *Adapter) limitIP(w http.ResponseWriter, r *http.Request) bool {
	if ok, d := a.ipLim.allow(clientIP(r, a.proxies), 1, a.now()); !ok {
		a.corsIfAllowed(w, r)
		writeError(w, r, &frameError{Code: codeRateLimited, Msg: "too many requests", Status: http.StatusTooManyRequests, RetryAfter: d})
		return false
	}
	return true
}

// corsIfAllowed lets a page read an error answer when some site allows its
// origin.
func (a *Adapter) corsIfAllowed(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && a.originAllowed(r, o, nil) {
		allowCORS(w, r)
	}
}

// readFrame reads the body of a POST as a frame of type typ (the body may
// leave "type" out).
func readBody(w http.ResponseWriter, r *http.Request, typ string) (*clientFrame, *frameError) {
	body, err := edge.ReadBody(w, r, maxFrameBytes)
	if err != nil {
		return nil, bodyError(err, fmt.Sprintf("body larger than %d bytes", maxFrameBytes))
	}
	f, ferr := decodeFrameAs(body, typ)
	if ferr != nil {
		return nil, ferr
	}
	if f.Type != typ {
		return nil, badFrame("type: want %q here", typ)
	}
	return f, nil
}

// bodyError is the frame error for a body read error of edge's: 413 with
// tooLarge, 408, or 400.
func bodyError(err error, tooLarge string) *frameError {
	switch edge.Status(err) {
	case http.StatusRequestEntityTooLarge:
		return &frameError{Code: codeTooLarge, Msg: tooLarge, Status: http.StatusRequestEntityTooLarge}
	case http.StatusRequestTimeout:
		return &frameError{Code: codeBadFrame, Msg: "body not received in time", Status: http.StatusRequestTimeout}
	}
	return badFrame("unreadable body")
}

// serveHello is POST hello: a hello frame in, a welcome frame out.
func (a *Adapter) serveHello(w http.ResponseWriter, r *http.Request) {
	if !a.limitIP(w, r) {
		return
	}
	f, ferr := readBody(w, r, typeHello)
	if ferr != nil {
		a.corsIfAllowed(w, r)
		writeError(w, r, ferr)
		return
	}
	v, ferr := a.hello(r.Context(), r, f)
	if ferr != nil {
		a.corsIfAllowed(w, r)
		writeError(w, r, ferr)
		return
	}
	allowCORS(w, r)
	wf, ferr := a.welcome(r.Context(), v, f.ResumeAfter)
	if ferr != nil {
		writeError(w, r, ferr)
		return
	}
	writeJSON(w, http.StatusOK, wf)
}

// serveMessages is POST messages: a message frame in (with the visitor token as
// bearer), the stored message frame out once JetStream has the message.
func (a *Adapter) serveMessages(w http.ResponseWriter, r *http.Request) {
	// Authenticate first: a forged request learns nothing about the body.
	v, ok := a.authorize(w, r, false)
	if !ok {
		return
	}
	f, ferr := readBody(w, r, typeMessage)
	if ferr != nil {
		writeError(w, r, ferr)
		return
	}
	mf, ferr := a.receive(r.Context(), v, f, a.baseURL(r))
	if ferr != nil {
		writeError(w, r, ferr)
		return
	}
	writeJSON(w, http.StatusOK, mf)
}

// serveRead is POST read: a read frame in, 204 out.
func (a *Adapter) serveRead(w http.ResponseWriter, r *http.Request) {
	v, ok := a.authorize(w, r, false)
	if !ok {
		return
	}
	f, ferr := readBody(w, r, typeRead)
	if ferr == nil {
		ferr = a.read(r.Context(), v, uint64(f.UpTo))
	}
	if ferr != nil {
		writeError(w, r, ferr)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveHistory is GET history?before=&after=&limit=.
func (a *Adapter) serveHistory(w http.ResponseWriter, r *http.Request) {
	v, ok := a.authorize(w, r, false)
	if !ok {
		return
	}
	q := r.URL.Query()
	before, err1 := parseCursor(q.Get("before"))
	after, err2 := parseCursor(q.Get("after"))
	limit, err3 := strconv.Atoi(q.Get("limit"))
	if q.Get("limit") == "" {
		limit, err3 = 0, nil
	}
	if err := errors.Join(err1, err2, err3); err != nil || limit < 0 || limit > maxHistoryLimit || (before != 0 && after != 0) {
		writeError(w, r, badFrame("before, after: message seqs, one or the other; limit: 0 to %d", maxHistoryLimit))
		return
	}
	h, ferr := a.historyPage(r.Context(), v, before, after, limit)
	if ferr != nil {
		writeError(w, r, ferr)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return cursor(n), err
}

// Server-Sent Events timing.
const (
	sseHeartbeat   = 25 * time.Second
	sseMaxLifetime = time.Hour // then the client reconnects with Last-Event-ID
)

// serveEvents is GET events: the server's frames as Server-Sent Events, one
// "data:" line of frame JSON each; message frames carry their seq as the event
// id, so a reconnecting EventSource resumes with Last-Event-ID. The token may
// come as ?token= since EventSource sets no headers; ?resume_after= (or
// Last-Event-ID) first replays what was missed.
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, ok := a.authorize(w, r, true)
	if !ok {
		return
	}
	resumeText := r.Header.Get("Last-Event-ID")
	if resumeText == "" {
		resumeText = r.URL.Query().Get("resume_after")
	}
	resume, err := parseCursor(resumeText)
	if err != nil {
		writeError(w, r, badFrame("resume_after: a message seq"))
		return
	}
	a.conns.Add(1)
	defer a.conns.Add(-1)
	s := newSession(v.id, v.site.name)
	if err := a.hub.add(s); err != nil {
		writeError(w, r, &frameError{Code: codeRateLimited, Msg: err.Error(), Status: http.StatusTooManyRequests, RetryAfter: time.Minute})
		return
	}
	defer a.hub.remove(s)
	if a.stopped.Load() {
		s.kick(kickShutdown)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)

	send := func(seq uint64, data []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		var b bytes.Buffer
		if seq > 0 {
			fmt.Fprintf(&b, "id: %d\n", seq)
		}
		b.WriteString("data: ")
		b.Write(data)
		b.WriteString("\n\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		return rc.Flush()
	}
	seen := uint64(0)
	if resumeText != "" {
		// Replay in pages; a session registered before reading misses nothing.
		for range maxResumePages {
			es, more, _, err := a.hist.after(ctx, v.id, uint64(max(resume, cursor(seen))), maxResume)
			if err != nil {
				a.log.Warn("history not read", "err", err)
				return
			}
			for _, e := range es {
				if err := send(e.Seq, encodeFrame(e.frame())); err != nil {
					return
				}
				seen = e.Seq
			}
			if !more {
				break
			}
		}
	} else if err := rc.Flush(); err != nil {
		return
	}
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	end := time.NewTimer(sseMaxLifetime)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-end.C:
			return
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case f := <-s.out:
			if f.seq != 0 && f.seq <= seen {
				continue
			}
			if err := send(f.seq, f.data); err != nil {
				return
			}
		}
	}
}

// maxResumePages bounds the replay of an event stream: 10 pages of maxResume.
const maxResumePages = 10

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers e as an error frame with its HTTP status.
func writeError(w http.ResponseWriter, _ *http.Request, e *frameError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (e.RetryAfter+time.Second-1)/time.Second))))
	}
	code := e.Status
	if code == 0 {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, e.frame(""))
}

// authorize opens every HTTP call made with a visitor token: the per-IP rate
// limit, the bearer token, and CORS headers (for a refused call only when the
// origin is allowed). query also accepts the token as ?token= (EventSource
// cannot set headers). It answers the refusal itself and reports false.
func (a *Adapter) authorize(w http.ResponseWriter, r *http.Request, query bool) (*visitor, bool) {
	if !a.limitIP(w, r) {
		return nil, false
	}
	v, ferr := a.bearer(r.Context(), r, query)
	if ferr != nil {
		a.corsIfAllowed(w, r)
		writeError(w, r, ferr)
		return nil, false
	}
	allowCORS(w, r)
	return v, true
}

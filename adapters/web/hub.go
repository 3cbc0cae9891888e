package web

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// liveRoot is the root of the core NATS subjects on which replicas pass frames
// to the sessions of a visitor: omni.live.<channel>.<visitor>. No stream
// captures it: what passes there is live only; the log in the store is what
// lasts.
const liveRoot = "omni.live"

func liveSubject(channel, visitor string) string { return liveRoot + "." + channel + "." + visitor }

// Headers of live frames.
const (
	headerOrigin = "Omni-Live-Origin" // the replica that sent it, which ignores it
	headerSeq    = "Omni-Live-Seq"
)

// remoteWait bounds how long Send waits to hear that another replica delivered
// a frame. Without sessions anywhere NATS answers "no responders" at once.
const remoteWait = 500 * time.Millisecond

// maxSessionsPerVisitor bounds the open connections of one visitor on one
// replica: tabs and devices.
const maxSessionsPerVisitor = 32

// sessionBuffer is how many frames a session may lag behind before it is
// disconnected (it resumes from the log when it reconnects).
const sessionBuffer = 128

// outFrame is an encoded server frame on its way to a session.
type outFrame struct {
	seq  uint64 // of a message frame, 0 for others
	data []byte
}

// Why a session was ended by the server.
type kickReason int

const (
	kickNone     kickReason = iota
	kickSlow                // it could not keep up
	kickShutdown            // the adapter stops
)

// session is one connection of a visitor (a WebSocket or an event stream):
// frames for it are queued on out, in order, by the hub.
type session struct {
	visitor string
	site    string // for frames to every session of a site (availability)
	out     chan outFrame
	done    chan struct{}

	once   sync.Once
	reason kickReason
}

func newSession(visitor, site string) *session {
	return &session{visitor: visitor, site: site, out: make(chan outFrame, sessionBuffer), done: make(chan struct{})}
}

// push queues f, or ends a session that lags too far behind.
func (s *session) push(f outFrame) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.out <- f:
		return true
	default:
		s.kick(kickSlow)
		return false
	}
}

// kick ends the session; its connection loop sees done and closes.
func (s *session) kick(r kickReason) {
	s.once.Do(func() {
		s.reason = r
		close(s.done)
	})
}

// hub knows the sessions of this replica by visitor and passes frames to
// them, and, when the bus is there, to the sessions other replicas hold.
type hub struct {
	channel string
	nc      *nats.Conn // nil: this process only
	origin  string
	log     *slog.Logger

	mu       sync.Mutex
	sessions map[string]map[*session]struct{}
	subs     map[string]*nats.Subscription
}

func newHub(channel string, nc *nats.Conn, origin string, log *slog.Logger) *hub {
	return &hub{
		channel: channel, nc: nc, origin: origin, log: log,
		sessions: map[string]map[*session]struct{}{},
		subs:     map[string]*nats.Subscription{},
	}
}

var errTooManySessions = errors.New("too many connections for this visitor")

// add registers s. Once it returns, every frame sent to s's visitor, from any
// replica, reaches s: read the log after add, not before, to miss nothing.
func (h *hub) add(s *session) error {
	h.mu.Lock()
	set := h.sessions[s.visitor]
	if len(set) >= maxSessionsPerVisitor {
		h.mu.Unlock()
		return errTooManySessions
	}
	if set == nil {
		set = map[*session]struct{}{}
		h.sessions[s.visitor] = set
	}
	set[s] = struct{}{}
	subscribed := false
	if h.nc != nil && h.subs[s.visitor] == nil {
		sub, err := h.nc.Subscribe(liveSubject(h.channel, s.visitor), h.remote)
		if err != nil {
			h.log.Warn("live subscription failed; this visitor gets frames of this replica only", "err", err)
		} else {
			h.subs[s.visitor] = sub
			subscribed = true
		}
	}
	h.mu.Unlock()
	if subscribed {
		// The server must know the subscription before the caller reads the log.
		if err := h.nc.FlushTimeout(2 * time.Second); err != nil {
			h.log.Warn("live subscription not confirmed", "err", err)
		}
	}
	return nil
}

// remove unregisters s.
func (h *hub) remove(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.sessions[s.visitor]
	delete(set, s)
	if len(set) > 0 {
		return
	}
	delete(h.sessions, s.visitor)
	if sub := h.subs[s.visitor]; sub != nil {
		delete(h.subs, s.visitor)
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Debug("live unsubscribe", "err", err)
		}
	}
}

// local queues f for the visitor's sessions on this replica and returns how
// many got it.
func (h *hub) local(visitor string, f outFrame) int {
	h.mu.Lock()
	targets := make([]*session, 0, len(h.sessions[visitor]))
	for s := range h.sessions[visitor] {
		targets = append(targets, s)
	}
	h.mu.Unlock()
	n := 0
	for _, s := range targets {
		if s.push(f) {
			n++
		}
	}
	return n
}

// broadcast queues f for every session of site on this replica.
func (h *hub) broadcast(site string, f outFrame) {
	h.mu.Lock()
	var targets []*session
	for _, set := range h.sessions {
		for s := range set {
			if s.site == site {
				targets = append(targets, s)
			}
		}
	}
	h.mu.Unlock()
	for _, s := range targets {
		s.push(f)
	}
}

// send passes f to every session of visitor, here and on other replicas, and
// reports whether at least one got it.
func (h *hub) send(ctx context.Context, visitor string, f outFrame) bool {
	n := h.local(visitor, f)
	if h.nc == nil {
		return n > 0
	}
	msg := nats.NewMsg(liveSubject(h.channel, visitor))
	msg.Data = f.data
	msg.Header.Set(headerOrigin, h.origin)
	if f.seq > 0 {
		msg.Header.Set(headerSeq, strconv.FormatUint(f.seq, 10))
	}
	if n > 0 {
		if err := h.nc.PublishMsg(msg); err != nil {
			h.log.Warn("live frame not passed to other replicas", "err", err)
		}
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, remoteWait)
	defer cancel()
	_, err := h.nc.RequestMsgWithContext(rctx, msg)
	switch {
	case err == nil:
		return true
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded):
		return false
	default:
		h.log.Warn("live frame not passed to other replicas", "err", err)
		return false
	}
}

// remote delivers a frame another replica sent and, when one of our sessions
// got it, answers the sender's request.
func (h *hub) remote(m *nats.Msg) {
	if m.Header.Get(headerOrigin) == h.origin {
		return
	}
	visitor := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	seq, _ := strconv.ParseUint(m.Header.Get(headerSeq), 10, 64)
	if h.local(visitor, outFrame{seq: seq, data: m.Data}) > 0 && m.Reply != "" {
		_ = m.Respond([]byte("1"))
	}
}

// closeAll ends every session, for shutdown.
func (h *hub) closeAll() {
	h.mu.Lock()
	var all []*session
	for _, set := range h.sessions {
		for s := range set {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		s.kick(kickShutdown)
	}
}

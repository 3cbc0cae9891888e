package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Group runs a component's consumers, and the loops that live as long as they
// do, as one: Run starts every one and, when its ctx is done, stops them all
// together. Every handler is wrapped in the same middleware, outermost first:
// Recover, Logging, Timeout (the bus's HandlerTimeout per attempt; consumers
// keep what they hold alive meanwhile, so JetStream does not redeliver a
// message still being handled), then what Use added, then the handler's own. Pipeline, routing, tickets and the adapter
// runtime each run one Group.
//
// Handle, Go and Use are called before Run; Run is called once.
type Group struct {
	b   *Bus
	log *slog.Logger
	mw  []Middleware

	mu       sync.Mutex
	handlers []groupHandler
	loops    []func(ctx context.Context) error
	started  bool
}

type groupHandler struct {
	spec ConsumerSpec
	h    Handler
	mw   []Middleware
}

// NewGroup returns an empty Group on b; log receives the middleware's logs,
// scoped per consumer. A nil log discards them.
func NewGroup(b *Bus, log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{b: b, log: log}
}

// Use adds middleware every handler of the group gets, inside the standard set.
func (g *Group) Use(mw ...Middleware) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mw = append(g.mw, mw...)
}

// Handle adds a durable consumer of spec that runs h, wrapped in the group's
// middleware and then mw.
func (g *Group) Handle(spec ConsumerSpec, h Handler, mw ...Middleware) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handlers = append(g.handlers, groupHandler{spec: spec, h: h, mw: mw})
}

// Go adds a loop that Run starts once every consumer is up. A loop runs until
// its ctx is done and then returns nil; any other return stops the whole group
// and is Run's error.
func (g *Group) Go(fn func(ctx context.Context) error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.loops = append(g.loops, fn)
}

// Run creates every consumer, starts the loops and blocks until ctx is done or
// a loop fails. Then it stops every consumer first (no new message is handed
// to a handler; in-flight handlers get up to 10 s, or their consumer's ack wait if longer),
// and only then cancels the loops and waits for them: a component's loops
// (an adapter's connection, a timer scheduler) outlive the handlers that use
// them. It returns nil after a cancel, a loop's error (a panic in a loop is
// one), or an error having started nothing when a consumer cannot be created
// (the bus is down, a spec is invalid).
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("bus: group: Run called twice")
	}
	g.started = true
	handlers, loops, shared := g.handlers, g.loops, g.mw
	g.mu.Unlock()

	ackWait, limit := g.b.Options().Consumer.AckWait, g.b.Options().Consumer.HandlerTimeout
	// How long Stop waits for in-flight handlers: what is still running then
	// is cancelled and redelivered after the ack wait, to whoever pulls.
	longest := max(ackWait, stopWait)
	var consumers []*Consumer
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), longest)
		defer cancel()
		var wg sync.WaitGroup
		for _, c := range consumers {
			wg.Go(func() {
				if err := c.Stop(sctx); err != nil {
					g.log.Warn("consumer did not stop cleanly", "consumer", c.spec.Durable, "err", err)
				}
			})
		}
		wg.Wait()
	}
	// Consumers are created a few at a time (a pipeline has 64), each retried
	// when the server is too slow to answer, so a busy server delays the
	// start instead of failing it.
	started := make([]*Consumer, len(handlers))
	errs := make([]error, len(handlers))
	sem := make(chan struct{}, startParallel)
	var swg sync.WaitGroup
	for i, h := range handlers {
		longest = max(longest, cmp.Or(h.spec.AckWait, ackWait))
		log := g.log.With("consumer", h.spec.Durable)
		mw := append([]Middleware{Recover(log), Logging(log), Timeout(limit)}, shared...)
		sem <- struct{}{}
		swg.Go(func() {
			defer func() { <-sem }()
			started[i], errs[i] = g.consume(ctx, h.spec, h.h, append(mw, h.mw...))
		})
	}
	swg.Wait()
	for _, c := range started {
		if c != nil {
			consumers = append(consumers, c)
		}
	}
	for i, err := range errs {
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return nil // cancelled while starting: not a failure
			}
			return fmt.Errorf("start %s: %w", handlers[i].spec.Durable, err)
		}
	}
	// The loops' context ends after the consumers stopped.
	lctx, cancelLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLoops()
	failed := make(chan error, len(loops))
	var wg sync.WaitGroup
	for _, fn := range loops {
		wg.Go(func() {
			if err := runLoop(lctx, fn); err != nil {
				failed <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	stop()
	cancelLoops()
	wg.Wait()
	return err
}

// stopWait bounds how long a Group's stop waits for in-flight handlers, so
// that a process told to stop while NATS or a store hangs still exits in time.
const stopWait = 10 * time.Second

// startParallel and startAttempts bound how Run creates consumers: how many at
// once, and how often one is tried when the server does not answer in time.
const (
	startParallel = 8
	startAttempts = 5
)

// consume creates one consumer, retrying timeouts with a growing pause.
func (g *Group) consume(ctx context.Context, spec ConsumerSpec, h Handler, mw []Middleware) (*Consumer, error) {
	for attempt := 1; ; attempt++ {
		c, err := g.b.Consume(ctx, spec, h, mw...)
		if err == nil || attempt == startAttempts || ctx.Err() != nil ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return c, err
		}
		g.log.Warn("consumer not created in time, trying again", "consumer", spec.Durable, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
}

// runLoop runs fn, turning a panic into an error.
func runLoop(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("loop panic: %v", p)
		}
	}()
	return fn(ctx)
}

package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/telemetry"
)

// Handler processes one delivery. Returning nil acknowledges it. An error asks
// for redelivery after the consumer's backoff (or after the delay of a RetryAfter
// error); a Permanent error, or an error on the last allowed delivery, sends the
// message to the dead-letter queue. Handlers of one consumer run one at a time
// unless the ConsumerSpec asks for more concurrency.
type Handler func(ctx context.Context, d *Delivery) error

// Middleware wraps a Handler with one concern (recovery, timeouts, logging).
type Middleware func(Handler) Handler

// Delivery is one message handed to a Handler.
type Delivery struct {
	// Subject the message was published to.
	Subject string
	// Data is the message body.
	Data []byte
	// Header holds the message headers; do not modify.
	Header nats.Header
	// Stream and StreamSeq locate the message.
	Stream    string
	StreamSeq uint64
	// NumDelivered counts deliveries of this message, 1 on the first.
	NumDelivered uint64
	// Published is when JetStream stored the message.
	Published time.Time

	msg         jetstream.Msg
	consumerSeq uint64
}

// InProgress tells JetStream the handler is still working, resetting the ack
// wait, for handlers that may run longer than it.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// MsgID is the message's Nats-Msg-Id, or "".
func (d *Delivery) MsgID() string { return d.Header.Get(HeaderMsgID) }

// ConsumerSpec describes a durable consumer. Every replica that consumes with
// the same Stream and Durable shares its messages: each goes to one of them.
type ConsumerSpec struct {
	// Stream to consume from, e.g. StreamIn.
	Stream string
	// Durable name shared by replicas, e.g. "pipeline-3".
	Durable string
	// Filters restrict the subjects consumed; empty takes the whole stream.
	Filters []string
	// Stage names this step in dead letters (omni.dlq.<stage>); default Durable.
	Stage string
	// MaxDeliver, Backoff, AckWait and MaxAckPending override the bus defaults.
	MaxDeliver    int
	Backoff       []time.Duration
	AckWait       time.Duration
	MaxAckPending int
	// Concurrency is how many handlers run at once in this process; default 1,
	// which keeps the stream's order within this consumer.
	Concurrency int
	// DeliverNew starts a new consumer at new messages instead of the first kept.
	DeliverNew bool
	// OrderKey, with Concurrency above 1, keeps order where it matters: deliveries
	// with the same key are handled one at a time, in stream order, while
	// different keys run concurrently. A failed delivery is then retried in
	// place, after the backoff, holding back the later deliveries of its key
	// only (a redelivery by the server could overtake them); held deliveries are
	// kept alive with InProgress. With MaxAckPending, bounds what is in memory.
	OrderKey func(d *Delivery) string
	// Exclusive lets one process at a time take this consumer's messages (a
	// JetStream pinned priority group): the others' pulls wait, and one of them
	// takes over when the pinned process has not pulled for a while (see
	// pinnedTTL), by when what it held and never acknowledged is due for
	// redelivery, so the new owner gets those first and order is kept. A
	// process that stops hands over at once.
	Exclusive bool
	// AsyncAck acknowledges without waiting for the server to confirm it. A lost
	// ack redelivers the message after AckWait, so the handler must be
	// idempotent (publishes with deduplication ids are); it saves a round trip
	// per message.
	AsyncAck bool
}

// Consumer runs a Handler on a durable JetStream consumer until stopped.
type Consumer struct {
	b        *Bus
	spec     ConsumerSpec
	h        Handler
	log      *slog.Logger
	jc       jetstream.Consumer
	loopDone chan struct{}
	// pull is cancelled by Stop to end fetching; ctx, the handlers' context,
	// only after in-flight handlers finished or the stop timeout passed.
	pull     context.Context
	stopPull context.CancelFunc
	ctx      context.Context
	cancel   context.CancelFunc
	sem      chan struct{}
	wg       sync.WaitGroup
	stopped  sync.Once

	// lanes holds, per OrderKey, the deliveries waiting behind the one being
	// handled; a key is present while its lane runs. held are the deliveries
	// taken and not yet settled, of every consumer, kept alive by keepAlive.
	lmu   sync.Mutex
	lanes map[string][]*Delivery
	held  map[*Delivery]struct{}
	// parked are the deliveries a lane consumer took but did not handle
	// because it was stopping: Stop naks them in stream order once no pull of
	// its is outstanding, so that they are redelivered first, in order.
	parked []*Delivery
	// lastConsumerSeq, lastStreamSeq, gaps and waiting belong to the fetch
	// loop of an Exclusive lane consumer (see gap).
	lastConsumerSeq, lastStreamSeq uint64
	gaps                           []gap
	waiting                        []*Delivery
	// drop, set by tests, loses deliveries as a cut-off pull would.
	drop func(d *Delivery) bool
	// pinID is the pin of an Exclusive consumer, from the last delivery.
	pinID atomic.Value
	// keepStop ends keepAlive, which closes keepDone.
	keepStop, keepDone chan struct{}
	keepOnce           sync.Once
	// redeliveries counts the deliveries the server made again.
	redeliveries prometheus.Counter
}

// Consume creates or updates the durable consumer of spec and runs h on its
// messages, wrapped by mw (outermost first), until Stop or Bus.Close.
func (b *Bus) Consume(ctx context.Context, spec ConsumerSpec, h Handler, mw ...Middleware) (*Consumer, error) {
	if spec.Stream == "" || !ValidToken(spec.Durable) {
		return nil, fmt.Errorf("bus: consume: stream and a durable name of letters, digits, '_' or '-' are required (got %q, %q)", spec.Stream, spec.Durable)
	}
	d := b.opts.Consumer
	if spec.Stage == "" {
		spec.Stage = spec.Durable
	}
	if !ValidToken(spec.Stage) {
		return nil, fmt.Errorf("bus: consume: stage %q is not a valid subject token", spec.Stage)
	}
	if spec.MaxDeliver == 0 {
		spec.MaxDeliver = d.MaxDeliver
	}
	if spec.Backoff == nil {
		spec.Backoff = d.Backoff
	}
	if spec.AckWait == 0 {
		spec.AckWait = d.AckWait
	}
	if spec.MaxAckPending == 0 {
		spec.MaxAckPending = d.MaxAckPending
	}
	if spec.Concurrency < 1 {
		spec.Concurrency = 1
	}
	if spec.MaxAckPending < spec.Concurrency {
		spec.MaxAckPending = spec.Concurrency
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       spec.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxAckPending: spec.MaxAckPending,
		// One more than the handler's attempts: a message whose handler never
		// answered (the process died, the handler hung) still comes back once
		// more, and is then dead-lettered instead of stuck.
		MaxDeliver: spec.MaxDeliver + 1,
	}
	if spec.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if spec.Exclusive {
		cfg.PriorityPolicy = jetstream.PriorityPolicyPinned
		cfg.PriorityGroups = []string{priorityGroup}
		cfg.PinnedTTL = pinnedTTL(spec)
	}
	switch len(spec.Filters) {
	case 0:
	case 1:
		cfg.FilterSubject = spec.Filters[0]
	default:
		cfg.FilterSubjects = spec.Filters
	}
	jc, err := b.js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: create consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	c := &Consumer{
		b:    b,
		spec: spec,
		h:    h,
		log:  b.log.With("consumer", spec.Durable),
		sem:  make(chan struct{}, spec.Concurrency),

		redeliveries: b.metrics.redeliveries.WithLabelValues(spec.Durable),
	}
	// The handlers' context lives until Stop has waited for them, not the
	// caller's ctx, which only bounds the setup above.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.pull, c.stopPull = context.WithCancel(c.ctx)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.cancel()
		return nil, ErrClosed
	}
	b.consumers[c] = struct{}{}
	b.mu.Unlock()
	c.jc = jc
	c.loopDone = make(chan struct{})
	c.held = map[*Delivery]struct{}{}
	if c.laned() {
		c.lanes = map[string][]*Delivery{}
	}
	c.keepStop, c.keepDone = make(chan struct{}), make(chan struct{})
	go c.keepAlive()
	go c.loop()
	return c, nil
}

// pinnedTTL is how long an Exclusive consumer's pin outlives its owner's last
// pull. With one message in flight the server itself keeps order (nothing
// later is handed out while the dead owner's message is pending), so the pin
// only has to outlast the pause between two pulls: the hand-over after a crash
// takes about the ack wait. Lanes hold many messages: their pin outlives the
// last pull (which may have been sent a fetchWait before the owner died) by
// more than the ack wait, so that what the owner held is due for redelivery
// before anyone else is pinned.
func pinnedTTL(spec ConsumerSpec) time.Duration {
	if spec.OrderKey != nil && spec.Concurrency > 1 {
		return spec.AckWait + fetchWait + time.Second
	}
	return max(spec.AckWait, fetchWait) + time.Second
}

// priorityGroup is the priority group of Exclusive consumers, and headerPinID
// the header in which the server tells a pinned client its pin.
const (
	priorityGroup = "omni"
	headerPinID   = "Nats-Pin-Id"
)

// laneFetchWait bounds a lane consumer's pull, which Stop waits out.
const laneFetchWait = time.Second

// fetchWait bounds one pull request: a request lost on a reconnect or a
// server restart costs at most this long before the next one.
const fetchWait = 2 * time.Second

// loop pulls batches and hands their messages to dispatch until Stop. Messages
// that arrive after Stop are nak'ed so another replica takes them at once.
func (c *Consumer) loop() {
	defer close(c.loopDone)
	defer func() {
		if c.laned() {
			c.releaseGaps(true) // to the lanes, which park them for Stop
		}
	}()
	batchSize := max(c.spec.Concurrency*2, 1)
	if c.laned() && c.spec.MaxAckPending > 0 {
		// Lanes never block the loop: the server's ack-pending limit bounds
		// what is fetched, and a pull is always outstanding (which keeps an
		// Exclusive consumer's pin).
		batchSize = min(c.spec.MaxAckPending, 256)
	}
	for c.pull.Err() == nil {
		fopts, cancel := c.fetchOptions()
		batch, err := c.jc.Fetch(batchSize, fopts...)
		if err != nil {
			cancel()
			if c.pull.Err() != nil {
				return
			}
			c.log.Debug("fetch", "err", err)
			select {
			case <-c.pull.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		if c.laned() {
			c.dispatchBursts(batch.Messages())
		} else {
			for d := range c.holdAll(batch.Messages(), batchSize) {
				if c.pull.Err() != nil {
					c.release(d)
					_ = d.msg.Nak()
					continue
				}
				c.dispatch(d)
			}
		}
		cancel()
		if err := batch.Error(); err != nil && c.pull.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("fetch batch", "err", err)
		}
	}
}

// fetchOptions are one pull's options and what ends it early. A lane consumer
// never cuts a pull short, neither on Stop nor at a client-side deadline: what
// the server sent for it and was not yet read would stay pending until the ack
// wait, and come back after later messages of its key. The server ends such a
// pull at its expiry with a status message, after everything it sent.
func (c *Consumer) fetchOptions() ([]jetstream.FetchOpt, context.CancelFunc) {
	var opts []jetstream.FetchOpt
	cancel := context.CancelFunc(func() {})
	if c.laned() {
		opts = append(opts, jetstream.FetchMaxWait(laneFetchWait))
	} else {
		var fctx context.Context
		fctx, cancel = context.WithTimeout(c.pull, fetchWait)
		opts = append(opts, jetstream.FetchContext(fctx))
	}
	if c.spec.Exclusive {
		opts = append(opts, jetstream.FetchPriorityGroup(priorityGroup))
	}
	return opts, cancel
}

func (b *Bus) forget(c *Consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}

// dispatchBursts hands msgs to their lanes a burst at a time: what has arrived
// together is put in stream order first. The server may send redeliveries out
// of order (it requeues at the back one it could not deliver at once), and
// they arrive together. A lane parks what arrives after Stop itself, behind
// what it holds of the same key, so their redeliveries keep order.
func (c *Consumer) dispatchBursts(msgs <-chan jetstream.Msg) {
	var burst []*Delivery
	flush := func() {
		slices.SortFunc(burst, func(a, b *Delivery) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
		for _, d := range burst {
			c.gapCheck(d)
		}
		burst = burst[:0]
		c.releaseGaps(false)
	}
	for {
		var msg jetstream.Msg
		var ok bool
		if len(burst) == 0 {
			msg, ok = <-msgs
		} else {
			select {
			case msg, ok = <-msgs:
			default:
				flush()
				continue
			}
		}
		if !ok {
			flush()
			return
		}
		if d := c.delivery(msg); d != nil && (c.drop == nil || !c.drop(d)) {
			burst = append(burst, d)
		}
	}
}

// gap is a run of deliveries an Exclusive lane consumer never received: the
// consumer sequence jumped. The server sent them (to a pull whose reply was
// cut off, on a reconnect, or to a previous owner of the partition) and will
// redeliver them after the ack wait; their stream sequences lie between lo and
// hi. Until they arrive, or the wait is over, later messages are held back.
type gap struct {
	lo, hi  uint64 // stream sequences around the missing deliveries
	missing int
	until   time.Time
}

// gapCheck dispatches d, or holds it back behind an open gap; it opens a gap
// when d's consumer sequence skips some, and closes one with a redelivery that
// falls in it. Only Exclusive consumers see every delivery of their consumer,
// so only they check.
func (c *Consumer) gapCheck(d *Delivery) {
	if !c.spec.Exclusive {
		c.dispatchLane(d)
		return
	}
	if last := c.lastConsumerSeq; last != 0 && d.consumerSeq > last+1 {
		c.gaps = append(c.gaps, gap{lo: c.lastStreamSeq, hi: d.StreamSeq, missing: int(d.consumerSeq - last - 1),
			until: time.Now().Add(c.spec.AckWait + time.Second)})
		c.log.Debug("deliveries missing, holding later messages until they are redelivered", "missing", d.consumerSeq-last-1)
	}
	c.lastConsumerSeq = max(c.lastConsumerSeq, d.consumerSeq)
	if d.NumDelivered == 1 {
		c.lastStreamSeq = max(c.lastStreamSeq, d.StreamSeq)
	}
	if d.NumDelivered > 1 {
		for i := range c.gaps {
			if g := &c.gaps[i]; g.missing > 0 && d.StreamSeq > g.lo && d.StreamSeq < g.hi {
				g.missing--
				break
			}
		}
		c.dispatchLane(d) // older than whatever waits behind a gap
		return
	}
	if len(c.gaps) > 0 && d.StreamSeq > c.gaps[0].lo {
		c.hold(d) // kept alive while it waits
		c.waiting = append(c.waiting, d)
		return
	}
	c.dispatchLane(d)
}

// releaseGaps closes the gaps whose deliveries all came back or whose wait is
// over (all of them when stopping) and dispatches what they held back, in
// stream order.
func (c *Consumer) releaseGaps(all bool) {
	now := time.Now()
	c.gaps = slices.DeleteFunc(c.gaps, func(g gap) bool { return all || g.missing <= 0 || now.After(g.until) })
	if len(c.waiting) == 0 {
		return
	}
	var still []*Delivery
	for _, d := range c.waiting {
		if len(c.gaps) > 0 && d.StreamSeq > c.gaps[0].lo {
			still = append(still, d)
			continue
		}
		c.release(d) // dispatchLane holds it again
		c.dispatchLane(d)
	}
	c.waiting = still
}

// laned reports whether deliveries run in OrderKey lanes.
func (c *Consumer) laned() bool { return c.spec.OrderKey != nil && c.spec.Concurrency > 1 }

// dispatch runs on the fetch loop; with Concurrency 1 it handles inline so
// messages are handled strictly in the order they were pulled.
func (c *Consumer) dispatch(d *Delivery) {
	c.sem <- struct{}{}
	c.wg.Add(1)
	if c.spec.Concurrency == 1 {
		c.process(d)
		return
	}
	go c.process(d)
}

// process handles d, which the fetch loop holds, and settles it.
func (c *Consumer) process(d *Delivery) {
	defer func() { <-c.sem; c.wg.Done() }()
	if c.expired(d) {
		c.release(d)
		return
	}
	err := c.call(d)
	// Not kept alive any more: a late InProgress would undo the nak below.
	c.release(d)
	if errors.Is(err, errStopping) {
		_ = d.msg.Nak() // for whoever pulls next, at once
		return
	}
	c.settle(d, err)
}

// holdAll holds each message of msgs as it arrives, while the ones before it may
// still wait for a handler slot, and yields it: a delivery waiting its turn is
// kept alive like one being handled, however short the ack wait. Messages
// that arrive after Stop are nak'ed for another replica. With one message in
// flight at most (MaxAckPending 1) nothing can wait behind a handler, and the
// messages are held as they are yielded, without a goroutine.
func (c *Consumer) holdAll(msgs <-chan jetstream.Msg, n int) iter.Seq[*Delivery] {
	take := func(msg jetstream.Msg) *Delivery {
		if c.pull.Err() != nil {
			_ = msg.Nak()
			return nil
		}
		d := c.delivery(msg)
		if d != nil {
			c.hold(d)
		}
		return d
	}
	if c.spec.MaxAckPending == 1 {
		return func(yield func(*Delivery) bool) {
			for msg := range msgs {
				if d := take(msg); d != nil && !yield(d) {
					return
				}
			}
		}
	}
	out := make(chan *Delivery, n)
	go func() {
		defer close(out)
		for msg := range msgs {
			if d := take(msg); d != nil {
				out <- d
			}
		}
	}()
	return func(yield func(*Delivery) bool) {
		for d := range out {
			if !yield(d) {
				for rest := range out { // the goroutine must finish
					c.release(rest)
					_ = rest.msg.Nak()
				}
				return
			}
		}
	}
}

// hold keeps d alive (keepAlive) until release.
func (c *Consumer) hold(d *Delivery) {
	c.lmu.Lock()
	c.held[d] = struct{}{}
	c.lmu.Unlock()
}

// release ends hold.
func (c *Consumer) release(d *Delivery) {
	c.lmu.Lock()
	delete(c.held, d)
	c.lmu.Unlock()
}

// errStopping ends an in-place retry because the consumer stops.
var errStopping = errors.New("bus: consumer stopping")

// RetriedInPlace reports whether a handler returning err is retried where it
// stands, for as long as that lasts, without counting against MaxDeliver: a
// dependency is unavailable (IsUnavailable), or the handler asked for a later
// retry (RetryAfter, e.g. a provider's rate limit). Neither says anything is
// wrong with the message, so neither ends in the dead-letter queue.
func RetriedInPlace(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	_, later := RetryDelay(err)
	return later || IsUnavailable(err)
}

// call runs the handler on d and, while it fails with an error RetriedInPlace
// accepts, runs it again after a capped backoff (or the delay asked for), for
// as long as that lasts: d stays held (keepAlive), what is behind it waits,
// and these attempts do not count against MaxDeliver. It returns the
// handler's last error, or errStopping when the consumer stops meanwhile.
// With tracing on, the attempts are one span, a child of the trace context
// the publisher put in d's headers, and the handler's ctx carries it.
func (c *Consumer) call(d *Delivery) (err error) {
	ctx := c.ctx
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = c.startProcess(ctx, d)
		defer func() { telemetry.End(span, err) }()
	}
	for attempt := 1; ; attempt++ {
		err := c.h(ctx, d)
		if !RetriedInPlace(err) || c.ctx.Err() != nil {
			if attempt > 1 {
				c.b.outage.end(c.log, d, attempt)
			}
			return err
		}
		delay, ok := RetryDelay(err)
		if !ok {
			delay = unavailableBackoff(attempt)
		}
		c.b.outage.wait(c.log, d, attempt, delay, err)
		select {
		case <-time.After(delay):
		case <-c.pull.Done():
			c.b.outage.end(c.log, d, attempt)
			return errStopping
		}
	}
}

// Bounds of the in-place retry of a handler whose dependency is unavailable:
// the first pause, and the longest, which bounds how long after an outage
// ends the work resumes.
const (
	unavailableFirst = 100 * time.Millisecond
	unavailableMax   = 2 * time.Second
)

// unavailableBackoff is the pause after the attempt-th failed attempt: it
// doubles from unavailableFirst up to unavailableMax, with a fifth of jitter
// so that replicas do not retry in step.
func unavailableBackoff(attempt int) time.Duration {
	d := unavailableMax
	if attempt < 6 {
		d = min(unavailableFirst<<(attempt-1), unavailableMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// delivery reads msg's metadata into a Delivery; a message without any is
// terminated and nil returned.
func (c *Consumer) delivery(msg jetstream.Msg) *Delivery {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata, terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return nil
	}
	if c.spec.Exclusive {
		if pin := msg.Headers().Get(headerPinID); pin != "" {
			if old, _ := c.pinID.Swap(pin).(string); old != pin {
				// Deliveries to the previous owner are not gaps of ours: what it
				// held comes back after the pin's wait, before anything new.
				c.lastConsumerSeq = 0
				c.log.Debug("pinned to this process", "was", old != "")
			}
		}
	}
	if md.NumDelivered > 1 {
		c.redeliveries.Inc()
	}
	d := &Delivery{
		Subject:      msg.Subject(),
		Data:         msg.Data(),
		Header:       msg.Headers(),
		Stream:       md.Stream,
		StreamSeq:    md.Sequence.Stream,
		consumerSeq:  md.Sequence.Consumer,
		NumDelivered: md.NumDelivered,
		Published:    md.Timestamp,
		msg:          msg,
	}
	if d.Header == nil {
		d.Header = nats.Header{}
	}
	return d
}

// expired dead-letters d when the server delivered it more often than the
// handler may run (earlier deliveries were never answered), and says so.
func (c *Consumer) expired(d *Delivery) bool {
	if max := uint64(c.spec.MaxDeliver); d.NumDelivered > max {
		c.deadLetter(d, fmt.Errorf("not acknowledged after %d deliveries (handler timed out or the process stopped)", max))
		return true
	}
	return false
}

// settle acknowledges, dead-letters or naks d after its handler returned herr.
func (c *Consumer) settle(d *Delivery, herr error) {
	msg, max := d.msg, uint64(c.spec.MaxDeliver)
	switch {
	case herr == nil:
		var err error
		if c.spec.AsyncAck {
			err = msg.Ack()
		} else {
			err = msg.DoubleAck(c.ctx)
		}
		if err != nil {
			c.log.Warn("ack", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
		}
	case IsPermanent(herr) || d.NumDelivered >= max:
		c.deadLetter(d, herr)
	default:
		delay, ok := RetryDelay(herr)
		if !ok {
			delay = c.backoff(d.NumDelivered)
		}
		c.log.Debug("handler error, will retry", "subject", d.Subject, "seq", d.StreamSeq,
			"delivery", d.NumDelivered, "retry_in", delay, "err", herr)
		if err := msg.NakWithDelay(delay); err != nil {
			c.log.Warn("nak", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
		}
	}
}

// dispatchLane queues d on its key's lane, starting the lane when it is idle.
// It never blocks: a lane waits for one of Concurrency slots before each
// handler call.
func (c *Consumer) dispatchLane(d *Delivery) {
	key := c.spec.OrderKey(d)
	c.lmu.Lock()
	c.held[d] = struct{}{}
	if q, busy := c.lanes[key]; busy {
		// In stream order among those waiting: a late redelivery goes
		// before later messages of its key.
		i, _ := slices.BinarySearchFunc(q, d.StreamSeq, func(e *Delivery, seq uint64) int { return cmp.Compare(e.StreamSeq, seq) })
		c.lanes[key] = slices.Insert(q, i, d)
		c.lmu.Unlock()
		return
	}
	c.lanes[key] = nil
	c.lmu.Unlock()
	c.wg.Add(1)
	go c.runLane(key, d)
}

// runLane handles d, then every delivery queued behind it on key, in order.
// Once the consumer stops, what is still queued is nak'ed for whoever pulls
// next.
func (c *Consumer) runLane(key string, d *Delivery) {
	defer c.wg.Done()
	for {
		if d.NumDelivered > 1 && c.pull.Err() == nil {
			d = c.settleRedelivery(key, d)
		}
		if c.pull.Err() != nil {
			c.park(d)
		} else if !c.expired(d) {
			c.sem <- struct{}{}
			c.handleInPlace(d)
			<-c.sem
		}
		c.lmu.Lock()
		delete(c.held, d)
		q := c.lanes[key]
		if len(q) == 0 {
			delete(c.lanes, key)
			c.lmu.Unlock()
			return
		}
		d, c.lanes[key] = q[0], q[1:]
		c.lmu.Unlock()
	}
}

// redeliverySettle is how long a lane waits before it handles a delivery the
// server redelivered: redeliveries of one key can arrive out of order (the
// server requeues at the back one it could not hand out at once, as happens
// while a consumer changes hands), and the earlier ones arrive within this.
const redeliverySettle = 100 * time.Millisecond

// settleRedelivery waits redeliverySettle and returns the lane's earliest
// delivery: d, or one that arrived meanwhile with a lower stream sequence (d
// then takes its place in the queue).
func (c *Consumer) settleRedelivery(key string, d *Delivery) *Delivery {
	select {
	case <-time.After(redeliverySettle):
	case <-c.pull.Done():
		return d
	}
	c.lmu.Lock()
	defer c.lmu.Unlock()
	q := c.lanes[key]
	if len(q) == 0 || q[0].StreamSeq > d.StreamSeq {
		return d
	}
	first := q[0]
	i, _ := slices.BinarySearchFunc(q[1:], d.StreamSeq, func(e *Delivery, seq uint64) int { return cmp.Compare(e.StreamSeq, seq) })
	c.lanes[key] = slices.Insert(q[1:], i, d)
	return first
}

// handleInPlace runs the handler on d until it succeeds, fails for good or runs
// out of deliveries, waiting out the backoff between attempts here rather than
// nak'ing, so that the deliveries queued behind d keep their place. Each retry
// of an error about the message counts as a delivery (NumDelivered grows);
// retries while a dependency is unavailable do not (see call).
func (c *Consumer) handleInPlace(d *Delivery) {
	for {
		herr := c.call(d)
		if errors.Is(herr, errStopping) || herr != nil && !IsPermanent(herr) && c.pull.Err() != nil {
			c.park(d) // stopping: redelivered before what is queued behind it
			return
		}
		if herr == nil || IsPermanent(herr) || d.NumDelivered >= uint64(c.spec.MaxDeliver) {
			c.settle(d, herr)
			return
		}
		delay := c.backoff(d.NumDelivered)
		c.log.Debug("handler error, will retry in place", "subject", d.Subject, "seq", d.StreamSeq,
			"delivery", d.NumDelivered, "retry_in", delay, "err", herr)
		select {
		case <-time.After(delay):
		case <-c.pull.Done():
			c.park(d)
			return
		}
		d.NumDelivered++
	}
}

// park keeps d for Stop to nak.
func (c *Consumer) park(d *Delivery) {
	c.lmu.Lock()
	c.parked = append(c.parked, d)
	c.lmu.Unlock()
}

// nakParked naks the parked deliveries in stream order, each confirmed by the
// server before the next and before Stop unpins, so that the next owner's
// first pull finds them queued for redelivery, in that order.
func (c *Consumer) nakParked(ctx context.Context) {
	c.stopKeepAlive()
	c.lmu.Lock()
	parked := c.parked
	c.parked = nil
	c.lmu.Unlock()
	slices.SortFunc(parked, func(a, b *Delivery) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
	for _, d := range parked {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		if _, err := c.b.nc.RequestWithContext(rctx, d.msg.Reply(), []byte("-NAK")); err != nil {
			_ = d.msg.Nak()
		}
		cancel()
	}
}

// stopKeepAlive ends keepAlive and waits for it.
func (c *Consumer) stopKeepAlive() {
	c.keepOnce.Do(func() { close(c.keepStop) })
	<-c.keepDone
}

// keepAlive tells the server, every third of the ack wait, that the deliveries
// held are still being worked on (or wait in a lane, or for a dependency to
// come back), so none is redelivered meanwhile. The ack wait can then be short:
// it is how long what a dead process held waits for another.
// It ends when Stop closes keepStop, before parked deliveries are nak'ed: a late
// InProgress would take a nak'ed delivery off the redelivery queue.
func (c *Consumer) keepAlive() {
	defer close(c.keepDone)
	t := time.NewTicker(max(c.spec.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.keepStop:
			return
		case <-t.C:
		}
		c.lmu.Lock()
		for d := range c.held {
			_ = d.msg.InProgress()
		}
		c.lmu.Unlock()
	}
}

// backoff is the delay after the n-th failed delivery.
func (c *Consumer) backoff(n uint64) time.Duration {
	b := c.spec.Backoff
	if len(b) == 0 {
		return 0
	}
	i := int(n) - 1
	if i >= len(b) {
		i = len(b) - 1
	}
	return b[i]
}

// deadLetter stores d on omni.dlq.<stage> with why it failed, then acks it. If
// the dead letter cannot be stored, the message is not acked and comes back.
func (c *Consumer) deadLetter(d *Delivery, cause error) {
	m := nats.NewMsg(SubjectDLQ(c.spec.Stage))
	m.Data = d.Data
	for k, v := range d.Header {
		if k == HeaderMsgID {
			continue
		}
		m.Header[k] = v
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	m.Header.Set(HeaderDLQStage, c.spec.Stage)
	m.Header.Set(HeaderDLQError, reason)
	m.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(d.NumDelivered, 10))
	m.Header.Set(HeaderDLQSubject, d.Subject)
	m.Header.Set(HeaderDLQStream, d.Stream)
	m.Header.Set(HeaderDLQSequence, strconv.FormatUint(d.StreamSeq, 10))
	m.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if id := d.MsgID(); id != "" {
		m.Header.Set(HeaderDLQMsgID, id)
	}
	// A second dead-lettering of the same original (ack lost) is stored once.
	m.Header.Set(HeaderMsgID, "dlq:"+c.spec.Stage+":"+d.Stream+":"+strconv.FormatUint(d.StreamSeq, 10))
	if _, err := c.b.PublishMsg(c.ctx, m); err != nil {
		c.log.Error("dead letter not stored, message will be redelivered", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
		_ = d.msg.NakWithDelay(c.backoff(d.NumDelivered))
		return
	}
	c.log.Warn("message dead-lettered", "stage", c.spec.Stage, "subject", d.Subject, "seq", d.StreamSeq,
		"deliveries", d.NumDelivered, "err", reason)
	if err := d.msg.DoubleAck(c.ctx); err != nil {
		c.log.Warn("ack after dead letter", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
	}
}

// unpin hands an Exclusive consumer over at once when this process holds its
// pin and has finished with what it took, instead of leaving the next owner to
// wait for the pin to expire.
func (c *Consumer) unpin(ctx context.Context) {
	pin, _ := c.pinID.Load().(string)
	if !c.spec.Exclusive || pin == "" {
		return
	}
	// Without an answer soon (NATS is going away too) the pin expires by itself.
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	info, err := c.jc.Info(ctx)
	if err != nil {
		c.log.Debug("unpin: consumer info", "err", err)
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == priorityGroup && g.PinnedClientID == pin {
			if st, err := c.b.js.Stream(ctx, c.spec.Stream); err == nil {
				if err := st.UnpinConsumer(ctx, c.spec.Durable, priorityGroup); err != nil {
					c.log.Debug("unpin", "err", err)
				}
			}
		}
	}
}

// Spec returns the consumer's spec with defaults applied.
func (c *Consumer) Spec() ConsumerSpec { return c.spec }

// Stop stops pulling, waits for in-flight handlers until ctx is done, then
// cancels their context. Unacknowledged messages are redelivered later, to this
// or another replica.
func (c *Consumer) Stop(ctx context.Context) error {
	var err error
	c.stopped.Do(func() {
		c.stopPull()
		done := make(chan struct{})
		go func() {
			<-c.loopDone
			c.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
			c.nakParked(ctx)
			c.unpin(ctx)
		case <-ctx.Done():
			err = fmt.Errorf("bus: stop consumer %s: handlers still running: %w", c.spec.Durable, ctx.Err())
		}
		c.stopKeepAlive()
		c.cancel()
		c.b.forget(c)
	})
	return err
}

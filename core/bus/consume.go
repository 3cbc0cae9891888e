package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

	msg jetstream.Msg
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
	go c.loop()
	return c, nil
}

// fetchWait bounds one pull request: a request lost on a reconnect or a
// server restart costs at most this long before the next one.
const fetchWait = 2 * time.Second

// loop pulls batches and hands their messages to dispatch until Stop. Messages
// that arrive after Stop are nak'ed so another replica takes them at once.
func (c *Consumer) loop() {
	defer close(c.loopDone)
	batchSize := max(c.spec.Concurrency*2, 1)
	for c.pull.Err() == nil {
		fctx, cancel := context.WithTimeout(c.pull, fetchWait)
		batch, err := c.jc.Fetch(batchSize, jetstream.FetchContext(fctx))
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
		for msg := range batch.Messages() {
			if c.pull.Err() != nil {
				_ = msg.Nak()
				continue
			}
			c.dispatch(msg)
		}
		cancel()
		if err := batch.Error(); err != nil && c.pull.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("fetch batch", "err", err)
		}
	}
}

func (b *Bus) forget(c *Consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}

// dispatch runs on the fetch loop; with Concurrency 1 it handles inline so
// messages are handled strictly in the order they were pulled.
func (c *Consumer) dispatch(msg jetstream.Msg) {
	c.sem <- struct{}{}
	c.wg.Add(1)
	if c.spec.Concurrency == 1 {
		c.process(msg)
		return
	}
	go c.process(msg)
}

func (c *Consumer) process(msg jetstream.Msg) {
	defer func() { <-c.sem; c.wg.Done() }()
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata, terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	d := &Delivery{
		Subject:      msg.Subject(),
		Data:         msg.Data(),
		Header:       msg.Headers(),
		Stream:       md.Stream,
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		Published:    md.Timestamp,
		msg:          msg,
	}
	if d.Header == nil {
		d.Header = nats.Header{}
	}
	max := uint64(c.spec.MaxDeliver)
	if d.NumDelivered > max {
		c.deadLetter(d, fmt.Errorf("not acknowledged after %d deliveries (handler timed out or the process stopped)", max))
		return
	}
	herr := c.h(c.ctx, d)
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
		case <-ctx.Done():
			err = fmt.Errorf("bus: stop consumer %s: handlers still running: %w", c.spec.Durable, ctx.Err())
		}
		c.cancel()
		c.b.forget(c)
	})
	return err
}

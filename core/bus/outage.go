package bus

import (
	"log/slog"
	"sync"
	"time"
)

// OutageStats say how the bus's consumers are riding out unavailable
// dependencies: handlers that fail because a store, the bus or a provider is
// down are retried in place (see Unavailable) instead of dead-lettering their
// message.
type OutageStats struct {
	// Waiting is how many deliveries are waiting for a dependency right now;
	// each holds back the messages behind it on its consumer.
	Waiting int
	// Retries counts the handler attempts that failed that way, since start.
	Retries uint64
	// Since is when the current outage began (Waiting went above 0); zero
	// when nothing waits.
	Since time.Time
}

// OutageStats returns the current counts, for metrics and health checks.
func (b *Bus) OutageStats() OutageStats {
	o := &b.outage
	o.mu.Lock()
	defer o.mu.Unlock()
	return OutageStats{Waiting: o.waiting, Retries: o.retries, Since: o.since}
}

// outageLogEvery bounds the warnings of an outage: one line per interval for
// the whole bus, however many consumers wait, with the counts.
const outageLogEvery = 10 * time.Second

// outage tracks the deliveries waiting in call for a dependency.
type outage struct {
	mu      sync.Mutex
	waiting int
	retries uint64
	since   time.Time
	logged  time.Time
	// warned says the current outage was logged, so its end is too.
	warned bool
}

// wait records the attempt-th failed attempt of d and logs, at most once per
// outageLogEvery, that messages are waiting.
func (o *outage) wait(log *slog.Logger, d *Delivery, attempt int, retryIn time.Duration, err error) {
	o.mu.Lock()
	o.retries++
	if attempt == 1 {
		if o.waiting == 0 {
			o.since = time.Now()
		}
		o.waiting++
	}
	now := time.Now()
	say := now.Sub(o.logged) >= outageLogEvery
	if say {
		o.logged, o.warned = now, true
	}
	waiting, retries, since := o.waiting, o.retries, o.since
	o.mu.Unlock()
	if say {
		log.Warn("a dependency is unavailable: messages wait and are retried in place until it is back, none is dead-lettered for it",
			"waiting", waiting, "retries", retries, "for", now.Sub(since).Round(time.Millisecond),
			"subject", d.Subject, "seq", d.StreamSeq, "retry_in", retryIn.Round(time.Millisecond), "err", err)
	}
}

// end records that d no longer waits, after attempts attempts; the last one
// to leave says the outage is over, if its start was logged.
func (o *outage) end(log *slog.Logger, d *Delivery, attempts int) {
	o.mu.Lock()
	o.waiting--
	over := o.waiting == 0 && o.warned
	since := o.since
	if o.waiting == 0 {
		o.since, o.warned = time.Time{}, false
	}
	o.mu.Unlock()
	if over {
		log.Info("dependencies available again: waiting messages resumed", "outage", time.Since(since).Round(time.Millisecond),
			"subject", d.Subject, "seq", d.StreamSeq, "attempts", attempts)
	}
}

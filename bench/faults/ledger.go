package main

import (
	"slices"
	"sync"
	"time"
)

// key names one message of the run: the phase it was offered in, the customer
// (sender) it belongs to, and its number in that customer's sequence of the
// phase, from 1. Customer messages and agent replies have separate key spaces.
type key struct{ phase, sender, n int }

// before reports whether k was offered before o by the same customer.
func (k key) before(o key) bool {
	if k.phase != o.phase {
		return k.phase < o.phase
	}
	return k.n < o.n
}

// offer is what happened to one offered message at its edge: a webhook's
// answer, or the JetStream ack of a published reply.
type offer struct {
	// at is when the first attempt started: latency is counted from here.
	at       time.Time
	accepted bool
}

// arrival is a message seen where it should end up (the desk stream, the fake
// Twilio), in the order it arrived there.
type arrival struct {
	k  key
	at time.Time
}

// phaseInfo is one phase of the run: a fault, or the warm-up.
type phaseInfo struct {
	name string
	// recoverFrom is when the fault ended; zero for no fault.
	recoverFrom time.Time
}

// ledger accounts for every message of the run. Its methods are safe for
// concurrent use; the load, the stream readers and the fake Twilio all write to
// it while the report reads.
type ledger struct {
	// partition maps a customer to the inbound partition its messages take, the
	// unit of recovery.
	partition func(sender int) int

	mu     sync.Mutex
	phases []phaseInfo
	in     flow // customer -> desk
	out    flow // agent reply -> customer
	convs  map[int]string
}

// flow is one direction's bookkeeping.
type flow struct {
	offered  map[key]*offer
	arrivals []arrival
	dlq      map[key]string // the stage that dead-lettered it
}

func newLedger(partition func(sender int) int) *ledger {
	return &ledger{
		partition: partition,
		in:        flow{offered: map[key]*offer{}, dlq: map[key]string{}},
		out:       flow{offered: map[key]*offer{}, dlq: map[key]string{}},
		convs:     map[int]string{},
	}
}

// newPhase starts a phase and returns its index.
func (l *ledger) newPhase(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, phaseInfo{name: name})
	return len(l.phases) - 1
}

// recovering records that phase's fault ended at t.
func (l *ledger) recovering(phase int, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases[phase].recoverFrom = t
}

func (l *ledger) flow(reply bool) *flow {
	if reply {
		return &l.out
	}
	return &l.in
}

// offered records the outcome of offering k, first attempted at at.
func (l *ledger) offered(reply bool, k key, at time.Time, accepted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flow(reply).offered[k] = &offer{at: at, accepted: accepted}
}

// arrived records that k reached its destination at at.
func (l *ledger) arrived(reply bool, k key, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.flow(reply)
	f.arrivals = append(f.arrivals, arrival{k: k, at: at})
}

// deadLettered records that stage gave up on k.
func (l *ledger) deadLettered(reply bool, k key, stage string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flow(reply).dlq[k] = stage
}

// conversation records sender's conversation, where replies go.
func (l *ledger) conversation(sender int, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.convs[sender] = id
}

// conversationOf returns sender's conversation, if one was seen.
func (l *ledger) conversationOf(sender int) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.convs[sender]
	return c, ok
}

// outstanding counts phase's accepted messages and replies that have neither
// arrived nor been dead-lettered yet.
func (l *ledger) outstanding(phase int) (msgs, replies int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.in.outstanding(phase), l.out.outstanding(phase)
}

func (f *flow) outstanding(phase int) int {
	got := map[key]bool{}
	for _, a := range f.arrivals {
		got[a.k] = true
	}
	n := 0
	for k, o := range f.offered {
		if k.phase == phase && o.accepted && !got[k] && f.dlq[k] == "" {
			n++
		}
	}
	return n
}

// stats is one direction's numbers for one phase.
type stats struct {
	// offered messages; accepted of them (webhook 2xx, publish acked).
	offered, accepted int
	// delivered: accepted messages that arrived; lost: accepted ones that did
	// not; dlq: accepted ones a stage dead-lettered, lost or not (a message can
	// reach the desk and still be dead-lettered: its transcript append failed);
	// dlqLost: those of them that were lost.
	delivered, lost, dlq, dlqLost int
	// unaccepted: messages that arrived without having been accepted (an
	// answer lost on its way back, a timed-out attempt stored after all);
	// neither lost nor counted in delivered.
	unaccepted int
	// duplicated: arrivals beyond a message's first.
	duplicated int
	// reordered: accepted messages that arrived after a later accepted message
	// of the same customer.
	reordered int
	// p50 and max latency, from the first attempt to the first arrival, of the
	// delivered messages.
	p50, max time.Duration
	// recovery: how long after the fault ended messages still waited: the
	// longest that a delivered message waited after the end, or after its
	// sending when it was sent after the end. A message held up by the fault
	// counts from the end, a message sent later from its sending, so a quiet
	// partition is not charged for having had nothing to carry. measured is
	// false for no fault.
	recovery time.Duration
	// first is issue 15's recovery: from the fault's end to the arrival of
	// the first message sent after it.
	first    time.Duration
	measured bool
	// partitions is that per inbound partition, for the notes.
	partitions map[int]time.Duration
}

// row is the report of one phase.
type row struct {
	name       string
	in, out    stats
	recoverEnd time.Time
}

// rows computes every phase's report from everything recorded so far.
func (l *ledger) rows() []row {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := l.in.stats(len(l.phases), l.phases, l.partition)
	out := l.out.stats(len(l.phases), l.phases, nil)
	rows := make([]row, len(l.phases))
	for i, p := range l.phases {
		rows[i] = row{name: p.name, in: in[i], out: out[i], recoverEnd: p.recoverFrom}
	}
	return rows
}

// stats computes the numbers of every phase. With partition set, recovery is
// measured for the phases that have a fault end.
func (f *flow) stats(n int, phases []phaseInfo, partition func(int) int) []stats {
	st := make([]stats, n)
	first := map[key]time.Time{}
	maxSeen := map[int]key{} // per customer, the latest accepted message arrived so far
	for _, a := range f.arrivals {
		if a.k.phase >= n {
			continue
		}
		if _, dup := first[a.k]; dup {
			st[a.k.phase].duplicated++
			continue
		}
		first[a.k] = a.at
		o := f.offered[a.k]
		if o == nil || !o.accepted {
			st[a.k.phase].unaccepted++
			continue
		}
		if m, ok := maxSeen[a.k.sender]; ok && a.k.before(m) {
			st[a.k.phase].reordered++
		} else {
			maxSeen[a.k.sender] = a.k
		}
	}
	lat := make([][]time.Duration, n)
	// Per phase and partition, for the recovery: the longest a message waited
	// after the fault's end, or after its sending when that was later.
	parts := make([]map[int]time.Duration, n)
	firstSent := make([]time.Time, n) // per phase, the earliest sending after the end
	firstAt := make([]time.Time, n)   // and its arrival
	for k, o := range f.offered {
		if k.phase >= n {
			continue
		}
		s := &st[k.phase]
		s.offered++
		if !o.accepted {
			continue
		}
		s.accepted++
		dead := f.dlq[k] != ""
		if dead {
			s.dlq++
		}
		at, arrived := first[k]
		if !arrived {
			s.lost++
			if dead {
				s.dlqLost++
			}
			continue // counted as lost, not in the latencies or the recovery
		}
		s.delivered++
		lat[k.phase] = append(lat[k.phase], at.Sub(o.at))
		from := phases[k.phase].recoverFrom
		if partition == nil || from.IsZero() {
			continue
		}
		if parts[k.phase] == nil {
			parts[k.phase] = map[int]time.Duration{}
		}
		if o.at.After(from) {
			if firstSent[k.phase].IsZero() || o.at.Before(firstSent[k.phase]) {
				firstSent[k.phase], firstAt[k.phase] = o.at, at
			}
			from = o.at
		}
		p := partition(k.sender)
		parts[k.phase][p] = max(parts[k.phase][p], at.Sub(from))
	}
	for i := range st {
		s := &st[i]
		if d := lat[i]; len(d) > 0 {
			slices.Sort(d)
			s.p50, s.max = d[len(d)/2], d[len(d)-1]
		}
		if partition == nil || phases[i].recoverFrom.IsZero() {
			continue
		}
		s.measured = true
		if !firstAt[i].IsZero() {
			s.first = firstAt[i].Sub(phases[i].recoverFrom)
		}
		s.partitions = parts[i]
		for _, r := range parts[i] {
			s.recovery = max(s.recovery, r)
		}
	}
	return st
}

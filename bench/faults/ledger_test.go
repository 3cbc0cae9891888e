package main

import (
	"testing"
	"time"
)

func TestLedger_Accounting(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Customers 0 and 1 share partition 0; customer 2 is alone in partition 1.
	l := newLedger(func(sender int) int { return sender / 2 })
	warm := l.newPhase("warm-up")
	fault := l.newPhase("fault")

	// Warm-up: one message per customer, all delivered at once.
	for s := range 3 {
		k := key{warm, s, 1}
		l.offered(false, k, at(0), true)
		l.arrived(false, k, at(10))
	}
	l.recovering(fault, at(1000))
	k := func(s, n int) key { return key{fault, s, n} }
	// Customer 0: 1 and 2 accepted before the fault ended, 2 arrives before 1
	// (1 is reordered), 3 is the partition's first after the end, 4 arrives twice.
	l.offered(false, k(0, 1), at(100), true)
	l.offered(false, k(0, 2), at(200), true)
	l.offered(false, k(0, 3), at(1100), true)
	l.offered(false, k(0, 4), at(1300), true)
	l.arrived(false, k(0, 2), at(250))
	l.arrived(false, k(0, 1), at(2000))
	l.arrived(false, k(0, 3), at(3500))
	l.arrived(false, k(0, 4), at(3600))
	l.arrived(false, k(0, 4), at(3700))
	// Customer 1: 1 refused (not accepted) but stored after all; 2 accepted
	// after the end, later than customer 0's 3, so not its partition's first.
	l.offered(false, k(1, 1), at(500), false)
	l.offered(false, k(1, 2), at(1200), true)
	l.arrived(false, k(1, 1), at(900))
	l.arrived(false, k(1, 2), at(1250))
	// Customer 2: 1 lost and dead-lettered, 2 lost silently; 3 is first after
	// the end in partition 1 and arrives.
	l.offered(false, k(2, 1), at(300), true)
	l.offered(false, k(2, 2), at(400), true)
	l.offered(false, k(2, 3), at(1050), true)
	l.deadLettered(false, k(2, 1), "pipeline")
	l.arrived(false, k(2, 3), at(1500))

	if m, _ := l.outstanding(fault); m != 1 {
		t.Errorf("outstanding %d, want 1 (customer 2's second)", m)
	}
	rows := l.rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	w := rows[warm].in
	if w.offered != 3 || w.delivered != 3 || w.lost != 0 || w.measured || w.max != 10*time.Millisecond {
		t.Errorf("warm-up %+v", w)
	}
	got := rows[fault].in
	want := stats{
		offered: 9, accepted: 8, delivered: 6, lost: 2, dlq: 1, dlqLost: 1, unaccepted: 1,
		duplicated: 1, reordered: 1,
		p50: 1900 * time.Millisecond, max: 2400 * time.Millisecond,
		recovery: 2500 * time.Millisecond, recovered: true, measured: true,
	}
	if got != want {
		t.Errorf("fault\n got %+v\nwant %+v", got, want)
	}
}

func TestLedger_RecoveryNeverArrived(t *testing.T) {
	t0 := time.Now()
	l := newLedger(func(int) int { return 0 })
	p := l.newPhase("fault")
	l.recovering(p, t0)
	l.offered(false, key{p, 0, 1}, t0.Add(time.Second), true)
	l.offered(false, key{p, 0, 2}, t0.Add(2*time.Second), true)
	l.arrived(false, key{p, 0, 2}, t0.Add(3*time.Second))
	s := l.rows()[p].in
	if !s.measured || s.recovered {
		t.Errorf("the partition's first message after the fault never arrived, but %+v", s)
	}
	if s.lost != 1 || s.reordered != 0 {
		t.Errorf("lost %d reordered %d, want 1 and 0", s.lost, s.reordered)
	}
}

func TestLedger_ReorderAcrossPhases(t *testing.T) {
	t0 := time.Now()
	l := newLedger(func(int) int { return 0 })
	a, b := l.newPhase("a"), l.newPhase("b")
	l.offered(false, key{a, 7, 9}, t0, true)
	l.offered(false, key{b, 7, 1}, t0.Add(time.Second), true)
	l.arrived(false, key{b, 7, 1}, t0.Add(2*time.Second))
	l.arrived(false, key{a, 7, 9}, t0.Add(40*time.Second))
	rows := l.rows()
	if rows[a].in.reordered != 1 || rows[b].in.reordered != 0 {
		t.Errorf("a message of phase a after one of phase b: reordered a=%d b=%d, want 1 and 0", rows[a].in.reordered, rows[b].in.reordered)
	}
	if rows[a].in.max != 40*time.Second {
		t.Errorf("max latency %s", rows[a].in.max)
	}
}

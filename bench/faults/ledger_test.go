package main

import (
	"reflect"
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
	// (1 is reordered, and held its partition up for 1 s after the end), 3 is
	// the partition's first after the end (2.4 s latency: the recovery), 4
	// arrives twice.
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
	// Customer 2: 1 lost and dead-lettered, 2 lost silently (lost, not held
	// up); 3 is first after the end in partition 1 and arrives in 450 ms.
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
		recovery: 2400 * time.Millisecond, measured: true,
		first: 500 * time.Millisecond, // customer 2's 3, the first sent after the end
	}
	if p := got.partitions; len(p) != 2 || p[0] != 2400*time.Millisecond || p[1] != 450*time.Millisecond {
		t.Errorf("partitions' recoveries %v", p)
	}
	got.partitions = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fault\n got %+v\nwant %+v", got, want)
	}
}

func TestLedger_Recovery(t *testing.T) {
	t0 := time.Now()
	sec := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	for _, tc := range []struct {
		name   string
		offers [][2]float64 // sent, arrived (-1: never), seconds from the fault's end
		want   time.Duration
	}{
		// The first message after the end was sent 3 s after it (the
		// partition was idle) and arrived at once: recovered at once.
		{"idle partition", [][2]float64{{3, 3.05}}, 50 * time.Millisecond},
		// A message accepted before the end arrived 30 s after it: held up.
		{"held up", [][2]float64{{-1, 30}, {1, 30.5}}, 30 * time.Second},
		// The first after the end is lost (it shows in lost), the second
		// arrives in 500 ms.
		{"first lost", [][2]float64{{1, -1}, {2, 2.5}}, 500 * time.Millisecond},
		// The first after the end is quick, a later one waits 38 s.
		{"later stall", [][2]float64{{1, 1.1}, {2, 40}}, 38 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(func(int) int { return 0 })
			p := l.newPhase("fault")
			l.recovering(p, t0)
			for i, o := range tc.offers {
				k := key{p, 0, i + 1}
				l.offered(false, k, sec(o[0]), true)
				if o[1] >= 0 {
					l.arrived(false, k, sec(o[1]))
				}
			}
			s := l.rows()[p].in
			if !s.measured || s.recovery != tc.want {
				t.Errorf("recovery %s (measured %v), want %s", s.recovery, s.measured, tc.want)
			}
		})
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

package routing

import (
	"time"

	"github.com/omnigate/omnigate/config"
)

// Desk is what other components need to know of routing's configuration:
// each queue's business hours and each agent's capacity (analytics measures
// business-hours response times and agents' occupancy with them).
type Desk struct {
	// Business maps each queue with business hours to a function that says
	// how much of [from, to) was within them. Queues without hours are
	// missing: for them all time counts.
	Business map[string]func(from, to time.Time) time.Duration
	// Capacity is each configured agent's capacity, default_capacity filled in.
	Capacity map[string]int
	// DefaultCapacity is the capacity of agents not listed.
	DefaultCapacity int
}

// DeskOf compiles cfg (decoded with its defaults, as New takes it) and returns its Desk.
func DeskOf(cfg Config) (Desk, error) {
	var p config.Problems
	pl := compile(&cfg, &p)
	if err := p.Err(); err != nil {
		return Desk{}, err
	}
	d := Desk{Business: map[string]func(from, to time.Time) time.Duration{}, Capacity: map[string]int{}, DefaultCapacity: cfg.DefaultCapacity}
	for name, q := range pl.queues {
		if q.hours != nil {
			d.Business[name] = q.hours.between
		}
	}
	for id, a := range pl.agents {
		d.Capacity[id] = a.Capacity
	}
	return d, nil
}

// between is how much of [from, to) is within business hours.
func (s *schedule) between(from, to time.Time) time.Duration {
	var d time.Duration
	if !to.After(from) {
		return 0
	}
	s.intervals(from, func(a, b time.Time) bool {
		if !a.Before(to) {
			return false
		}
		end := b
		if to.Before(end) {
			end = to
		}
		d += end.Sub(maxTime(a, from))
		return true
	})
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

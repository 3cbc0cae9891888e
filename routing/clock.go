package routing

import "time"

// Clock is the router's time: when messages are handled, timers armed and
// fired. The scheduler sleeps with After, so a fake clock that fires After's
// channel when advanced drives every timer in tests (routingtest.Clock). Now
// and After are called from several goroutines at once.
type Clock interface {
	Now() time.Time
	// After sends the time on the returned channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

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

// afterTimer is what a clock may also have: After at an absolute time, which a
// fake clock can fire exactly when it is moved past t, however it moved while
// the caller computed t (routingtest.Clock has it).
type afterTimer interface {
	AfterTime(t time.Time) <-chan time.Time
}

// until returns a channel that receives once clock's time reached t.
func until(c Clock, t time.Time) <-chan time.Time {
	if at, ok := c.(afterTimer); ok {
		return at.AfterTime(t)
	}
	return c.After(t.Sub(c.Now()))
}

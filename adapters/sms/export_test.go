package sms

import "time"

// SetClock replaces a's clock, for tests of WhatsApp's 24-hour window. Call it
// before a serves anything.
func SetClock(a *Adapter, now func() time.Time) { a.now = now }

package event

import "time"

// AvailabilityRecords is the store's record bucket (store.Records) where
// routing keeps each queue's Availability: under AvailabilityKey(queue), and
// a copy of the default queue's under AvailabilityDefault. Routing is the
// only writer; chat channels read it to tell visitors whether someone can
// answer now. Records expire when routing stops refreshing them
// (AvailabilityTTL), so a reader that finds none knows nobody keeps them.
const AvailabilityRecords = "queue_availability"

// AvailabilityDefault is the key of the default queue's Availability in
// AvailabilityRecords.
const AvailabilityDefault = "default"

// AvailabilityTTL is how long an Availability record lives unless routing
// writes it again; routing refreshes it well before.
const AvailabilityTTL = 2 * time.Minute

// AvailabilityKey is the key of queue's Availability in AvailabilityRecords.
func AvailabilityKey(queue string) string { return "queue:" + queue }

// Availability is what routing knows of a queue's capacity to answer now:
// the record AvailabilityRecords holds. Its owner is routing.
type Availability struct {
	// Queue is the queue's name.
	Queue string `json:"queue"`
	// Agents is how many agents the queue lists; Available how many of them
	// are available (not away) with room for one more conversation.
	Agents    int `json:"agents"`
	Available int `json:"available"`
	// Open: the queue is within its business hours (a queue without hours
	// always is). NextOpen is the next opening of a closed queue.
	Open     bool      `json:"open"`
	NextOpen time.Time `json:"next_open,omitzero"`
	// ExpectedWait is the wait a customer writing now can expect: the median
	// of the queue's recent response times, or its default_wait.
	ExpectedWait time.Duration `json:"expected_wait"`
	// At is when routing computed it.
	At time.Time `json:"at"`
}

// Online reports whether a customer writing now can expect an agent: the
// queue is open and one of its agents is available with room.
func (a Availability) Online() bool { return a.Open && a.Available > 0 }

// Same reports whether a and b say the same, whenever they were computed.
func (a Availability) Same(b Availability) bool {
	a.At, b.At = time.Time{}, time.Time{}
	return a.Queue == b.Queue && a.Agents == b.Agents && a.Available == b.Available && a.Open == b.Open &&
		a.NextOpen.Equal(b.NextOpen) && a.ExpectedWait == b.ExpectedWait
}

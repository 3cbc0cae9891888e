package core

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ids hands out ULIDs that strictly increase within the process. The clock is
// read under the lock, so a later call never gets an earlier timestamp, even when
// goroutines race or the wall clock steps back.
var ids = struct {
	mu      sync.Mutex
	lastMS  uint64
	entropy *ulid.MonotonicEntropy
}{entropy: ulid.Monotonic(rand.Reader, 0)}

// NewID returns a new ULID in its canonical 26-character form. IDs sort, as
// strings, in the order NewID returned them within a process, and across
// processes by millisecond. NewID is safe for concurrent use.
func NewID() string {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	ms := ulid.Timestamp(time.Now())
	if ms < ids.lastMS {
		ms = ids.lastMS
	}
	id, err := ulid.New(ms, ids.entropy)
	if err != nil {
		// The 80-bit random part overflowed within one millisecond, which takes
		// billions of IDs in that millisecond: borrow the next one.
		ms++
		id = ulid.MustNew(ms, ids.entropy)
	}
	ids.lastMS = ms
	return id.String()
}

// ValidID reports whether s is a ULID in canonical form: 26 characters of
// Crockford's base32 in upper case, the first at most '7'.
func ValidID(s string) bool {
	if len(s) != ulid.EncodedSize || s[0] < '0' || s[0] > '7' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return false
		}
	}
	return true
}

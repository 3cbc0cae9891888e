// Package adapters connects channels (web chat, SMS, email, Telegram, ...) and
// agent desks (Slack) to omnigate's bus. An integrator adds a channel by writing
// one Adapter and registering it; the Runtime owns everything else: consuming
// replies, retries with backoff, dead letters, idempotent sends, delivery events
// and restarting an adapter that fails.
package adapters

import (
	"context"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// Adapter connects one channel, or one agent desk, to the bus.
//
// The runtime calls Run once (and again, with backoff, if it fails) and Send for
// every message on omni.out.<Name()> (omni.desk.<Name()> for a desk). Send may be
// called concurrently, also while Run is running.
type Adapter interface {
	// Name is the channel name, e.g. "sms"; it is the channel of every identity
	// and message the adapter produces.
	Name() string
	// Run receives from the provider until ctx is done, then returns nil. Any
	// other return is a failure: the runtime logs it, marks the adapter not ready
	// and runs it again with backoff. A webhook-only adapter just waits on ctx.
	Run(ctx context.Context) error
	// Send delivers m to the provider. Wrap errors with Permanent (bad recipient,
	// opted out: never retried) or RetryAfter (rate limited); a plain error is
	// retried with backoff and finally dead-lettered.
	Send(ctx context.Context, m *core.Message) (Receipt, error)
}

// Receipt is what a provider said when it accepted an outbound message.
type Receipt struct {
	// ProviderID is the provider's id of the sent message (for status callbacks).
	ProviderID string `json:"provider_id,omitempty"`
	// Status is "sent" or "queued" (accepted, delivery to be confirmed later),
	// or "delivered" when the provider confirms synchronously.
	Status string `json:"status"`
	// At is when the provider accepted it.
	At time.Time `json:"at"`
}

// Readier is an optional interface: an adapter that can tell whether its
// provider is reachable (credentials valid, connection up) implements it, and
// /readyz reports its answer.
type Readier interface {
	Ready(ctx context.Context) error
}

// Closer is an optional interface for adapters holding resources beyond Run.
type Closer interface {
	Close(ctx context.Context) error
}

// Permanent marks err as not retryable: the message goes to the dead-letter
// queue at once and the agent is told. Permanent(nil) is nil.
func Permanent(err error) error { return bus.Permanent(err) }

// Unavailable marks err as the provider's or a dependency's state, not the
// message's: a 5xx, refused credentials that an operator must fix, a network
// failure (those are recognized without it). The message is retried in place,
// for as long as that lasts, and never dead-lettered for it. Unavailable(nil)
// is nil.
func Unavailable(err error) error { return bus.Unavailable(err) }

// RetryAfter asks for the message to be retried no sooner than d, e.g. after
// a provider's 429 with Retry-After. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error { return bus.RetryAfter(err, d) }

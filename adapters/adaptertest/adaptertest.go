// Package adaptertest is the conformance kit every channel adapter's tests call:
//
//	func TestAdapter_Conformance(t *testing.T) {
//		adaptertest.Run(t, adaptertest.Harness{Name: "sms", New: newFixture})
//	}
//
// Run checks, each on its own real embedded JetStream server, what every
// channel must do the same way: inbound messages are normalized (required
// fields, identities of the adapter's channel) and land on
// omni.in.<channel>.<partition>; the same provider message delivered twice is
// stored once; a forged webhook gets 401/403 and a malformed one 400, with
// nothing published; a webhook answers 2xx only once JetStream holds the
// message; a reply published on omni.out.<channel> reaches the fake provider
// exactly once, even when redelivered, and a delivery.sent event follows; a
// provider's 429 becomes a RetryAfter error and an invalid recipient a
// Permanent one, a delivery.failed event and a dead letter; Run returns promptly
// when its context is cancelled and leaves no goroutine behind; concurrent Send
// calls are clean under -race.
//
// The adapter's test supplies a Harness whose New builds the adapter and a
// fresh fake provider for each check (an httptest server that speaks the
// provider's documented wire format) and returns them as a Fixture, with hooks
// that make the fake provider deliver, reject or throttle. Features a channel
// does not have are switched off with Skip flags, never by leaving a hook out:
// a nil hook without its flag fails the check.
package adaptertest

import (
	"net/http"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
)

// Harness describes a channel adapter to the kit.
type Harness struct {
	// Name is the adapter's name: the channel of every envelope and identity
	// it produces, and the scope of its routes (/channels/<Name>/).
	Name string
	// New starts a fresh fake provider and builds the adapter on deps with a
	// config that points at it, preferably through adapters.Build so that the
	// registered factory and config decoding are what is tested. It is called
	// once per check, each time with a fresh bus, store and HTTP mux; the hooks
	// of the Fixture it returns act on that check's fake provider only. Required.
	New func(t *testing.T, deps adapters.Deps) *Fixture
	// Skip turns off the checks of features the channel does not have.
	Skip Skip
	// Timeout bounds every wait of the kit; default 10s.
	Timeout time.Duration
}

// Skip turns off checks. Set a flag only for what the channel or its provider
// cannot do; each flag names the Fixture hooks it makes unnecessary.
type Skip struct {
	// Inbound: the adapter receives nothing from customers (Fixture.Inbound,
	// and the dedup and ack-before-2xx checks).
	Inbound bool
	// Forged: the provider does not sign what it delivers, or the adapter
	// polls it (Fixture.Forged).
	Forged bool
	// Malformed: the adapter receives no webhooks (Fixture.Malformed).
	Malformed bool
	// Outbound: the adapter sends nothing (Fixture.Outbound, Fixture.Sent and
	// the round-trip, idempotency and concurrency checks).
	Outbound bool
	// RateLimited: the provider never throttles (Fixture.RateLimited).
	RateLimited bool
	// BadRecipient: the provider cannot tell an invalid recipient
	// (Fixture.BadRecipient).
	BadRecipient bool
}

// Fixture is the adapter under test with the hooks of its fake provider, for
// one check.
type Fixture struct {
	// Adapter is the adapter under test. Required.
	Adapter adapters.Adapter

	// Inbound makes the provider deliver customer message in. For a webhook it
	// returns the provider's HTTP request, addressed to a path under
	// /channels/<Name>/ (httptest.NewRequest does); the kit serves it on the
	// routes the adapter registered and expects a 2xx answer. A polling adapter
	// puts the message into its fake provider, for the adapter's Run to fetch,
	// and returns nil. Called again with the same in.N it must deliver the very
	// same provider message (same provider message id), as a provider retry
	// does; a different N is a different message.
	Inbound func(t *testing.T, in Incoming) *http.Request
	// Forged returns a webhook request that is well formed but whose signature
	// is wrong (or missing): the adapter must answer 401 or 403.
	Forged func(t *testing.T) *http.Request
	// Malformed returns a correctly signed webhook request whose body the
	// provider would never send (not JSON, required fields missing): the adapter
	// must answer 400.
	Malformed func(t *testing.T) *http.Request

	// Outbound returns a reply to a recipient the fake provider accepts: an
	// outbound message with To set (an identity of the adapter's channel) and
	// whatever else the adapter needs. The kit sets ID and Text on a copy of it.
	Outbound func(t *testing.T) *core.Message
	// Sent returns the text of every message the fake provider accepted, in
	// order. It must be safe for concurrent use with the provider.
	Sent func(t *testing.T) []string
	// RateLimited makes the fake provider answer every send from now on as the
	// provider answers a throttled request (usually HTTP 429 with Retry-After).
	RateLimited func(t *testing.T)
	// BadRecipient makes the fake provider reject every send from now on as the
	// provider rejects an invalid or unknown recipient.
	BadRecipient func(t *testing.T)
}

// Incoming is one customer message the kit asks the provider to deliver.
type Incoming struct {
	// N numbers the provider message: the same N is the same message, with the
	// same provider id, delivered again.
	N int
	// Text is what the customer wrote; the envelope's Text must contain it.
	Text string
}

// Run runs every check against the adapter of h, one after the other, each as
// a subtest of t on its own embedded JetStream server. Call it from a test that
// does not call t.Parallel: the leak check of Run/Cancel looks at every new
// goroutine running code of the adapter's package, and would count the
// adapters of tests running beside it.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Name == "" || !core.ValidChannel(h.Name) {
		t.Fatalf("adaptertest: Harness.Name %q is not a valid channel name", h.Name)
	}
	if h.New == nil {
		t.Fatal("adaptertest: Harness.New is required")
	}
	if h.Timeout <= 0 {
		h.Timeout = 10 * time.Second
	}
	k := &kit{h: h}
	t.Run("Inbound/Normalized", k.inboundNormalized)
	t.Run("Inbound/Replay", k.inboundReplay)
	t.Run("Inbound/Forged", k.inboundForged)
	t.Run("Inbound/Malformed", k.inboundMalformed)
	t.Run("Outbound/RoundTrip", k.outboundRoundTrip)
	t.Run("Outbound/RateLimited", k.outboundRateLimited)
	t.Run("Outbound/BadRecipient", k.outboundBadRecipient)
	t.Run("Outbound/Concurrent", k.outboundConcurrent)
	t.Run("Run/Cancel", k.runCancel)
}

// kit runs the checks of one Harness.
type kit struct {
	h Harness
}

// fixture builds the environment and the adapter of one check.
func (k *kit) fixture(t *testing.T) (*Env, *Fixture) {
	t.Helper()
	env := NewEnv(t, k.h.Name)
	env.timeout = k.h.Timeout
	fx := k.h.New(t, env.Deps)
	if fx == nil || fx.Adapter == nil {
		t.Fatal("adaptertest: Harness.New returned no adapter")
	}
	if got := fx.Adapter.Name(); got != k.h.Name {
		t.Fatalf("adaptertest: Name() = %q, want %q (Harness.Name)", got, k.h.Name)
	}
	return env, fx
}

// skipIf skips t when the Skip flag named flag is set.
func skipIf(t *testing.T, skip bool, flag string) {
	t.Helper()
	if skip {
		t.Skipf("Skip.%s is set", flag)
	}
}

// hook names a Fixture hook for requireHooks; missing is true when it is nil.
type hook struct {
	name    string
	missing bool
}

// requireHooks fails t when a hook a check needs is nil: leaving a hook out is
// no way to skip a check, the Skip flag named flag is.
func requireHooks(t *testing.T, flag string, hooks ...hook) {
	t.Helper()
	for _, h := range hooks {
		if h.missing {
			t.Fatalf("adaptertest: Fixture.%s is nil; set Skip.%s if the channel cannot do this", h.name, flag)
		}
	}
}

// Package store keeps omnigate's state: contacts, their identities, conversations
// and small generic records for other components, with per-key revisions and
// compare-and-set so that any number of replicas can share it without losing a
// write.
//
// Two backends implement the small KV primitive: JetStream KV (NewJetStream, the
// embedded default) and Redis (NewRedis). Store is the typed layer, written once on
// top of KV, so both backends share every rule about contacts and conversations.
// The conformance suite in store/storetest runs against both.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/omnigate/omnigate/core/keylock"
)

// Sentinel errors returned by KV implementations and by Store. Compare with errors.Is:
// they usually come wrapped with the operation.
var (
	// ErrNotFound means the key, contact, conversation or record does not exist
	// (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a create found the key already present.
	ErrExists = errors.New("store: already exists")
	// ErrConflict means a compare-and-set lost: the revision given is not the
	// current one, or the key is gone. Store's update loops retry it; it reaches
	// callers only when the retries run out.
	ErrConflict = errors.New("store: revision conflict")
	// ErrInvalid means a bucket name or key cannot be stored (see ValidBucket and
	// MaxKeyBytes), or an update tried a change the store does not allow.
	ErrInvalid = errors.New("store: invalid")
	// ErrSkip, returned by the function given to UpdateContact,
	// UpdateConversation or Records.Update, ends the update without writing: the
	// update returns the value as it read it, and no error.
	ErrSkip = errors.New("store: skip update")
	// ErrUnavailable is wrapped by the errors of a backend that could not be
	// reached or refused to work for now (connection refused, a timeout, Redis
	// still loading): the operation may succeed later. The bus retries a
	// handler that fails with it for as long as the outage lasts, instead of
	// dead-lettering the message.
	ErrUnavailable error = unavailableError{}
)

type unavailableError struct{}

func (unavailableError) Error() string { return "store: backend unavailable" }

// Unavailable marks the error for the bus (bus.IsUnavailable), which store
// does not import.
func (unavailableError) Unavailable() bool { return true }

// MaxKeyBytes is the longest key a KV accepts. Keys may hold any bytes except
// that they must be non-empty; backends encode what their wire format cannot carry.
const MaxKeyBytes = 1024

// KV is a revisioned key-value store, the one primitive every backend implements.
//
// Keys live in buckets. A bucket name matches ValidBucket; a backend creates a
// bucket on first use. Keys are non-empty strings of at most MaxKeyBytes bytes and
// may contain any character (':' '@' '+' '.' ' ' included): a backend that cannot
// store a character encodes the key reversibly, so Keys returns keys as written.
//
// Every successful write returns the new revision of the key. Revisions are per key,
// greater than zero, and strictly increase on every write, across deletes too: a
// key deleted and created again never gets a revision it had before, so a stale
// compare-and-set cannot succeed (no ABA). Nothing else may be assumed about them;
// in particular they are not contiguous.
//
// A ttl greater than zero makes the written value expire after ttl; ttl 0 means the
// value never expires. Every write sets the expiry afresh, so an Update with ttl 0
// removes a TTL the previous value had. Backends may round a TTL up (JetStream
// counts whole seconds).
//
// Implementations are safe for concurrent use by many goroutines and many
// processes. Every method that talks to the backend takes ctx first and returns
// early when it is done.
type KV interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, bucket, key string) (Entry, error)
	// Create stores value under key only if the key does not exist, and returns
	// the new revision; ErrExists if it does.
	Create(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) (uint64, error)
	// Update stores value under key only if rev is the key's current revision, and
	// returns the new revision; ErrConflict otherwise (also when the key is gone).
	Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error)
	// Delete removes key. With rev 0 it is unconditional and deleting a missing
	// key is not an error; otherwise rev must be the current revision, or Delete
	// returns ErrConflict.
	Delete(ctx context.Context, bucket, key string, rev uint64) error
	// Keys returns the keys of bucket that start with prefix ("" for all), sorted.
	// It reads the whole bucket: meant for admin and listing, not the hot path.
	Keys(ctx context.Context, bucket, prefix string) ([]string, error)
	// Ping checks that the backend answers, for readiness probes.
	Ping(ctx context.Context) error
	// Close releases what the KV owns. It does not close connections passed in.
	Close() error
}

// Entry is one key's current value and revision.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	// Expires is true when the value was written with a TTL (backends that
	// cannot tell leave it false); such values are never cached.
	Expires bool
}

// ValidBucket reports whether name can be used as a bucket name: 1 to 64
// characters from [A-Za-z0-9_-]. Both backends accept exactly these.
func ValidBucket(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !plainByte(name[i]) {
			return false
		}
	}
	return true
}

// plainByte reports whether c is in [A-Za-z0-9_-], the bytes that need no encoding
// on any backend.
func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// checkBucket returns an error matching ErrInvalid when bucket is not a valid name.
func checkBucket(bucket string) error {
	if !ValidBucket(bucket) {
		return fmt.Errorf("%w bucket name %q: want 1-64 of [A-Za-z0-9_-]", ErrInvalid, bucket)
	}
	return nil
}

// checkKey returns an error matching ErrInvalid when bucket or key cannot be stored.
// It never repeats the key: keys may be phone numbers or email addresses.
func checkKey(bucket, key string) error {
	switch {
	case !ValidBucket(bucket):
		return checkBucket(bucket)
	case key == "":
		return fmt.Errorf("%w key: empty", ErrInvalid)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w key: %d bytes, at most %d", ErrInvalid, len(key), MaxKeyBytes)
	}
	return nil
}

// Buckets the typed layer uses. Records buckets are "rec_" + the component's name,
// so a component can never reach into these.
const (
	bucketContacts      = "contacts"
	bucketIdentities    = "identities"
	bucketConversations = "conversations"
	bucketOpen          = "open"
	recordsPrefix       = "rec_"
)

// maxAttempts bounds every compare-and-set loop. Under heavy contention a loop
// backs off with jitter between attempts; running out returns ErrConflict.
const maxAttempts = 100

// Options tunes a Store. The zero value is usable.
type Options struct {
	// ClosedTTL is how long a closed conversation is kept; 0 keeps it forever.
	// Reopening a conversation removes the expiry.
	ClosedTTL time.Duration
	// Now is the clock for CreatedAt/UpdatedAt; nil means time.Now.
	Now func() time.Time
	// CacheBytes turns on a read cache of about this many bytes, when the KV is
	// a Watcher (JetStream KV and Redis are): reads of contacts, conversations and records
	// that did not change are answered from memory, and every change, by any
	// replica, drops what it changed as soon as the watch reports it. 0 leaves
	// the cache off; serve turns it on (DefaultCacheBytes).
	CacheBytes int
	// Logger receives the cache's warnings. Default: discard.
	Logger *slog.Logger
}

// Store is omnigate's typed state on top of a KV: contacts, identities,
// conversations and generic records. All methods are safe for concurrent use, from
// any number of goroutines and replicas sharing the same backend. Functions passed
// to its methods (update, seed and init functions) must not call the Store.
type Store struct {
	kv   KV
	opts Options
	// locks serializes this process's read-modify-write loops on one key.
	locks keylock.Locks
}

// New returns a Store on kv. The Store owns kv: Close closes it.
func New(kv KV, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if w, ok := kv.(Watcher); ok && opts.CacheBytes > 0 {
		kv = newCachingKV(kv, w, opts.CacheBytes, opts.Logger)
	}
	return &Store{kv: kv, opts: opts}
}

// KV returns the primitive the Store runs on, for admin tools; with the read
// cache on, through the cache, so that what they write is seen at once.
func (s *Store) KV() KV { return s.kv }

// Ping checks that the backend answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.kv.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the underlying KV.
func (s *Store) Close() error { return s.kv.Close() }

// now is the Store's clock, in UTC so stored JSON reads the same on every replica.
func (s *Store) now() time.Time { return s.opts.Now().UTC() }

// casLoop runs attempt until it returns anything but ErrConflict, at most
// maxAttempts times, sleeping a short jittered backoff between attempts so that
// contenders spread out instead of colliding again.
func casLoop(ctx context.Context, attempt func() error) error {
	var err error
	for i := 0; i < maxAttempts; i++ {
		if err = attempt(); !errors.Is(err, ErrConflict) {
			return err
		}
		if err := backoff(ctx, i); err != nil {
			return err
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", maxAttempts, err)
}

// backoff sleeps a random duration in [0, min(100µs·2^i, 20ms)), or until ctx is
// done. The cap is wide enough that dozens of contenders on one key spread out
// and each gets its turn well within maxAttempts.
func backoff(ctx context.Context, i int) error {
	limit := min(100*time.Microsecond<<min(i, 8), 20*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

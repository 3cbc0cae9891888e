package tickets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// Record buckets of the service (store.Records), each its own bucket so that
// listing tickets reads no index entries.
const (
	// recordsTickets holds "counter" (the next number) and "t:<number>", the
	// number zero-padded to 12 digits so that keys sort by number.
	recordsTickets = "tickets"
	// recordsIdem maps an idempotency key to the number created for it.
	recordsIdem = "tickets_idem"
	// recordsLinks maps "conv:<conversation>" and "contact:<contact>" to ticket
	// numbers, and "ext:<bridge>:<external id>" to one number.
	recordsLinks = "tickets_links"
	// recordsOutbox holds one marker per change in flight: "<number>:<id>".
	recordsOutbox = "tickets_outbox"
)

// idemTTL is how long an idempotency key is remembered.
const idemTTL = 7 * 24 * time.Hour

// outboxTTL bounds a marker's life if no sweep ever removes it.
const outboxTTL = 7 * 24 * time.Hour

const counterKey = "counter"

func ticketKey(n int64) string { return fmt.Sprintf("t:%012d", n) }

// repo is the ticket state in the store.
type repo struct {
	st      *store.Store
	tickets *store.Records
	idem    *store.Records
	links   *store.Records
	outbox  *store.Records
}

func newRepo(st *store.Store) *repo {
	return &repo{
		st:      st,
		tickets: st.Records(recordsTickets),
		idem:    st.Records(recordsIdem),
		links:   st.Records(recordsLinks),
		outbox:  st.Records(recordsOutbox),
	}
}

// counter is the record that hands out numbers.
type counter struct {
	Next int64 `json:"next"`
}

// allocate returns a fresh number, at least first. The counter is updated with
// compare-and-set, so replicas never hand out the same number; a number whose
// ticket was never stored (a crash in between) is skipped, not reused.
func (r *repo) allocate(ctx context.Context, first int64) (int64, error) {
	var c counter
	var n int64
	_, err := r.tickets.Update(ctx, counterKey, &c, 0, func(bool) error {
		n = max(c.Next, first)
		c.Next = n + 1
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("allocate number: %w", err)
	}
	return n, nil
}

// get reads ticket n.
func (r *repo) get(ctx context.Context, n int64) (*Ticket, error) {
	t := &Ticket{}
	rev, err := r.tickets.Get(ctx, ticketKey(n), t)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: ticket #%d", ErrNotFound, n)
	}
	if err != nil {
		return nil, err
	}
	t.Revision = rev
	return t, nil
}

// create stores the new ticket t; store.ErrExists if its number is taken.
func (r *repo) create(ctx context.Context, t *Ticket) error {
	rev, err := r.tickets.Create(ctx, ticketKey(t.Number), t, 0)
	if err != nil {
		return err
	}
	t.Revision = rev
	return nil
}

// errMissing aborts an update of a ticket that does not exist.
var errMissing = errors.New("missing")

// update changes ticket n with fn under compare-and-set; fn may run several
// times and must derive everything from t. fn returns store.ErrSkip to write
// nothing. update returns the ticket as stored (or as read on a skip).
func (r *repo) update(ctx context.Context, n int64, fn func(t *Ticket) error) (*Ticket, error) {
	t := &Ticket{}
	rev, err := r.tickets.Update(ctx, ticketKey(n), t, 0, func(exists bool) error {
		if !exists {
			return errMissing
		}
		return fn(t)
	})
	if errors.Is(err, errMissing) {
		return nil, fmt.Errorf("%w: ticket #%d", ErrNotFound, n)
	}
	if err != nil {
		return nil, err
	}
	t.Revision = rev
	return t, nil
}

// numbers returns the ticket numbers linked under key.
func (r *repo) numbers(ctx context.Context, key string) ([]int64, error) {
	var ns []int64
	_, err := r.links.Get(ctx, key, &ns)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return ns, err
}

// link adds n to the numbers under key.
func (r *repo) link(ctx context.Context, key string, n int64) error {
	var ns []int64
	_, err := r.links.Update(ctx, key, &ns, 0, func(bool) error {
		if slices.Contains(ns, n) {
			return store.ErrSkip
		}
		ns = append(ns, n)
		return nil
	})
	return err
}

// unlink removes n from the numbers under key.
func (r *repo) unlink(ctx context.Context, key string, n int64) error {
	var ns []int64
	_, err := r.links.Update(ctx, key, &ns, 0, func(exists bool) error {
		i := slices.Index(ns, n)
		if !exists || i < 0 {
			return store.ErrSkip
		}
		ns = slices.Delete(ns, i, i+1)
		return nil
	})
	return err
}

func convKey(id string) string    { return "conv:" + id }
func contactKey(id string) string { return "contact:" + id }
func extKey(bridge, id string) string {
	return "ext:" + bridge + ":" + id
}

// byExternal returns the number the bridge's external id belongs to.
func (r *repo) byExternal(ctx context.Context, bridge, id string) (int64, error) {
	var n int64
	_, err := r.links.Get(ctx, extKey(bridge, id), &n)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s ticket %s", ErrNotFound, bridge, id)
	}
	return n, err
}

// marker is an outbox entry: a change of Ticket made at Since whose events and
// links may not be published yet.
type marker struct {
	Ticket int64     `json:"ticket"`
	Since  time.Time `json:"since"`
}

// mark records that a change of ticket n starts now; the returned key removes
// the marker once the change is published.
func (r *repo) mark(ctx context.Context, n int64, now time.Time) (string, error) {
	key := strconv.FormatInt(n, 10) + ":" + core.NewID()
	if _, err := r.outbox.Create(ctx, key, marker{Ticket: n, Since: now}, outboxTTL); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	return key, nil
}

// unmark removes an outbox marker.
func (r *repo) unmark(ctx context.Context, key string) error {
	if err := r.outbox.Delete(ctx, key, 0); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// markers lists the outbox.
func (r *repo) markers(ctx context.Context) (map[string]marker, error) {
	keys, err := r.outbox.Keys(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]marker, len(keys))
	for _, k := range keys {
		var m marker
		if _, err := r.outbox.Get(ctx, k, &m); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return nil, err
		}
		out[k] = m
	}
	return out, nil
}

// ticketNumbers lists every ticket number, ascending.
func (r *repo) ticketNumbers(ctx context.Context) ([]int64, error) {
	keys, err := r.tickets.Keys(ctx, "t:")
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(keys))
	for _, k := range keys {
		n, err := strconv.ParseInt(strings.TrimPrefix(k, "t:"), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

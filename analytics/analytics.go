package analytics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Names in JetStream and the store.
const (
	// Bucket is the object store bucket of the checkpoint.
	Bucket = "omnigate_analytics"
	// checkpointObject is the checkpoint's name in Bucket.
	checkpointObject = "state.json.gz"
	// leaseName is the store lease of the replica doing the work.
	leaseName = "analytics"
	// leaseTTL is how long the lease outlives its holder.
	leaseTTL = 10 * time.Second
	// stateVersion is the checkpoint's format.
	stateVersion = 1
)

// Deps are what Analytics needs.
type Deps struct {
	// Bus carries the streams it reads; required.
	Bus *bus.Bus
	// Store holds the lease; required by Run (a reader of reports needs none).
	Store *store.Store
	// Replicas is the checkpoint bucket's replica count; default 1.
	Replicas int
	// Settings are the routing facts the metrics need (business hours, agents'
	// capacity); AbandonWindow and ResolutionTarget come from Config.
	Settings Settings
	// Logger is pre-scoped (component=analytics); default discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Owner names this replica in the lease; default host/pid.
	Owner string
}

// Analytics keeps the service-quality metrics: it reads the transcript and
// event streams into per-conversation timelines (one replica at a time, see
// the package doc) and answers reports. Safe for concurrent use.
type Analytics struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	now   func() time.Time
	lease *store.Lease

	mu    sync.RWMutex
	st    *state // the live state while this replica holds the lease, else the last loaded checkpoint
	live  bool   // st is live
	dirty bool   // st changed since the last checkpoint
	// loaded is when st was last loaded from the checkpoint (when not live).
	loaded time.Time
}

// state is what the checkpoint holds.
type state struct {
	Version int `json:"version"`
	// Seq is the last sequence applied from each stream: OMNI_CONV, OMNI_EVT.
	Seq [2]uint64 `json:"seq"`
	// Applied counts the envelopes applied, for tests and operators.
	Applied   uint64               `json:"applied"`
	Timelines map[string]*timeline `json:"timelines"`
	// Saved is when the checkpoint was written.
	Saved time.Time `json:"saved"`
}

func newState() *state { return &state{Version: stateVersion, Timelines: map[string]*timeline{}} }

// New builds the component from its section.
func New(cfg Config, deps Deps) (*Analytics, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Bus == nil {
		return nil, errors.New("analytics: Deps.Bus is required")
	}
	a := &Analytics{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, st: newState()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	owner := deps.Owner
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	a.deps.Settings.AbandonWindow = cfg.AbandonWindow
	a.deps.Settings.ResolutionTarget = cfg.ResolutionTarget
	if deps.Store != nil {
		a.lease = deps.Store.Lease(leaseName, owner, leaseTTL)
	}
	return a, nil
}

// Run does the work whenever this replica holds the lease, until ctx is done.
func (a *Analytics) Run(ctx context.Context) error {
	if a.lease == nil {
		return errors.New("analytics: Run needs Deps.Store, which holds the lease")
	}
	for {
		got, err := a.lease.Acquire(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("analytics lease", "err", err)
		}
		if got {
			err := a.lease.Hold(ctx, a.work)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("analytics stopped, another replica may take over", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(leaseTTL / 3):
		}
	}
}

// delivery is one envelope read from a stream.
type delivery struct {
	src  source
	seq  uint64
	data []byte
}

// work loads the checkpoint and applies both streams from it until ctx ends,
// saving checkpoints as it goes and once more at the end.
func (a *Analytics) work(ctx context.Context) error {
	obj, st, err := a.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.st, a.live, a.dirty = st, true, false
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.live = false
		a.mu.Unlock()
	}()
	a.log.Info("analytics running", "conversations", len(st.Timelines), "conv_seq", st.Seq[0], "evt_seq", st.Seq[1])

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan delivery, 256)
	errc := make(chan error, 2)
	for src, stream := range []string{bus.StreamConv, bus.StreamEvt} {
		go func() { errc <- a.read(cctx, stream, source(src), st.Seq[src], in) }()
	}
	tick := time.NewTicker(a.cfg.Checkpoint)
	defer tick.Stop()
	for {
		select {
		case d := <-in:
			a.apply(d)
		case <-tick.C:
			if err := a.checkpoint(ctx, obj); err != nil {
				a.log.Warn("analytics checkpoint", "err", err)
			}
		case err := <-errc:
			a.saveOnExit(obj)
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-ctx.Done():
			a.saveOnExit(obj)
			return nil
		}
	}
}

// saveOnExit saves a last checkpoint, bounded, after the work's ctx ended.
func (a *Analytics) saveOnExit(obj jetstream.ObjectStore) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.checkpoint(ctx, obj); err != nil {
		a.log.Warn("analytics checkpoint on exit", "err", err)
	}
}

// read sends stream's envelopes after seq to in, in order, until ctx ends.
func (a *Analytics) read(ctx context.Context, stream string, src source, seq uint64, in chan<- delivery) error {
	js := a.deps.Bus.JetStream()
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq+1
	}
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = js.OrderedConsumer(ctx, stream, cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		a.log.Warn("analytics: cannot read stream yet, retrying", "stream", stream, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("analytics: read %s: %w", stream, err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("analytics: read %s: %w", stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		if md.Sequence.Stream <= seq {
			continue
		}
		seq = md.Sequence.Stream
		select {
		case in <- delivery{src: src, seq: seq, data: msg.Data()}:
		case <-ctx.Done():
			return nil
		}
	}
}

// apply adds one envelope to the state.
func (a *Analytics) apply(d delivery) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.st
	if d.seq <= st.Seq[d.src] {
		return
	}
	st.Seq[d.src] = d.seq
	st.Applied++
	a.dirty = true
	m, err := core.Decode(d.data)
	if err != nil {
		return // not an envelope: nothing to count
	}
	applyTo(st, d.src, d.seq, m)
}

// applyTo adds envelope m, read at seq from src, to st.
func applyTo(st *state, src source, seq uint64, m *core.Message) {
	id, es := entriesOf(src, seq, m)
	if src == srcEvt && m.Type == event.ConversationTagged && id != "" {
		// The conversation's tags now, as the pipeline keeps them.
		tl := st.timeline(id)
		tl.Tags = nil
		tl.addTags(m.Meta[event.MetaTags])
		if t := at(m); t.After(tl.Last) {
			tl.Last = t
		}
		return
	}
	if id == "" || len(es) == 0 {
		return
	}
	tl := st.timeline(id)
	if tl.Contact == "" {
		tl.Contact = m.ContactID
	}
	if src == srcEvt && m.Meta != nil {
		tl.addTags(m.Meta[event.MetaTags])
		if v := m.Meta[event.MetaIntent]; v != "" {
			tl.Intent = v
		}
	}
	for _, e := range es {
		tl.add(e)
	}
}

// timeline returns the timeline of id, made when there is none.
func (st *state) timeline(id string) *timeline {
	tl := st.Timelines[id]
	if tl == nil {
		tl = &timeline{ID: id}
		st.Timelines[id] = tl
	}
	return tl
}

// checkpoint drops expired timelines and saves the state when it changed.
func (a *Analytics) checkpoint(ctx context.Context, obj jetstream.ObjectStore) error {
	a.mu.Lock()
	if !a.dirty {
		a.mu.Unlock()
		return nil
	}
	cut := a.now().Add(-a.cfg.Retention)
	for id, tl := range a.st.Timelines {
		if tl.Last.Before(cut) {
			delete(a.st.Timelines, id)
		}
	}
	a.st.Saved = a.now().UTC()
	data, err := encodeState(a.st)
	a.dirty = false
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := obj.PutBytes(ctx, checkpointObject, data); err != nil {
		a.mu.Lock()
		a.dirty = true
		a.mu.Unlock()
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// bucket opens (or creates) the checkpoint bucket.
func (a *Analytics) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	js := a.deps.Bus.JetStream()
	obj, err := js.ObjectStore(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obj, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      Bucket,
			Description: "omnigate analytics: the checkpoint of the service-quality metrics",
			Replicas:    max(a.deps.Replicas, 1),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("analytics: open bucket %s: %w", Bucket, err)
	}
	return obj, nil
}

// loadCheckpoint opens the bucket and reads the checkpoint in it.
func (a *Analytics) loadCheckpoint(ctx context.Context) (jetstream.ObjectStore, *state, error) {
	obj, err := a.bucket(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := loadState(ctx, obj)
	return obj, st, err
}

func encodeState(st *state) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(st); err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadState reads the checkpoint, or a new state when there is none.
func loadState(ctx context.Context, obj jetstream.ObjectStore) (*state, error) {
	data, err := obj.GetBytes(ctx, checkpointObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("analytics: load checkpoint: %w", err)
	}
	return decodeState(data)
}

// decodeState reads a checkpoint written by encodeState.
func decodeState(data []byte) (*state, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("analytics: checkpoint is not gzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 4<<30))
	if err != nil {
		return nil, fmt.Errorf("analytics: read checkpoint: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("analytics: decode checkpoint: %w", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("analytics: checkpoint format %d, this build reads %d: upgrade omnigate", st.Version, stateVersion)
	}
	if st.Timelines == nil {
		st.Timelines = map[string]*timeline{}
	}
	return st, nil
}

// refresh, on a replica that does not hold the lease, loads the latest
// checkpoint when the one it has is older than maxAge.
func (a *Analytics) refresh(ctx context.Context, maxAge time.Duration) error {
	a.mu.RLock()
	fresh := a.live || time.Since(a.loaded) < maxAge
	a.mu.RUnlock()
	if fresh {
		return nil
	}
	_, st, err := a.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if !a.live {
		a.st, a.loaded = st, time.Now()
	}
	a.mu.Unlock()
	return nil
}

// Position is how far the state has read: the last sequence applied from
// OMNI_CONV and OMNI_EVT, and the envelopes applied in all.
func (a *Analytics) Position(ctx context.Context) (conv, evt, applied uint64, err error) {
	if err := a.refresh(ctx, time.Second); err != nil {
		return 0, 0, 0, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.st.Seq[0], a.st.Seq[1], a.st.Applied, nil
}

// Report answers q from the state, with the weak spots of its range.
func (a *Analytics) Report(ctx context.Context, q Query) (*Report, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Location == nil {
		q.Location = a.cfg.Location()
	}
	if err := a.refresh(ctx, time.Second); err != nil {
		return nil, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	convFacts := conversationFacts(a.st.Timelines, q.To)
	r := aggregateFacts(a.st.Timelines, convFacts, q, a.deps.Settings)
	r.Weak = a.weak(q, convFacts)
	return r, nil
}

// weak finds the weak spots of q's range: each queue's hours against the
// queue's other hours, agents against agents, channels against channels.
// convFacts are the conversations' facts as of q.To. The caller holds a.mu.
func (a *Analytics) weak(q Query, convFacts map[string]*facts) []WeakSpot {
	groups := map[string][]Row{}
	qh := q
	qh.By = byQueueHour
	for _, r := range aggregateFacts(a.st.Timelines, convFacts, qh, a.deps.Settings).Rows {
		queue, _, _ := strings.Cut(r.Key, " ")
		r.Key = "queue " + r.Key
		groups["queue "+queue] = append(groups["queue "+queue], r)
	}
	for _, by := range []string{ByAgent, ByChannel} {
		qb := q
		qb.By = by
		for _, r := range aggregateFacts(a.st.Timelines, convFacts, qb, a.deps.Settings).Rows {
			r.Key = by + " " + r.Key
			groups[by] = append(groups[by], r)
		}
	}
	return weakSpots(groups)
}

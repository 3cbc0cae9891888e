package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a message a stage gave up on, as kept in the DLQ stream.
type DeadLetter struct {
	// Sequence in the DLQ stream; Replay takes it.
	Sequence uint64
	// Stage that gave up, and the error of its last attempt.
	Stage, Error string
	// Subject the message was first published to, where Replay sends it back.
	Subject string
	// Deliveries is how many times the stage tried.
	Deliveries int
	// Time it was dead-lettered.
	Time time.Time
	// Header and Data of the original message.
	Header nats.Header
	Data   []byte
}

// DeadLetters lists up to limit dead letters, oldest first, optionally only of
// one stage ("" for all).
func (b *Bus) DeadLetters(ctx context.Context, stage string, limit int) ([]DeadLetter, error) {
	st, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("bus: dlq: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: dlq info: %w", err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && (limit <= 0 || len(out) < limit); seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("bus: dlq get %d: %w", seq, err)
		}
		dl := toDeadLetter(raw)
		if stage != "" && dl.Stage != stage {
			continue
		}
		out = append(out, dl)
	}
	return out, nil
}

func toDeadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	n, _ := strconv.Atoi(h.Get(HeaderDLQDeliveries))
	t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime))
	if err != nil {
		t = raw.Time
	}
	return DeadLetter{
		Sequence:   raw.Sequence,
		Stage:      h.Get(HeaderDLQStage),
		Error:      h.Get(HeaderDLQError),
		Subject:    h.Get(HeaderDLQSubject),
		Deliveries: n,
		Time:       t,
		Header:     h,
		Data:       raw.Data,
	}
}

// ErrWouldReorder is returned by Replay when the dead letter's sender (its
// HeaderOrderKey) has later messages that were handled already: replayed, it
// would be handled after them. ReplayOptions.AllowReorder replays it anyway.
var ErrWouldReorder = errors.New("bus: dlq replay would put the message after later ones of the same sender")

// ReplayOptions change what Replay checks.
type ReplayOptions struct {
	// AllowReorder replays a dead letter even when later messages of its
	// sender were handled already.
	AllowReorder bool
}

// Replay publishes the dead letter with DLQ sequence seq back to its original
// subject, with its original headers, then removes it from the DLQ. The replay
// carries a fresh deduplication id, so the original id's window does not drop
// it, while replaying the same dead letter twice is still stored once.
//
// It refuses, with ErrWouldReorder, a dead letter whose sender has later
// messages on the same subject that are not dead letters themselves, unless
// opts allow it: those were handled, and the replay would come after them.
func (b *Bus) Replay(ctx context.Context, seq uint64, opts ReplayOptions) (Ack, error) {
	st, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return Ack{}, fmt.Errorf("bus: dlq: %w", err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		return Ack{}, fmt.Errorf("bus: dlq replay %d: %w", seq, err)
	}
	dl := toDeadLetter(raw)
	if dl.Subject == "" {
		return Ack{}, fmt.Errorf("bus: dlq replay %d: no %s header, cannot tell where it came from", seq, HeaderDLQSubject)
	}
	if !opts.AllowReorder {
		n, first, err := b.handledAfter(ctx, dl)
		if err != nil {
			return Ack{}, fmt.Errorf("bus: dlq replay %d: check the order: %w", seq, err)
		}
		if n > 0 {
			return Ack{}, fmt.Errorf("%w: dead letter %d (%s): %d later message(s) of %s on %s were handled (the first is %s sequence %d); replaying it would put it after them: replay with --allow-reorder to do it anyway",
				ErrWouldReorder, seq, dl.Stage, n, dl.Header.Get(HeaderOrderKey), dl.Subject, dl.Header.Get(HeaderDLQStream), first)
		}
	}
	m := nats.NewMsg(dl.Subject)
	m.Data = dl.Data
	for k, v := range dl.Header {
		switch k {
		case HeaderDLQStage, HeaderDLQError, HeaderDLQDeliveries, HeaderDLQSubject, HeaderDLQStream,
			HeaderDLQSequence, HeaderDLQTime, HeaderDLQMsgID, HeaderMsgID, HeaderReplaySequence:
			continue
		}
		m.Header[k] = v
	}
	orig := dl.Header.Get(HeaderDLQMsgID)
	m.Header.Set(HeaderMsgID, orig+"#replay-"+strconv.FormatUint(seq, 10))
	m.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	if orig := dl.Header.Get(HeaderDLQSequence); orig != "" {
		if first := dl.Header.Get(HeaderReplaySequence); first != "" {
			orig = first // dead-lettered again: the first original counts
		}
		m.Header.Set(HeaderReplaySequence, orig)
	}
	ack, err := b.PublishMsg(ctx, m)
	if err != nil {
		return Ack{}, err
	}
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack, fmt.Errorf("bus: dlq replay %d: replayed, but not removed from the DLQ: %w", seq, err)
	}
	return ack, nil
}

// handledAfter counts the messages on dl's original subject after it, with its
// order key, that are not dead letters of the same stage and stream: those
// its stage handled. A replayed message stands where its original stood
// (HeaderReplaySequence). It returns the count and the first one's sequence;
// 0 when dl has no order key or no original sequence.
func (b *Bus) handledAfter(ctx context.Context, dl DeadLetter) (int, uint64, error) {
	key, stream := dl.Header.Get(HeaderOrderKey), dl.Header.Get(HeaderDLQStream)
	orig, err := strconv.ParseUint(cmp.Or(dl.Header.Get(HeaderReplaySequence), dl.Header.Get(HeaderDLQSequence)), 10, 64)
	if key == "" || stream == "" || err != nil {
		return 0, 0, nil
	}
	start, _ := strconv.ParseUint(dl.Header.Get(HeaderDLQSequence), 10, 64)
	dead := map[uint64]bool{}
	dls, err := b.DeadLetters(ctx, dl.Stage, 0)
	if err != nil {
		return 0, 0, err
	}
	for _, d := range dls {
		if d.Header.Get(HeaderDLQStream) == stream {
			if n, err := strconv.ParseUint(d.Header.Get(HeaderDLQSequence), 10, 64); err == nil {
				dead[n] = true
			}
		}
	}
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	if info.State.LastSeq <= orig {
		return 0, 0, nil
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{dl.Subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    min(orig, start) + 1,
		HeadersOnly:    true,
	})
	if err != nil {
		return 0, 0, err
	}
	var n int
	var first uint64
	for {
		batch, err := oc.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return 0, 0, err
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			at := md.Sequence.Stream
			if r, err := strconv.ParseUint(m.Headers().Get(HeaderReplaySequence), 10, 64); err == nil {
				at = r
			}
			if m.Headers().Get(HeaderOrderKey) == key && at > orig && !dead[md.Sequence.Stream] && md.Sequence.Stream != start {
				if n == 0 {
					first = md.Sequence.Stream
				}
				n++
			}
			done = md.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return 0, 0, err
		}
		if done || got == 0 {
			return n, first, nil
		}
	}
}

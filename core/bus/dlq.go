package bus

import (
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

// Replay publishes the dead letter with DLQ sequence seq back to its original
// subject, with its original headers, then removes it from the DLQ. The replay
// carries a fresh deduplication id, so the original id's window does not drop
// it, while replaying the same dead letter twice is still stored once.
func (b *Bus) Replay(ctx context.Context, seq uint64) (Ack, error) {
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
	m := nats.NewMsg(dl.Subject)
	m.Data = dl.Data
	for k, v := range dl.Header {
		switch k {
		case HeaderDLQStage, HeaderDLQError, HeaderDLQDeliveries, HeaderDLQSubject, HeaderDLQStream,
			HeaderDLQSequence, HeaderDLQTime, HeaderDLQMsgID, HeaderMsgID:
			continue
		}
		m.Header[k] = v
	}
	orig := dl.Header.Get(HeaderDLQMsgID)
	m.Header.Set(HeaderMsgID, orig+"#replay-"+strconv.FormatUint(seq, 10))
	m.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	ack, err := b.PublishMsg(ctx, m)
	if err != nil {
		return Ack{}, err
	}
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack, fmt.Errorf("bus: dlq replay %d: replayed, but not removed from the DLQ: %w", seq, err)
	}
	return ack, nil
}

package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// Page sizes of Transcript.
const (
	// DefaultTranscriptLimit is the page size when limit is 0 or less.
	DefaultTranscriptLimit = 100
	// MaxTranscriptLimit is the largest page; larger limits are cut to it.
	MaxTranscriptLimit = 1000
)

// transcriptMaxBytes bounds the bytes of one page, so a page of large envelopes
// stays well below what a client buffers; a page cut short by it is still valid.
const transcriptMaxBytes = 8 << 20

// TranscriptEntry is one envelope of a conversation's transcript.
type TranscriptEntry struct {
	// Seq is the entry's sequence in the OMNI_CONV stream; pass the last one as
	// after to read the next page.
	Seq uint64
	// Time is when the entry was appended.
	Time time.Time
	// Message is the envelope, nil when Err is set.
	Message *core.Message
	// Err is why the stored envelope could not be decoded (e.g. one written by a
	// newer build), nil otherwise.
	Err error
}

// Transcript reads conversation's transcript (omni.conv.<conversation>) in order:
// up to limit entries (DefaultTranscriptLimit when limit <= 0, at most
// MaxTranscriptLimit) whose stream sequence is greater than after (0 for the
// start). next is the after of the following page: the last entry's Seq, or after
// itself when there was none. A page may hold fewer than limit entries while more
// follow (it is also bounded in bytes): the transcript is read to its current end
// when a page comes back empty.
//
// It is one batched direct get (JetStream 2.11+) with the next-by-subject lookup:
// one request per page, answered by any replica of the stream, leaving no consumer
// state on the server. A server that ignores batching answers with one entry per
// page, which is slower but still correct. When ctx has no deadline, the
// JetStream context's default timeout bounds the call.
func Transcript(ctx context.Context, js jetstream.JetStream, conversation string, after uint64, limit int) (msgs []TranscriptEntry, next uint64, err error) {
	if !bus.ValidToken(conversation) {
		return nil, after, fmt.Errorf("pipeline: transcript: %q is not a conversation id", conversation)
	}
	if after == math.MaxUint64 {
		return nil, after, nil
	}
	if limit <= 0 {
		limit = DefaultTranscriptLimit
	}
	limit = min(limit, MaxTranscriptLimit)
	if _, ok := ctx.Deadline(); !ok {
		if d := js.Options().DefaultTimeout; d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	msgs, err = directBatch(ctx, js, bus.SubjectConv(conversation), after+1, limit)
	next = after
	if n := len(msgs); n > 0 {
		next = msgs[n-1].Seq
	}
	if err != nil {
		return msgs, next, fmt.Errorf("pipeline: transcript %s after %d: %w", conversation, after, err)
	}
	return msgs, next, nil
}

// Headers of direct get answers that nats.go does not export.
const (
	hdrStatus      = "Status"
	hdrDescription = "Description"
	hdrNumPending  = "Nats-Num-Pending"
)

// directGetRequest is JetStream's direct get request with batching.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// directBatch reads up to batch messages of subject in OMNI_CONV from sequence
// seq on. The server streams them to an inbox and ends with a 204 EOB status, or
// answers 404 when there is none.
func directBatch(ctx context.Context, js jetstream.JetStream, subject string, seq uint64, batch int) ([]TranscriptEntry, error) {
	req, err := json.Marshal(directGetRequest{Seq: seq, NextFor: subject, Batch: batch, MaxBytes: transcriptMaxBytes})
	if err != nil {
		return nil, err
	}
	nc := js.Conn()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(apiPrefix(js)+"DIRECT.GET."+bus.StreamConv, inbox, req); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	var out []TranscriptEntry
	for len(out) <= batch {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return out, err
		}
		switch status := msg.Header.Get(hdrStatus); status {
		case "":
		case "204", "404": // end of batch; no (more) messages
			return out, nil
		case "503":
			return out, fmt.Errorf("no responders: does stream %s exist and allow direct get?", bus.StreamConv)
		default:
			return out, fmt.Errorf("direct get: status %s %s", status, msg.Header.Get(hdrDescription))
		}
		e, err := transcriptEntry(msg)
		if err != nil {
			return out, err
		}
		out = append(out, e)
		if msg.Header.Get(hdrNumPending) == "" {
			return out, nil // a server without batching answered one message
		}
	}
	return out, nil
}

// transcriptEntry reads one direct get answer.
func transcriptEntry(msg *nats.Msg) (TranscriptEntry, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return TranscriptEntry{}, fmt.Errorf("direct get: bad %s header %q", jetstream.SequenceHeader, msg.Header.Get(jetstream.SequenceHeader))
	}
	e := TranscriptEntry{Seq: seq}
	if ts := msg.Header.Get(jetstream.TimeStampHeaer); ts != "" {
		e.Time, _ = time.Parse(time.RFC3339Nano, ts)
	}
	e.Message, e.Err = core.Decode(msg.Data)
	return e, nil
}

// apiPrefix is the JetStream API prefix js sends requests to.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	}
	return jetstream.DefaultAPIPrefix
}

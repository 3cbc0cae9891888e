package bus

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names. Each stream owns one subject tree of DESIGN.md.
const (
	StreamIn   = "OMNI_IN"   // omni.in.>   inbound from customers and desks
	StreamConv = "OMNI_CONV" // omni.conv.> per-conversation transcript
	StreamDesk = "OMNI_DESK" // omni.desk.> what agent desks must show
	StreamOut  = "OMNI_OUT"  // omni.out.>  replies to send to customers
	StreamEvt  = "OMNI_EVT"  // omni.evt.>  lifecycle and delivery events
	StreamDLQ  = "OMNI_DLQ"  // omni.dlq.>  dead letters
)

// Subject roots, one per stream.
const (
	RootIn   = "omni.in"
	RootConv = "omni.conv"
	RootDesk = "omni.desk"
	RootOut  = "omni.out"
	RootEvt  = "omni.evt"
	RootDLQ  = "omni.dlq"
)

// Partitions is the number of inbound partitions. An inbound message is published
// to omni.in.<channel>.<partition>, the partition chosen from the sender identity,
// so that the pipeline can process one sender's messages in order while different
// senders run in parallel on every replica. It is part of the wire contract:
// out-of-process adapters compute it the same way (see PartitionOf) or publish to
// omni.in.<channel>, which is treated as partition 0.
const Partitions = 64

// Header names omnigate sets on bus messages.
const (
	// HeaderMsgID is JetStream's deduplication header: "<channel>:<provider id>".
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderDLQStage names the stage whose handler gave up on a dead letter.
	HeaderDLQStage = "Omni-Dlq-Stage"
	// HeaderDLQError is the last error of a dead letter, in words.
	HeaderDLQError = "Omni-Dlq-Error"
	// HeaderDLQDeliveries is how many times the dead letter was delivered.
	HeaderDLQDeliveries = "Omni-Dlq-Deliveries"
	// HeaderDLQSubject is the subject the dead letter was first published to.
	HeaderDLQSubject = "Omni-Dlq-Subject"
	// HeaderDLQStream and HeaderDLQSequence locate the original in its stream.
	HeaderDLQStream   = "Omni-Dlq-Stream"
	HeaderDLQSequence = "Omni-Dlq-Sequence"
	// HeaderDLQMsgID keeps the original Nats-Msg-Id of a dead letter.
	HeaderDLQMsgID = "Omni-Dlq-Msg-Id"
	// HeaderDLQTime is when the message was dead-lettered (RFC 3339).
	HeaderDLQTime = "Omni-Dlq-Time"
	// HeaderOrderKey is what a message must stay in order with (OrderKeyOf):
	// consumers with an OrderKey handle messages of one key one at a time.
	HeaderOrderKey = "Omni-Order-Key"
	// HeaderReplayOf marks a message replayed from the DLQ with its DLQ sequence.
	HeaderReplayOf = "Omni-Replay-Of"
	// HeaderReplaySequence is, on a replayed message, the stream sequence of
	// the original: where it stands in its sender's order.
	HeaderReplaySequence = "Omni-Replay-Sequence"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidToken reports whether s can be one subject token of an omnigate subject:
// letters, digits, '_' and '-', at most 128 characters.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

func subject(root, token string) string {
	if !ValidToken(token) {
		// A programming error: names reaching here were validated at the edge.
		panic(fmt.Sprintf("bus: %q is not a valid subject token for %s", token, root))
	}
	return root + "." + token
}

// PartitionOf returns the inbound partition of a sender identity: FNV-1a (32 bit)
// of the identity's bytes modulo Partitions.
func PartitionOf(sender string) int {
	h := fnv.New32a()
	h.Write([]byte(sender))
	return int(h.Sum32() % Partitions)
}

// SubjectIn is where an adapter publishes what arrives on channel from sender:
// omni.in.<channel>.<partition>.
func SubjectIn(channel, sender string) string {
	return subject(RootIn, channel) + "." + strconv.Itoa(PartitionOf(sender))
}

// SubjectConv is the transcript subject of a conversation.
func SubjectConv(conversation string) string { return subject(RootConv, conversation) }

// SubjectDesk is what a desk (e.g. "slack") must show.
func SubjectDesk(desk string) string { return subject(RootDesk, desk) }

// SubjectOut carries replies for channel's adapter to send.
func SubjectOut(channel string) string { return subject(RootOut, channel) }

// SubjectEvt carries lifecycle events of a type such as "delivery.failed". Dots
// in the type become subject levels, so omni.evt.delivery.> selects all of them.
func SubjectEvt(eventType string) string {
	for _, part := range strings.Split(eventType, ".") {
		if !ValidToken(part) {
			panic(fmt.Sprintf("bus: %q is not a valid event type", eventType))
		}
	}
	return RootEvt + "." + eventType
}

// SubjectDLQ is where stage's dead letters go.
func SubjectDLQ(stage string) string { return subject(RootDLQ, stage) }

// InPartitionFilters are the subject filters of one inbound partition: every
// channel's messages of partition p, and for p == 0 also those published without
// a partition token.
func InPartitionFilters(p int) []string {
	f := []string{RootIn + ".*." + strconv.Itoa(p)}
	if p == 0 {
		f = append(f, RootIn+".*")
	}
	return f
}

// MsgID is the deduplication id of a provider message: "<channel>:<provider id>".
func MsgID(channel, providerID string) string { return channel + ":" + providerID }

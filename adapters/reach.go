package adapters

import (
	"errors"
	"fmt"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

// UnreachableError is a Send error saying the recipient cannot be reached on
// this channel (they blocked us, opted out, the address bounced, WhatsApp's
// window is closed): Reason is one of the event.Reason* values. The runtime
// does not dead-letter such a reply: it tells the pipeline, which records the
// identity as unreachable and sends the reply again on the contact's next
// reachable channel.
type UnreachableError struct {
	Reason string
	Err    error
}

// Error returns the provider's error.
func (e *UnreachableError) Error() string { return e.Err.Error() }

// Unwrap returns the provider's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Unreachable marks err as saying the recipient cannot be reached on this
// channel, for reason (event.ReasonBlocked, ReasonBounced, ReasonOptedOut,
// ReasonOutsideWindow, ReasonInvalid). It is Permanent: retrying the same
// channel cannot help. Unreachable(nil, r) is nil.
func Unreachable(err error, reason string) error {
	if err == nil {
		return nil
	}
	return bus.Permanent(&UnreachableError{Reason: reason, Err: err})
}

// UnreachableReason returns the reason of an Unreachable error in err's chain.
func UnreachableReason(err error) (string, bool) {
	var u *UnreachableError
	if errors.As(err, &u) {
		return u.Reason, true
	}
	return "", false
}

// UnreachableEvent is the contact.unreachable event a channel publishes with
// Publisher.Inbound when its provider says, outside a Send, that identity id
// cannot be reached (a Telegram my_chat_member "kicked", a hard bounce, an
// SMS STOP): reason is an event.Reason* value, detail the provider's words.
// It goes in order with id's messages; the pipeline records it and tells the
// desks. Set External.Message to deduplicate a provider's retries.
func UnreachableEvent(channel string, id core.Identity, reason, detail string) *core.Message {
	ev := core.NewMessage(core.KindEvent, core.Inbound, channel)
	ev.Type = event.ContactUnreachable
	ev.From = id
	ev.Meta = map[string]string{event.MetaReason: reason}
	if detail != "" {
		ev.Meta[event.MetaError] = core.Truncate(detail, core.MaxMetaValueBytes)
	}
	return ev
}

// ReachableEvent is the contact.reachable event a channel publishes with
// Publisher.Inbound when identity id can be reached again without having
// written (an SMS START, an opt-in): reason says how.
func ReachableEvent(channel string, id core.Identity, reason string) *core.Message {
	ev := core.NewMessage(core.KindEvent, core.Inbound, channel)
	ev.Type = event.ContactReachable
	ev.From = id
	ev.Meta = map[string]string{event.MetaReason: reason}
	return ev
}

// rerouteEvent is the contact.unreachable event the runtime publishes when
// reply m failed with an Unreachable error: it carries m's content, for the
// pipeline to send again on another channel.
func rerouteEvent(m *core.Message, reason string, cause error) *core.Message {
	ev := UnreachableEvent(m.Channel, m.To, reason, fmt.Sprint(cause))
	ev.ReplyTo = m.ID
	ev.ContactID, ev.ConversationID = m.ContactID, m.ConversationID
	ev.Text, ev.HTML, ev.Attachments, ev.QuickReplies = m.Text, m.HTML, m.Attachments, m.QuickReplies
	for _, k := range replyMeta {
		if v := m.Meta[k]; v != "" {
			ev.Meta[k] = v
		}
	}
	// One event per failed reply, however often the runtime tries it.
	ev.External.Message = "unreachable:" + m.ID
	return ev
}

// replyMeta are the meta keys of a reply that another channel needs to send
// it as it was written: its desk, how its text is written, and whether it was
// automatic.
var replyMeta = []string{event.MetaDesk, event.MetaFormat, event.MetaAuto, event.MetaTemplate}

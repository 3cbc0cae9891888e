package sms

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// eventTypes maps Twilio's message statuses to delivery events. Statuses not
// listed (receiving, received: inbound; partially_delivered and any added
// later) are acknowledged and dropped.
var eventTypes = map[string]string{
	"accepted":    event.DeliverySent,
	"scheduled":   event.DeliverySent,
	"queued":      event.DeliverySent,
	"sending":     event.DeliverySent,
	"sent":        event.DeliverySent,
	"delivered":   event.DeliveryDelivered,
	"read":        event.DeliveryRead,
	"undelivered": event.DeliveryFailed,
	"failed":      event.DeliveryFailed,
	"canceled":    event.DeliveryFailed,
}

// dlrLayout is the layout of RawDlrDoneDate: YYMMDDhhmm, in UTC, the
// carrier's "done date" of its delivery receipt as Twilio passes it on.
const dlrLayout = "0601021504"

// statusCallback is a parsed status callback.
type statusCallback struct {
	sid, status string
	to          string // the customer's address, "" when unreadable
	errCode     int
	errMessage  string
	// doneAt is when the carrier says the message reached its final state
	// (RawDlrDoneDate, SMS delivered or undelivered only); zero when absent
	// or unreadable.
	doneAt time.Time
}

// parseStatus reads the parameters of Twilio's status callback.
func parseStatus(channel string, form url.Values, region string) (statusCallback, error) {
	var s statusCallback
	s.sid = firstOf(form, "MessageSid", "SmsSid")
	if !sidPattern.MatchString(s.sid) {
		return s, errors.New("MessageSid: missing or not a Twilio SID")
	}
	s.status = strings.ToLower(firstOf(form, "MessageStatus", "SmsStatus"))
	if s.status == "" || len(s.status) > 32 || strings.IndexFunc(s.status, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '_') }) >= 0 {
		return s, errors.New("MessageStatus: missing or malformed")
	}
	if to, err := partyAddress(channel, form.Get("To"), region); err == nil {
		s.to = to
	}
	if c := form.Get("ErrorCode"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return s, errors.New("ErrorCode: not a number")
		}
		s.errCode = n
	}
	s.errMessage = firstOf(form, "ErrorMessage", "ChannelStatusMessage")
	s.doneAt = parseDoneDate(form.Get("RawDlrDoneDate"))
	return s, nil
}

// parseDoneDate reads a RawDlrDoneDate (YYMMDDhhmm, UTC). It returns zero
// for a value that is not one: carriers fill it, and an unreadable date is no
// reason to lose the status.
func parseDoneDate(v string) time.Time {
	if len(v) != len(dlrLayout) {
		return time.Time{}
	}
	t, err := time.ParseInLocation(dlrLayout, v, time.UTC)
	if err != nil {
		return time.Time{}
	}
	return t
}

// serveStatus handles Twilio's status callbacks: each status of a sent message
// becomes a delivery event, deduplicated on "<MessageSid>:<status>" so that
// Twilio's retries publish it once, with the carrier's RawDlrDoneDate as
// SentAt. A failure with 21610 (the customer unsubscribed) also records the
// opt-out and publishes contact.unreachable.
func (a *Adapter) serveStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := a.accept(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	s, err := parseStatus(a.name, form, a.cfg.DefaultRegion)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	typ, ok := eventTypes[s.status]
	if !ok {
		a.log.Debug("status: ignored", "msg_sid", s.sid, "status", s.status)
		writeTwiML(w, "")
		return
	}

	ev := core.NewMessage(core.KindEvent, core.Outbound, a.name)
	ev.Type = typ
	ev.External.Message = s.sid + ":" + s.status
	ev.SentAt = s.doneAt // the provider's own time of this status, when it gives one
	if s.to != "" {
		ev.To = core.NewIdentity(a.name, s.to)
	}
	var sent sentRecord
	switch _, err := a.sent.Get(ctx, s.sid, &sent); {
	case err == nil:
		ev.ReplyTo, ev.ConversationID, ev.ContactID = sent.ID, sent.Conversation, sent.Contact
		if ev.To == "" {
			ev.To = sent.To
		}
	case !errors.Is(err, store.ErrNotFound):
		a.log.Warn("status: sent message not looked up; event without its envelope", "msg_sid", s.sid, "err", err)
	}
	setMeta(ev, event.MetaStatus, s.status)
	setMeta(ev, "message_sid", s.sid)
	if s.errCode != 0 {
		setMeta(ev, "error_code", strconv.Itoa(s.errCode))
		msg := s.errMessage
		if msg == "" {
			msg = errorReason(s.errCode)
		}
		setMeta(ev, "error_message", msg)
		if typ == event.DeliveryFailed {
			setMeta(ev, event.MetaError, fmt.Sprintf("twilio: %s, error %d: %s", s.status, s.errCode, msg))
		}
	} else if typ == event.DeliveryFailed {
		setMeta(ev, event.MetaError, "twilio: "+s.status)
	}

	if s.errCode == codeUnsubscribed && ev.To != "" {
		if err := a.recordOptOut(ctx, ev.To, "21610"); err != nil {
			a.log.Error("status: opt-out not recorded", "err", err)
			http.Error(w, "opt-out not recorded", http.StatusServiceUnavailable)
			return
		}
		un := adapters.UnreachableEvent(a.name, ev.To, event.ReasonOptedOut, "twilio error 21610: "+errorReason(codeUnsubscribed))
		un.External.Message = "optout:" + s.sid
		if _, err := a.pub.Inbound(ctx, un); err != nil {
			a.log.Error("status: contact.unreachable not published, Twilio will see an error", "msg_sid", s.sid, "err", err)
			http.Error(w, "not stored", http.StatusServiceUnavailable)
			return
		}
	}
	if err := a.pub.Event(ctx, ev); err != nil {
		if errors.Is(err, core.ErrInvalid) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.log.Error("status: event not published, Twilio will see an error", "msg_sid", s.sid, "err", err)
		http.Error(w, "not stored", http.StatusServiceUnavailable)
		return
	}
	a.log.Debug("status: published", "msg_sid", s.sid, "status", s.status, "type", typ)
	writeTwiML(w, "")
}

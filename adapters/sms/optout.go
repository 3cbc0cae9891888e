package sms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Sentinel errors of Send. They come wrapped in adapters.Unreachable (which
// is Permanent), with event.ReasonOptedOut and event.ReasonOutsideWindow;
// test with errors.Is.
var (
	// ErrOptedOut: the recipient opted out of this channel (replied STOP or a
	// sibling, or Twilio answered 21610). They must text START to opt back in.
	ErrOptedOut = errors.New("recipient opted out")
	// ErrOutsideWindow: a whatsapp reply is due more than 24 hours after the
	// customer's last message, and no template is configured to send instead.
	ErrOutsideWindow = errors.New("outside WhatsApp's 24-hour customer service window")
)

// keyword is what an inbound message asks of the sender's subscription.
type keyword int

const (
	kwNone   keyword = iota
	kwOptOut         // STOP and its siblings: no more messages
	kwOptIn          // START and its siblings: messages again
	kwHelp           // HELP, INFO: tell who we are
)

// keywords are the words carriers and Twilio act on when they are the whole
// message, in upper case with spaces removed ("stop all" is STOPALL).
var keywords = map[string]keyword{
	"STOP": kwOptOut, "STOPALL": kwOptOut, "UNSUBSCRIBE": kwOptOut, "CANCEL": kwOptOut,
	"END": kwOptOut, "QUIT": kwOptOut, "OPTOUT": kwOptOut, "REVOKE": kwOptOut,
	"START": kwOptIn, "YES": kwOptIn, "UNSTOP": kwOptIn,
	"HELP": kwHelp, "INFO": kwHelp,
}

// matchKeyword returns the keyword body is, ignoring case, spaces and
// surrounding punctuation ("Stop.", " stop all! "), or kwNone when body says
// anything else: "please stop calling me" is a message for the agent, not an
// opt-out.
func matchKeyword(body string) (keyword, string) {
	if len(body) > 32 {
		return kwNone, ""
	}
	w := strings.Trim(strings.TrimSpace(body), ".!?,;:\"' ")
	w = strings.ToUpper(strings.Join(strings.Fields(w), ""))
	w = strings.ReplaceAll(w, "-", "")
	if k, ok := keywords[w]; ok {
		return k, w
	}
	return kwNone, ""
}

// optOutTypes are the values of Twilio's OptOutType parameter, sent when
// Advanced Opt-Out matched a keyword, including custom ones.
var optOutTypes = map[string]keyword{"STOP": kwOptOut, "START": kwOptIn, "HELP": kwHelp}

// reasonOptedIn is the reason of the contact.reachable an opt-in keyword
// (START, UNSTOP, ...) publishes. It belongs in core/event beside
// event.ReasonOptedOut; until it is there, it is spelled here.
const reasonOptedIn = "opted_in"

// reachEvent is what keyword message m (just published) says of whether
// its sender can be reached on this channel: contact.unreachable for an
// opt-out, contact.reachable for an opt-in that counts (optIn), nil for
// anything else. External.Message is derived from m's MessageSid, so a
// Twilio retry of the webhook publishes it once.
func (a *Adapter) reachEvent(m *core.Message, kw matched, optIn bool) *core.Message {
	var ev *core.Message
	switch {
	case kw.kind == kwOptOut:
		ev = adapters.UnreachableEvent(a.name, m.From, event.ReasonOptedOut, "the customer replied "+kw.word+"; they must text START to receive messages again")
		ev.External.Message = "optout:" + m.External.Message
	case kw.kind == kwOptIn && optIn:
		ev = adapters.ReachableEvent(a.name, m.From, reasonOptedIn)
		ev.External.Message = "optin:" + m.External.Message
	default:
		return nil
	}
	ev.ReceivedAt = m.ReceivedAt
	return ev
}

// optOutRecord is what bucketOptOut holds for an identity that opted out.
type optOutRecord struct {
	At      time.Time `json:"at"`
	Keyword string    `json:"keyword"`
}

// recordOptOut stores that id opted out with word.
func (a *Adapter) recordOptOut(ctx context.Context, id core.Identity, word string) error {
	rec := optOutRecord{At: a.now().UTC(), Keyword: word}
	var cur optOutRecord
	_, err := a.optOut.Update(ctx, string(id), &cur, 0, func(exists bool) error {
		if exists {
			return store.ErrSkip
		}
		cur = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: record opt-out: %w", a.name, err)
	}
	return nil
}

// recordOptIn removes id's opt-out and reports whether there was one.
func (a *Adapter) recordOptIn(ctx context.Context, id core.Identity) (bool, error) {
	var cur optOutRecord
	if _, err := a.optOut.Get(ctx, string(id), &cur); errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("%s: record opt-in: %w", a.name, err)
	}
	if err := a.optOut.Delete(ctx, string(id), 0); err != nil {
		return false, fmt.Errorf("%s: record opt-in: %w", a.name, err)
	}
	return true, nil
}

// optedOut reports whether id opted out.
func (a *Adapter) optedOut(ctx context.Context, id core.Identity) (bool, error) {
	var cur optOutRecord
	_, err := a.optOut.Get(ctx, string(id), &cur)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%s: check opt-out: %w", a.name, err)
}

// windowRecord is what bucketWindow holds: when a whatsapp identity last wrote.
type windowRecord struct {
	Last time.Time `json:"last"`
}

// touchWindow records that id wrote now, opening WhatsApp's window.
func (a *Adapter) touchWindow(ctx context.Context, id core.Identity) error {
	now := a.now().UTC()
	var w windowRecord
	_, err := a.windows.Update(ctx, string(id), &w, windowTTL, func(bool) error {
		if w.Last.After(now) {
			return store.ErrSkip
		}
		w.Last = now
		return nil
	})
	return err
}

// inWindow reports whether id wrote within the last 24 hours.
func (a *Adapter) inWindow(ctx context.Context, id core.Identity) (bool, error) {
	var w windowRecord
	_, err := a.windows.Get(ctx, string(id), &w)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: check window: %w", a.name, err)
	}
	return a.now().Sub(w.Last) < window, nil
}

package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// Limits of the Messages API.
const (
	// maxBodyChars is the longest Body Twilio accepts, in characters.
	maxBodyChars = 1600
	// maxMediaSMS and maxMediaWhatsApp are the most MediaUrl of one message.
	maxMediaSMS      = 10
	maxMediaWhatsApp = 1
)

// Twilio error codes the adapter acts on.
const (
	codeUnsubscribed  = 21610
	codeOutsideWindow = 63016
)

// unreachableCodes are Twilio errors saying the recipient cannot be reached
// on this channel at all, with the event.Reason* the pipeline records: it
// sends the reply on the contact's next reachable channel instead. 21610 is
// handled apart, as the opt-out is also recorded.
var unreachableCodes = map[int]string{
	21211: event.ReasonInvalid,       // not a valid phone number
	21214: event.ReasonInvalid,       // the number cannot be reached
	21217: event.ReasonInvalid,       // not a valid phone number
	21614: event.ReasonInvalid,       // not a mobile number: no SMS
	63003: event.ReasonInvalid,       // no WhatsApp account
	63024: event.ReasonInvalid,       // not a valid WhatsApp recipient
	63016: event.ReasonOutsideWindow, // even the template was refused
}

// retryCodes are Twilio errors that pass: rate limits and full queues.
var retryCodes = map[int]bool{
	20429: true, // too many requests
	14107: true, // SMS send rate limit exceeded
	21611: true, // the From number's queue is full
	63018: true, // WhatsApp rate limit
}

// reasons describe Twilio errors in words an agent understands. Codes of the
// Messages API (21xxx, 63xxx) are refusals no retry changes; 30xxx come in
// status callbacks.
var reasons = map[int]string{
	21211: "the recipient is not a valid phone number",
	21212: "the sender (from) is not a valid number",
	21214: "the recipient's number cannot be reached",
	21217: "the recipient is not a valid phone number",
	21219: "the recipient is not verified (Twilio trial account)",
	21408: "sending to the recipient's country is not enabled (Twilio geo permissions)",
	21606: "the sender (from) cannot send SMS, or does not belong to this account",
	21610: "the recipient opted out (replied STOP); they must text START to receive messages again",
	21612: "the sender cannot reach the recipient's number",
	21614: "the recipient's number is not a mobile number",
	21617: "the message is longer than 1600 characters",
	30003: "the recipient's phone is unreachable (off or out of coverage)",
	30004: "the message was blocked (the recipient blocked the sender, or the carrier did)",
	30005: "the recipient's number is unknown or no longer in service",
	30006: "the recipient's number is a landline or unreachable by its carrier",
	30007: "the carrier filtered the message as spam",
	30008: "unknown error of the carrier",
	63003: "the recipient has no WhatsApp account",
	63007: "the WhatsApp sender is not set up in Twilio",
	63016: "outside WhatsApp's 24-hour customer service window; only an approved template may be sent",
	63024: "the recipient is not a valid WhatsApp recipient",
}

// errorReason is reasons[code], or a generic description.
func errorReason(code int) string {
	if r, ok := reasons[code]; ok {
		return r
	}
	return "twilio error " + strconv.Itoa(code)
}

// sentRecord is what bucketSent holds for a sent message's SID, so a status
// callback's event can name the envelope, conversation and contact it is about.
type sentRecord struct {
	ID           string        `json:"id"`
	Conversation string        `json:"conversation,omitempty"`
	Contact      string        `json:"contact,omitempty"`
	To           core.Identity `json:"to,omitempty"`
}

// Send delivers m through the Messages API: to m.To's phone number (an sms or
// whatsapp identity), from the configured number or Messaging Service, with
// m.Text as Body and URL attachments as MediaUrl, asking for status callbacks
// when the config says so. On whatsapp, outside the 24-hour window, it sends
// the configured template instead, or fails with ErrOutsideWindow.
//
// Errors: what says the recipient cannot be reached on this channel is
// adapters.Unreachable with its reason (the runtime tells the pipeline, which
// tries the contact's next channel): an opt-out (ErrOptedOut, also Twilio's
// 21610: event.ReasonOptedOut), the window closed without a template
// (ErrOutsideWindow: event.ReasonOutsideWindow), a number that is not valid
// or cannot take this channel (21211, 21214, 21217, 21614, 63003, 63024:
// event.ReasonInvalid). A message that cannot be sent and Twilio's other
// refusals are Permanent; a 429 or rate-limit code is RetryAfter with
// Twilio's Retry-After (2s without one); 5xx, 401/403 and network errors are
// retried by the runtime.
func (a *Adapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	fail := func(err error) (adapters.Receipt, error) {
		return adapters.Receipt{}, fmt.Errorf("%s: send %s: %w", a.name, m.ID, err)
	}
	permanent := func(err error) (adapters.Receipt, error) {
		return fail(adapters.Permanent(err))
	}
	to, err := a.recipient(m.To)
	if err != nil {
		return fail(err)
	}
	id := core.NewIdentity(a.name, to)
	switch out, err := a.optedOut(ctx, id); {
	case err != nil:
		return fail(err)
	case out:
		return fail(adapters.Unreachable(fmt.Errorf("%w: they replied STOP and must text START to receive messages again", ErrOptedOut), event.ReasonOptedOut))
	}

	p := new(openapi.CreateMessageParams)
	p.SetTo(a.wire(to))
	if a.sender != "" {
		p.SetFrom(a.sender)
	}
	if a.cfg.MessagingServiceSID != "" {
		p.SetMessagingServiceSid(a.cfg.MessagingServiceSID)
	}
	if *a.cfg.StatusCallback {
		p.SetStatusCallback(a.webhookURL("status"))
	}
	useTemplate := false
	if a.name == channelWhatsApp {
		in, err := a.inWindow(ctx, id)
		if err != nil {
			return fail(err)
		}
		useTemplate = !in
	}
	if useTemplate {
		if err := a.setTemplate(p, m); err != nil {
			return fail(err)
		}
	} else if err := a.setContent(p, m); err != nil {
		return permanent(err)
	}

	msg, err := a.create(ctx, p)
	var ae *APIError
	if !useTemplate && a.name == channelWhatsApp && errors.As(err, &ae) && ae.Code == codeOutsideWindow {
		// Our record said the window was open, WhatsApp says it is not.
		if derr := a.windows.Delete(ctx, string(id), 0); derr != nil {
			a.log.Warn("send: stale window record not removed", "msg_id", m.ID, "err", derr)
		}
		if terr := a.setTemplate(p, m); terr != nil {
			return fail(terr)
		}
		msg, err = a.create(ctx, p)
	}
	if err != nil {
		return fail(a.classify(ctx, id, err))
	}

	sid := deref(msg.Sid)
	rc := adapters.Receipt{ProviderID: sid, Status: receiptStatus(deref(msg.Status)), At: a.now().UTC()}
	if t, err := time.Parse(time.RFC1123Z, deref(msg.DateCreated)); err == nil {
		rc.At = t.UTC()
	}
	if sid != "" {
		rec := sentRecord{ID: m.ID, Conversation: m.ConversationID, Contact: m.ContactID, To: id}
		if _, err := a.sent.Create(ctx, sid, rec, sentTTL); err != nil {
			a.log.Warn("send: SID not recorded; its status events will not name the message", "msg_id", m.ID, "msg_sid", sid, "err", err)
		}
	}
	a.log.Debug("sent", "msg_id", m.ID, "conversation", m.ConversationID, "msg_sid", sid, "template", useTemplate)
	return rc, nil
}

// create calls the Messages API within the configured timeout.
func (a *Adapter) create(ctx context.Context, p *openapi.CreateMessageParams) (*openapi.ApiV2010Message, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	return a.api(ctx).CreateMessage(p)
}

// classify wraps an error of the Messages API as the runtime must treat it.
func (a *Adapter) classify(ctx context.Context, id core.Identity, err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("twilio: %w", err) // network, timeout, undecodable answer: retry
	}
	switch {
	case ae.HTTPStatus == 429 || retryCodes[ae.Code]:
		d := ae.RetryAfter
		if d <= 0 {
			d = defaultRetryAfter
		}
		return adapters.RetryAfter(ae, d)
	case ae.HTTPStatus >= 500:
		return adapters.Unavailable(ae)
	case ae.Code == codeUnsubscribed:
		if rerr := a.recordOptOut(ctx, id, "21610"); rerr != nil {
			a.log.Warn("send: opt-out Twilio reported not recorded", "err", rerr)
		}
		return adapters.Unreachable(fmt.Errorf("%w: they replied STOP and must text START to receive messages again (twilio error %d)", ErrOptedOut, ae.Code), event.ReasonOptedOut)
	case unreachableCodes[ae.Code] != "":
		return adapters.Unreachable(&reasonError{reason: fmt.Sprintf("%s (twilio error %d)", errorReason(ae.Code), ae.Code), err: ae}, unreachableCodes[ae.Code])
	case ae.Code != 0 && reasons[ae.Code] != "":
		return adapters.Permanent(&reasonError{reason: fmt.Sprintf("%s (twilio error %d)", reasons[ae.Code], ae.Code), err: ae})
	case ae.HTTPStatus == 401 || ae.HTTPStatus == 403:
		// Credentials: fixed by an operator, then the message can go.
		return adapters.Unavailable(fmt.Errorf("twilio refused the credentials (check account_sid and auth_token): %w", ae))
	}
	return adapters.Permanent(ae) // any other 4xx: the same request fails the same way
}

// reasonError says in words what an *APIError means; Twilio's own message is
// left out, as it often repeats the recipient's number.
type reasonError struct {
	reason string
	err    *APIError
}

func (e *reasonError) Error() string { return e.reason }
func (e *reasonError) Unwrap() error { return e.err }

// recipient returns the phone number of to: an identity of either channel,
// since core links sms and whatsapp identities of one phone. Its errors are
// Permanent, Unreachable (event.ReasonInvalid) for an address that is no
// phone number.
func (a *Adapter) recipient(to core.Identity) (string, error) {
	if to == "" {
		return "", adapters.Permanent(errors.New("no recipient (To)"))
	}
	if c := to.Channel(); c != channelSMS && c != channelWhatsApp {
		return "", adapters.Permanent(fmt.Errorf("recipient of channel %s is not a phone number", quote(c)))
	}
	addr, _ := cutFold(to.Address(), whatsappPrefix)
	if e164, err := Normalize(addr, a.cfg.DefaultRegion); err == nil {
		return e164, nil
	}
	if a.name == channelSMS && shortCodePattern.MatchString(addr) {
		return addr, nil
	}
	return "", adapters.Unreachable(errors.New("the recipient is not a valid phone number"), event.ReasonInvalid)
}

// wire is an address as Twilio wants it in To: with "whatsapp:" on whatsapp.
func (a *Adapter) wire(addr string) string {
	if a.name == channelWhatsApp {
		return whatsappPrefix + addr
	}
	return addr
}

// setContent sets Body and MediaUrl from m.
func (a *Adapter) setContent(p *openapi.CreateMessageParams, m *core.Message) error {
	if n := utf8.RuneCountInString(m.Text); n > maxBodyChars {
		return fmt.Errorf("the message is %d characters long; Twilio sends at most %d", n, maxBodyChars)
	}
	limit := maxMediaSMS
	if a.name == channelWhatsApp {
		limit = maxMediaWhatsApp
	}
	var media []string
	for i, at := range m.Attachments {
		u, err := url.Parse(at.URL)
		switch {
		case at.URL == "":
			a.log.Warn("send: attachment without URL left out; Twilio fetches media by URL", "msg_id", m.ID, "attachment", i)
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return fmt.Errorf("attachment %d: not an absolute http(s) URL", i)
		case len(media) == limit:
			a.log.Warn("send: too many attachments, extra ones left out", "msg_id", m.ID, "limit", limit)
		default:
			media = append(media, at.URL)
		}
	}
	if strings.TrimSpace(m.Text) == "" && len(media) == 0 {
		return errors.New("nothing to send: no text and no attachment with a URL")
	}
	if m.Text != "" {
		p.SetBody(m.Text)
	}
	if len(media) > 0 {
		p.SetMediaUrl(media)
	}
	return nil
}

// setTemplate replaces Body and media with the approved template, or fails
// with ErrOutsideWindow, Unreachable (event.ReasonOutsideWindow), when there
// is none. Its errors are Permanent.
func (a *Adapter) setTemplate(p *openapi.CreateMessageParams, m *core.Message) error {
	if a.template.ContentSID == "" {
		return adapters.Unreachable(fmt.Errorf("%w: the customer last wrote more than 24 hours ago, and no template is configured (channels.whatsapp.template.content_sid); the customer must write first", ErrOutsideWindow), event.ReasonOutsideWindow)
	}
	p.Body, p.MediaUrl = nil, nil
	p.SetContentSid(a.template.ContentSID)
	if len(a.template.Variables) > 0 {
		vars := make(map[string]string, len(a.template.Variables))
		for k, v := range a.template.Variables {
			vars[k] = strings.ReplaceAll(v, "{{text}}", m.Text)
		}
		data, err := json.Marshal(vars)
		if err != nil {
			return adapters.Permanent(fmt.Errorf("template variables: %w", err))
		}
		p.SetContentVariables(string(data))
	}
	return nil
}

// receiptStatus maps a new message's Twilio status to a Receipt status.
func receiptStatus(s string) string {
	switch s {
	case "sending", "sent":
		return "sent"
	case "delivered", "read":
		return "delivered"
	}
	return "queued"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

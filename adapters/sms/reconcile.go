package sms

import (
	"context"
	"fmt"
	"strings"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
)

// reconcileSkew is how much earlier than the first attempt a message Twilio
// took may be dated: its clock and ours differ.
const reconcileSkew = 30 * time.Second

// reconcilePage is how many of the recipient's newest messages Sent reads.
const reconcilePage = 50

var _ adapters.Reconciler = (*Adapter)(nil)

// Sent implements adapters.Reconciler: it reads the newest messages Twilio
// holds for m's recipient (Read multiple Message resources, filtered by To
// and, without a Messaging Service, From) and reports the one sent from this
// account since since with m's text (for a template, containing it), if any.
// A reply with the same text sent twice to one customer within the same few
// seconds would be taken for one.
func (a *Adapter) Sent(ctx context.Context, m *core.Message, since time.Time) (adapters.Receipt, bool, error) {
	to, err := a.recipient(m.To)
	if err != nil {
		return adapters.Receipt{}, false, adapters.Permanent(err)
	}
	p := new(openapi.ListMessageParams)
	p.SetTo(a.wire(to))
	if a.sender != "" && a.cfg.MessagingServiceSID == "" {
		p.SetFrom(a.sender)
	}
	p.SetPageSize(reconcilePage)
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	page, err := a.api(ctx).PageMessage(p, "", "")
	if err != nil {
		return adapters.Receipt{}, false, fmt.Errorf("%s: look up %s: %w", a.name, m.ID, a.classify(ctx, core.NewIdentity(a.name, to), err))
	}
	for _, msg := range page.Messages {
		if !a.sameMessage(&msg, m, since) {
			continue
		}
		rc := adapters.Receipt{ProviderID: deref(msg.Sid), Status: receiptStatus(deref(msg.Status)), At: since}
		if t, err := time.Parse(time.RFC1123Z, deref(msg.DateCreated)); err == nil {
			rc.At = t.UTC()
		}
		if rc.ProviderID != "" {
			rec := sentRecord{ID: m.ID, Conversation: m.ConversationID, Contact: m.ContactID, To: core.NewIdentity(a.name, to)}
			if _, err := a.sent.Create(ctx, rc.ProviderID, rec, sentTTL); err != nil {
				a.log.Debug("reconcile: SID record", "msg_id", m.ID, "msg_sid", rc.ProviderID, "err", err)
			}
		}
		return rc, true, nil
	}
	return adapters.Receipt{}, false, nil
}

// sameMessage reports whether msg, as Twilio lists it, is m sent from this
// account no earlier than since (less the skew).
func (a *Adapter) sameMessage(msg *openapi.ApiV2010Message, m *core.Message, since time.Time) bool {
	if deref(msg.Direction) != "outbound-api" || deref(msg.AccountSid) != a.cfg.AccountSID {
		return false
	}
	created, err := time.Parse(time.RFC1123Z, deref(msg.DateCreated))
	if err != nil || created.Before(since.Add(-reconcileSkew)) {
		return false
	}
	if sid := a.cfg.MessagingServiceSID; sid != "" && deref(msg.MessagingServiceSid) != sid {
		return false
	}
	body := deref(msg.Body)
	switch {
	case m.Text == "":
		return body == "" && deref(msg.NumMedia) != "0"
	case body == m.Text:
		return true
	}
	// A template's body is its own text with the reply in it.
	return a.template.ContentSID != "" && strings.Contains(body, m.Text)
}

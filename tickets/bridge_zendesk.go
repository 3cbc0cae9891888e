package tickets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/tickets/zendesk"
)

// ZendeskBridge is the name of the Zendesk bridge.
const ZendeskBridge = "zendesk"

// zendeskBridge keeps Zendesk Support tickets in step.
type zendeskBridge struct {
	s   *Service
	c   *zendesk.Client
	cfg zendesk.Config
}

// Name is ZendeskBridge.
func (b *zendeskBridge) Name() string { return ZendeskBridge }

// externalID is the external_id of ticket n in Zendesk.
func (b *zendeskBridge) externalID(n int64) string {
	return b.cfg.ExternalIDPrefix + strconv.FormatInt(n, 10)
}

// Created finds the ticket in Zendesk by its external_id first, so that a
// repeated call (a crash after Zendesk created it) does not create a second one.
func (b *zendeskBridge) Created(ctx context.Context, t *Ticket) (string, error) {
	ext := b.externalID(t.Number)
	found, err := b.c.FindByExternalID(ctx, ext)
	if err != nil {
		return "", err
	}
	if len(found) > 0 {
		return strconv.FormatInt(found[0].ID, 10), nil
	}
	body := t.Description
	if strings.TrimSpace(body) == "" {
		body = t.Subject
	}
	zt := zendesk.Ticket{
		ExternalID:    ext,
		Subject:       t.Subject,
		Comment:       &zendesk.Comment{Body: body, Public: false},
		Status:        zendesk.ToZendesk(string(t.Status)),
		Priority:      string(t.Priority),
		CustomFields:  b.customFields(t, nil),
		AssigneeEmail: assigneeEmail(t.Assignee),
	}
	if len(t.Tags) > 0 {
		tags := slices.Clone(t.Tags)
		zt.Tags = &tags
	}
	if r := t.Requester; r.Email != "" || r.Name != "" {
		zt.Requester = &zendesk.Requester{Name: cmp.Or(r.Name, r.Email), Email: r.Email}
	}
	created, err := b.c.Create(ctx, zt)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(created.ID, 10), nil
}

// Updated sends the current value of the fields ev changed, and nothing else,
// so that it does not undo what was changed in Zendesk meanwhile. A rating
// becomes an internal note.
func (b *zendeskBridge) Updated(ctx context.Context, t *Ticket, ev Event) error {
	id, err := b.id(t)
	if err != nil {
		return err
	}
	var zt zendesk.Ticket
	changed := false
	var fields []string
	for _, c := range ev.Changes {
		switch f := c.Field; {
		case f == "status":
			// Zendesk does not take "new" on an update.
			if st := zendesk.ToZendesk(string(t.Status)); st != "" && st != zendesk.StatusNew {
				zt.Status, changed = st, true
			}
		case f == "priority":
			zt.Priority, changed = string(t.Priority), true
		case f == "subject":
			zt.Subject, changed = t.Subject, true
		case f == "tags":
			tags := slices.Clone(t.Tags)
			if tags == nil {
				tags = []string{}
			}
			zt.Tags, changed = &tags, true
		case f == "assignee":
			if e := assigneeEmail(t.Assignee); e != "" {
				zt.AssigneeEmail, changed = e, true
			}
		case f == "satisfaction":
			if sat := t.Satisfaction; sat != nil {
				zt.Comment = &zendesk.Comment{Body: fmt.Sprintf("Customer satisfaction: %d/5 (%q via %s)", sat.Score, sat.Text, sat.Channel)}
				changed = true
			}
		case strings.HasPrefix(f, "fields."):
			fields = append(fields, strings.TrimPrefix(f, "fields."))
		}
	}
	if cf := b.customFields(t, fields); len(fields) > 0 && len(cf) > 0 {
		zt.CustomFields, changed = cf, true
	}
	if !changed {
		return nil
	}
	_, err = b.c.Update(ctx, id, zt)
	return err
}

// Commented adds the comment: public only when it is public here and
// zendesk.public_comments is on.
func (b *zendeskBridge) Commented(ctx context.Context, t *Ticket, ev Event) error {
	id, err := b.id(t)
	if err != nil {
		return err
	}
	body := ev.Comment.Body
	if ev.Actor != "" {
		body += "\n\n— " + ev.Actor
	}
	_, err = b.c.Update(ctx, id, zendesk.Ticket{Comment: &zendesk.Comment{Body: body, Public: ev.Comment.Public && b.cfg.PublicComments}})
	return err
}

// id is the Zendesk id of t.
func (b *zendeskBridge) id(t *Ticket) (int64, error) {
	id, err := strconv.ParseInt(t.External[ZendeskBridge], 10, 64)
	if err != nil || id <= 0 {
		return 0, bus.Permanent(fmt.Errorf("ticket #%d has no Zendesk id (%q)", t.Number, t.External[ZendeskBridge]))
	}
	return id, nil
}

// customFields maps t's fields (only those named, when names is not nil) to
// the configured Zendesk field ids; a removed field is sent as null.
func (b *zendeskBridge) customFields(t *Ticket, names []string) []zendesk.CustomField {
	var out []zendesk.CustomField
	for name, id := range b.cfg.CustomFields {
		if names != nil && !slices.Contains(names, name) {
			continue
		}
		v, ok := t.Fields[name]
		switch {
		case ok:
			out = append(out, zendesk.CustomField{ID: id, Value: v})
		case names != nil:
			out = append(out, zendesk.CustomField{ID: id, Value: nil})
		}
	}
	slices.SortFunc(out, func(a, b zendesk.CustomField) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// assigneeEmail is the assignee as an email address Zendesk can assign to, or "".
func assigneeEmail(a string) string {
	a = strings.TrimPrefix(a, "email:")
	if strings.Count(a, "@") == 1 && !strings.ContainsAny(a, " :") {
		return a
	}
	return ""
}

// handleZendeskInbound applies a status change a Zendesk trigger reports to
// /api/tickets/hooks/zendesk: 401 for a bad signature or timestamp, 400 for a
// malformed body or unknown status, 404 for a ticket omnigate does not know, 409
// for a transition the lifecycle refuses, 200 otherwise.
func (s *Service) handleZendeskInbound(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Zendesk
	body, err := edge.ReadBody(w, r, maxHookBody)
	if err != nil {
		writeError(w, edge.Status(err), "body: "+err.Error())
		return
	}
	if err := zendesk.Verify(cfg.WebhookSecret.Value(), r.Header, body, s.now(), cfg.WebhookTolerance); err != nil {
		edge.Reject(r, s.log, edgeChannel, edge.Signature, "zendesk webhook refused", "err", err, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	ev, err := zendesk.ParseWebhook(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, ok := zendesk.FromZendesk(ev.Status)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("zendesk status %q is not new, open, pending, hold, solved or closed", ev.Status))
		return
	}
	var n int64
	if num, ok := strings.CutPrefix(ev.ExternalID, cfg.ExternalIDPrefix); ok {
		n, _ = strconv.ParseInt(num, 10, 64)
	}
	if n == 0 && ev.TicketID != 0 {
		if n, err = s.repo.byExternal(r.Context(), ZendeskBridge, strconv.FormatInt(ev.TicketID, 10)); err != nil {
			writeErr(w, err)
			return
		}
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, "no omnigate ticket for this Zendesk ticket")
		return
	}
	status := Status(st)
	t, err := s.Update(r.Context(), n, Patch{Status: &status, Actor: ZendeskBridge, Source: ZendeskBridge})
	if err != nil {
		if !errors.Is(err, ErrInvalidTransition) && !errors.Is(err, ErrNotFound) {
			s.log.Error("zendesk status not applied", "ticket", n, "err", err)
		}
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t.summary())
}

var _ Bridge = (*zendeskBridge)(nil)

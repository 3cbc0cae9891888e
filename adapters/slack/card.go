package slack

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// Action ids of the card's buttons and menu, and the block holding them.
const (
	actionsBlock   = "omni_actions"
	actionClaim    = "omni_claim"
	actionClose    = "omni_close"
	actionReopen   = "omni_reopen"
	actionTicket   = "omni_ticket"
	actionTransfer = "omni_transfer"
)

// defaultQueue is the Transfer choice of conversations without a queue.
const defaultQueue = "default"

// cardView is what a card shows.
type cardView struct {
	conv    *store.Conversation
	contact *store.Contact // nil when unknown
	// previous is the permalink of the contact's previous conversation.
	previous string
	// replyVia is the channel set with /omni reply-via.
	replyVia string
	// name is the customer's name as a channel gave it, for a contact without
	// one.
	name string
	// movedTo is the permalink of the thread the conversation moved to; the
	// card then offers no actions.
	movedTo string
	// ticketStatus is each ticket's last reported status.
	ticketStatus map[string]string
	// intent is the customer's intent in words (intentLine), "" for none.
	intent string
}

// card renders the root message of a conversation's thread: the customer,
// every identity, the first channel, tickets, links, state and assignee, and
// the actions. text is the notification fallback.
func (a *Adapter) card(v cardView) (blocks []slack.Block, text string) {
	c := v.conv
	name := customerName(v.contact, v.name, c.LastIdentity)
	text = "Conversation with " + escapeMrkdwn(name) + " via " + channelLabel(c.Channel)
	header := core.Ellipsize(name, 150)
	if v.movedTo != "" {
		header = core.Ellipsize(name+" (moved)", 150)
	}
	blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, header, true, false)))

	status := ":large_green_circle: Open"
	if c.State == store.StateClosed {
		status = ":white_circle: Closed"
	}
	assignee := "_unassigned_"
	if c.Assignee != "" {
		assignee = mention(c.Assignee)
	}
	queue := a.queueOf(c.Queue)
	fields := []*slack.TextBlockObject{
		mrkdwn("*Status*\n" + status),
		mrkdwn("*Assignee*\n" + assignee),
		mrkdwn("*Queue*\n" + escapeMrkdwn(queue)),
		mrkdwn("*First message via*\n" + channelLabel(c.Channel)),
	}
	if v.replyVia != "" {
		fields = append(fields, mrkdwn("*Replies via*\n"+channelLabel(v.replyVia)+" (set by an agent)"))
	}
	if ids := identityLines(v.contact, c.LastIdentity); ids != "" {
		fields = append(fields, mrkdwn("*Identities*\n"+ids))
	}
	if len(c.Tags) > 0 {
		fields = append(fields, mrkdwn("*Tags*\n"+tagList(c.Tags)))
	}
	if v.intent != "" {
		fields = append(fields, mrkdwn("*Intent*\n"+v.intent))
	}
	if len(v.ticketStatus) > 0 {
		fields = append(fields, mrkdwn("*Tickets*\n"+a.ticketLinks(slices.Sorted(maps.Keys(v.ticketStatus)), v.ticketStatus)))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))

	ctx := []string{"`" + c.ID + "`"}
	if a.transcriptURL != nil {
		if u := a.transcriptURL(c.ID); u != "" {
			// A signed link, renewed each time the card is drawn.
			ctx = append(ctx, "<"+escapeMrkdwn(u)+"|Transcript>")
		}
	}
	if v.previous != "" {
		ctx = append(ctx, "<"+v.previous+"|Previous conversation>")
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(ctx, " · "))))

	if v.movedTo != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":arrow_right: Moved to queue *"+escapeMrkdwn(queue)+"*: <"+v.movedTo+"|continue in the new thread>."), nil, nil))
		return blocks, text
	}
	var elems []slack.BlockElement
	if c.State == store.StateOpen {
		elems = append(elems,
			slack.NewButtonBlockElement(actionClaim, c.ID, plain("Claim")).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(actionClose, c.ID, plain("Close")).WithStyle(slack.StyleDanger).
				WithConfirm(slack.NewConfirmationBlockObject(plain("Close this conversation?"),
					plain("The customer's next message opens it again."), plain("Close"), plain("Cancel"))),
		)
	} else {
		elems = append(elems, slack.NewButtonBlockElement(actionReopen, c.ID, plain("Reopen")))
	}
	elems = append(elems, slack.NewButtonBlockElement(actionTicket, c.ID, plain("Create ticket")))
	if names := a.queueNames(); len(names) > 1 && c.State == store.StateOpen {
		var opts []*slack.OptionBlockObject
		var current *slack.OptionBlockObject
		for _, q := range names {
			o := slack.NewOptionBlockObject(q, plain(core.Ellipsize(q, 75)), nil)
			if q == queue {
				current = o
			}
			opts = append(opts, o)
		}
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Transfer to..."), actionTransfer, opts...)
		if current != nil {
			sel = sel.WithInitialOption(current)
		}
		elems = append(elems, sel)
	}
	blocks = append(blocks, slack.NewActionBlock(actionsBlock, elems...))
	return blocks, text
}

// queueNames are the Transfer choices: routing's queues shown on this desk,
// at most maxQueues.
func (a *Adapter) queueNames() []string {
	var names []string
	for _, q := range a.queues {
		names = append(names, q.Name)
	}
	slices.Sort(names)
	return names[:min(len(names), maxQueues)]
}

// channelOf is the channel a conversation of queue gets its thread in: the
// queue's, else default_channel. A conversation routing has not routed yet
// goes to the default queue's.
func (a *Adapter) channelOf(queue string) string {
	for _, q := range a.queues {
		if (q.Name == queue || queue == "" && q.Default) && q.Channel != "" {
			return q.Channel
		}
	}
	return a.cfg.DefaultChannel
}

// queueOf is the name a card shows for queue: the default queue's for a
// conversation not routed yet.
func (a *Adapter) queueOf(queue string) string {
	if queue != "" {
		return queue
	}
	for _, q := range a.queues {
		if q.Default {
			return q.Name
		}
	}
	return defaultQueue
}

// ticketLinks lists ticket ids, linked when ticket_url is set.
func (a *Adapter) ticketLinks(ids []string, status map[string]string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		link := escapeMrkdwn(id)
		if a.cfg.TicketURL != "" {
			link = "<" + strings.ReplaceAll(a.cfg.TicketURL, "{id}", id) + "|" + escapeMrkdwn(id) + ">"
		}
		if st := status[id]; st != "" {
			link += " (" + escapeMrkdwn(st) + ")"
		}
		out = append(out, link)
	}
	return core.Ellipsize(strings.Join(out, ", "), 1900)
}

// identityLines lists the contact's identities with their channels, one per
// line; last stands in when the contact is unknown.
func identityLines(c *store.Contact, last core.Identity) string {
	ids := []core.Identity{last}
	if c != nil && len(c.Identities) > 0 {
		ids = c.Identities
	}
	var lines []string
	n := 0
	for _, id := range ids {
		if id == "" {
			continue
		}
		line := "• " + channelLabel(id.Channel()) + ": " + escapeMrkdwn(id.Address())
		if n+utf8.RuneCountInString(line) > 1900 {
			lines = append(lines, "• …")
			break
		}
		n += utf8.RuneCountInString(line) + 1
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// customerName is what agents call the customer: the contact's name, else
// the name a channel gave (hint), else an address of theirs.
func customerName(c *store.Contact, hint string, last core.Identity) string {
	if c != nil {
		if s := strings.TrimSpace(c.Name); s != "" {
			return s
		}
	}
	if s := strings.TrimSpace(hint); s != "" {
		return s
	}
	if c != nil {
		for _, s := range []string{c.Email, c.Phone} {
			if s = strings.TrimSpace(s); s != "" {
				return s
			}
		}
		if len(c.Identities) > 0 {
			return c.Identities[0].Address()
		}
	}
	if last != "" {
		return last.Address()
	}
	return "Customer"
}

// senderName is the name a channel gave for the sender of m, if any.
func senderName(m *core.Message) string {
	for _, k := range []string{event.MetaName, event.MetaProfileName, event.MetaSharedName} {
		if v := strings.TrimSpace(m.Meta[k]); v != "" {
			return core.Ellipsize(v, 100)
		}
	}
	return ""
}

// channelLabel is how channel ch is shown to agents: its adapter's title.
func channelLabel(ch string) string {
	switch ch {
	case "":
		return "unknown"
	case pipeline.UserChannel:
		return "Account"
	}
	if info, ok := adapters.Lookup(ch); ok {
		return info.Title
	}
	return strings.ToUpper(ch[:1]) + ch[1:]
}

// channelIcon is the emoji customer messages on ch are posted with: its
// adapter's icon.
func channelIcon(ch string) string {
	if info, ok := adapters.Lookup(ch); ok && info.Kind == adapters.Channel {
		return info.Icon
	}
	return ":bust_in_silhouette:"
}

// mention shows an assignee: a Slack user as a mention, anything else as is.
func mention(assignee string) string {
	if id, ok := strings.CutPrefix(assignee, Name+":"); ok && id != "" {
		return "<@" + id + ">"
	}
	return escapeMrkdwn(assignee)
}

// escapeMrkdwn escapes the three characters Slack reserves in text, so what a
// customer wrote shows as written and cannot mention or link.
func escapeMrkdwn(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

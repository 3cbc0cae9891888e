package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// commandHelp is the answer to /omni help.
const commandHelp = "*/omni* works on a conversation: name it by its id or a link to its thread (\"Copy link\" on the card), " +
	"or leave it out for the one you last replied to or clicked in this channel. Slack does not allow slash commands inside threads.\n" +
	"• `/omni close [conversation]`: close it\n" +
	"• `/omni claim [conversation]`: assign it to yourself\n" +
	"• `/omni ticket [conversation]`: ask for a ticket\n" +
	"• `/omni link <channel:address> [conversation]`: the customer also is this identity, e.g. `sms:+15551234567` or `email:ann@example.com`\n" +
	"• `/omni reply-via <channel|auto> [conversation]`: send replies on this channel (auto: the one the customer used last)\n" +
	"• `/omni whois [conversation]`: who the customer is\n" +
	"• `/omni answer <name> [conversation]`: the canned answer of that name, filled in, to send or edit\n" +
	"• `/omni tag <tag>[,<tag>...] [conversation]`, `/omni untag <tag>...`: tag the conversation (routing rules and reports see tags)\n" +
	"• `/omni intent <name> [conversation]`: correct the intent on the card (kept as a training row for the intent model)\n" +
	"• `/omni away`, `/omni back`: not available yet (they come with routing)\n" +
	"Replies in a thread that start with `%s` are notes for agents and are not sent."

// handleCommand answers /omni. The answer is shown to the agent only.
func (a *Adapter) handleCommand(ctx context.Context, cmd slack.SlashCommand) (result, error) {
	args := strings.Fields(cmd.Text)
	if len(args) == 0 || args[0] == "help" {
		return result{say: fmt.Sprintf(commandHelp, a.cfg.NotePrefix)}, nil
	}
	sub, args := strings.ToLower(args[0]), args[1:]
	need := 0
	switch sub {
	case "close", "claim", "ticket", "whois":
	case "link", "reply-via", "answer", "tag", "untag", "intent":
		need = 1
	case "away", "back":
		return a.availability(ctx, cmd, sub == "back")
	default:
		return result{say: fmt.Sprintf("I do not know `/omni %s`. Try `/omni help`.", escapeMrkdwn(sub))}, nil
	}
	if len(args) < need {
		return result{say: fmt.Sprintf("`/omni %s` needs an argument. Try `/omni help`.", sub)}, nil
	}
	if len(args) > need+1 {
		return result{say: fmt.Sprintf("Too many arguments for `/omni %s`. Try `/omni help`.", sub)}, nil
	}
	var ref string
	if len(args) > need {
		ref = args[need]
	}
	convID, say, err := a.commandConversation(ctx, cmd, ref)
	if err != nil || say != "" {
		return result{say: say}, err
	}
	a.rememberAgent(ctx, cmd.UserID, cmd.ChannelID, convID)
	act := action{user: cmd.UserID, channel: cmd.ChannelID, conv: convID, dedup: cmp.Or(cmd.TriggerID, core.NewID()) + ":" + sub}
	switch sub {
	case "close":
		return a.closeConversation(ctx, act)
	case "claim":
		return a.claim(ctx, act)
	case "ticket":
		return a.ticket(ctx, act)
	case "whois":
		return a.whois(ctx, act)
	case "link":
		return a.link(ctx, act, args[0])
	case "answer":
		return a.answer(ctx, act, args[0])
	case "tag", "untag":
		return a.tag(ctx, act, args[0], sub == "untag")
	case "intent":
		return a.correctIntent(ctx, act, args[0])
	default:
		return a.replyVia(ctx, act, args[0])
	}
}

// commandConversation finds the conversation a command is about: ref (an id
// or a link to its thread) or, without one, the one the agent last worked on
// in the channel. say explains when there is none.
func (a *Adapter) commandConversation(ctx context.Context, cmd slack.SlashCommand, ref string) (id, say string, err error) {
	if ref == "" {
		var cur string
		if _, err := a.convs.Get(ctx, "agent:"+cmd.UserID+":"+cmd.ChannelID, &cur); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", "Which conversation? Reply in its thread or click its card first, or give its id or a link to its thread.", nil
			}
			return "", "", err
		}
		return cur, "", nil
	}
	ref = strings.Trim(ref, "<>")
	if i := strings.IndexByte(ref, '|'); i >= 0 {
		ref = ref[:i]
	}
	if core.ValidID(ref) {
		if _, err := a.st.Conversation(ctx, ref); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", "There is no conversation " + ref + ".", nil
			}
			return "", "", err
		}
		return ref, "", nil
	}
	channel, ts, ok := parsePermalink(ref)
	if !ok {
		return "", "`" + escapeMrkdwn(ref) + "` is neither a conversation id nor a link to a thread.", nil
	}
	id, ok, err = a.conversationOf(ctx, channel, ts)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "That thread is not a conversation's.", nil
	}
	return id, "", nil
}

// parsePermalink reads a Slack message link,
// https://<workspace>.slack.com/archives/<channel>/p<ts without dot>[?thread_ts=<ts>],
// as the channel and ts of its thread.
func parsePermalink(s string) (channel, ts string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), "slack.com") {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "archives" || !channelIDRE.MatchString(parts[1]) {
		return "", "", false
	}
	p := parts[2]
	if len(p) < 8 || p[0] != 'p' || strings.Trim(p[1:], "0123456789") != "" {
		return "", "", false
	}
	ts = p[1:len(p)-6] + "." + p[len(p)-6:]
	if t := u.Query().Get("thread_ts"); t != "" {
		ts = t
	}
	return parts[1], ts, true
}

// whois tells the agent who the customer is.
func (a *Adapter) whois(ctx context.Context, act action) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: whois: %w", err)
	}
	contact, err := a.contactOf(ctx, conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: whois: %w", err)
	}
	var b strings.Builder
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return result{}, err
	}
	b.WriteString("*" + escapeMrkdwn(customerName(contact, settings.Name, conv.LastIdentity)) + "*")
	if contact != nil {
		b.WriteString(" (contact `" + contact.ID + "`)")
	}
	b.WriteString("\n" + identityLines(contact, conv.LastIdentity))
	if contact != nil {
		for _, f := range []struct{ label, v string }{{"Email", contact.Email}, {"Phone", contact.Phone}} {
			if f.v != "" {
				b.WriteString("\n" + f.label + ": " + escapeMrkdwn(f.v))
			}
		}
		if len(contact.Tags) > 0 {
			b.WriteString("\nTags: " + escapeMrkdwn(strings.Join(contact.Tags, ", ")))
		}
	}
	via := cmp.Or(conv.LastChannel, conv.Channel)
	if settings.ReplyVia != "" {
		via = settings.ReplyVia + " (set with /omni reply-via)"
	}
	fmt.Fprintf(&b, "\nConversation `%s`, %s, replies go via %s.", conv.ID, conv.State, escapeMrkdwn(via))
	return result{say: b.String()}, nil
}

// link tells the pipeline the customer is also identity arg (contact.link).
func (a *Adapter) link(ctx context.Context, act action, arg string) (result, error) {
	id, err := core.ParseIdentity(strings.Trim(arg, "<>"))
	if err != nil || id.Channel() == Name {
		return result{say: "`" + escapeMrkdwn(arg) + "` is not an identity: write it as channel:address, e.g. `sms:+15551234567` or `email:ann@example.com`."}, nil
	}
	if err := a.deskEvent(ctx, event.ContactLink, act, map[string]string{event.MetaIdentity: string(id)}); err != nil {
		return result{}, err
	}
	note := ":link: <@" + act.user + "> linked " + escapeMrkdwn(string(id)) + " to this customer."
	return result{say: "Linking " + escapeMrkdwn(string(id)) + " to this customer.", after: a.cardAndNote(act.conv, note)}, nil
}

// replyVia sets the channel replies of the conversation go by; "auto" goes
// back to the one the customer used last.
func (a *Adapter) replyVia(ctx context.Context, act action, channel string) (result, error) {
	channel = strings.ToLower(channel)
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: reply-via: %w", err)
	}
	if channel == "auto" || channel == "last" {
		channel = ""
	} else {
		contact, err := a.contactOf(ctx, conv)
		if err != nil {
			return result{}, err
		}
		var have []string
		if contact != nil {
			for _, id := range contact.Identities {
				if ch := id.Channel(); ch != pipeline.UserChannel && !slices.Contains(have, ch) {
					have = append(have, ch)
				}
			}
		}
		if !slices.Contains(have, channel) {
			return result{say: fmt.Sprintf("The customer has no %s identity; they can be reached via %s (or link one with `/omni link`).",
				escapeMrkdwn(channel), strings.Join(have, ", "))}, nil
		}
	}
	var r convRecord
	if _, err := a.convs.Update(ctx, conv.ID, &r, 0, func(bool) error {
		if r.ReplyVia == channel {
			return store.ErrSkip
		}
		r.ReplyVia = channel
		return nil
	}); err != nil {
		return result{}, fmt.Errorf("slack: reply-via: %w", err)
	}
	if channel == "" {
		return result{say: "Replies go via the channel the customer used last.",
			after: a.cardAndNote(conv.ID, ":incoming_envelope: <@"+act.user+"> set replies to go via the customer's last channel.")}, nil
	}
	return result{say: "Replies go via " + channelLabel(channel) + " now.",
		after: a.cardAndNote(conv.ID, ":incoming_envelope: <@"+act.user+"> set replies to go via "+channelLabel(channel)+".")}, nil
}

// availability publishes that the agent who typed /omni away|back is away or
// back, for routing's assignment.
func (a *Adapter) availability(ctx context.Context, cmd slack.SlashCommand, back bool) (result, error) {
	typ, say := event.AgentAway, "You are away: routing assigns you no new conversations until `/omni back`."
	if back {
		typ, say = event.AgentBack, "Welcome back: routing assigns you conversations again."
	}
	agent := string(core.NewIdentity(Name, cmd.UserID))
	ev := core.NewMessage(core.KindEvent, core.Inbound, Name)
	ev.Type = typ
	ev.From = core.Identity(agent)
	if cmd.TriggerID != "" {
		// Slack's retry of the same command is stored once.
		ev.External.Message = typ + ":" + cmd.TriggerID
	}
	ev.Meta = map[string]string{event.MetaAgent: agent}
	if err := a.pub.Event(ctx, ev); err != nil {
		return result{}, fmt.Errorf("slack: %s: %w", typ, err)
	}
	return result{say: say}, nil
}

// tag asks the pipeline to add tags (a comma-separated list) to the
// conversation, or remove them (conversation.tag); the card shows them when
// the pipeline says it did (conversation.tagged).
func (a *Adapter) tag(ctx context.Context, act action, list string, remove bool) (result, error) {
	tags := pipeline.ParseTags(list)
	if len(tags) == 0 {
		return result{say: "Which tag? Write it like `/omni tag refund` or `/omni tag refund,vip`."}, nil
	}
	key, say := event.MetaTags, "Tagging the conversation "
	if remove {
		key, say = event.MetaUntags, "Removing the tags "
	}
	if err := a.deskEvent(ctx, event.ConversationTag, act, map[string]string{key: strings.Join(tags, ",")}); err != nil {
		return result{}, err
	}
	return result{say: say + tagList(tags) + "."}, nil
}

// tagList shows tags as code spans.
func tagList(tags []string) string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = "`" + escapeMrkdwn(strings.ReplaceAll(t, "`", "'")) + "`"
	}
	return core.Ellipsize(strings.Join(out, " "), 1900)
}

// taggedNote says in the thread how an agent changed the tags.
func taggedNote(ev *core.Message) string {
	who := "The tags changed"
	if u, ok := slackUser(ev.From); ok {
		who = "<@" + u + "> changed the tags"
	}
	var parts []string
	if added := pipeline.ParseTags(ev.Meta[event.MetaAdded]); len(added) > 0 {
		parts = append(parts, "added "+tagList(added))
	}
	if removed := pipeline.ParseTags(ev.Meta[event.MetaRemoved]); len(removed) > 0 {
		parts = append(parts, "removed "+tagList(removed))
	}
	if len(parts) == 0 {
		return ":label: The tags were as asked already."
	}
	return ":label: " + who + ": " + strings.Join(parts, ", ") + "."
}

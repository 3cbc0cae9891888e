package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Limits on a conversation's tags.
const (
	// MaxTags is the most tags a conversation keeps.
	MaxTags = 50
	// MaxTagBytes is the longest tag.
	MaxTagBytes = 64
)

// ParseTags reads a comma-separated list of tags as a conversation keeps
// them: trimmed, lower-case, without '#' or commas, each at most MaxTagBytes
// and kept once, sorted.
func ParseTags(list string) []string {
	var out []string
	for _, t := range strings.Split(list, ",") {
		t = strings.ToLower(strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(t), "#")))
		if t = core.Truncate(t, MaxTagBytes); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// tagConversation executes conversation.tag: the tags of meta tags are
// added to the conversation and those of meta untags removed, with
// compare-and-set; the desks hear of it by conversation.tagged, also when
// nothing changed (so the agent sees the tags as they are).
func (p *Pipeline) tagConversation(ctx context.Context, m *core.Message, pr *progress) error {
	add, remove := ParseTags(m.Meta[event.MetaTags]), ParseTags(m.Meta[event.MetaUntags])
	if len(add)+len(remove) == 0 {
		return bus.Permanent(fmt.Errorf("%s without meta %s or %s", event.ConversationTag, event.MetaTags, event.MetaUntags))
	}
	conv, err := p.conversationOf(ctx, m.ConversationID, true)
	if err != nil {
		return err
	}
	if n := len(union(conv.Tags, add)); n > MaxTags {
		return p.reject(ctx, m, pr, conv, fmt.Sprintf("a conversation keeps at most %d tags; remove some first", MaxTags))
	}
	var added, removed []string
	conv, err = p.st.UpdateConversation(ctx, conv.ID, func(c *store.Conversation) error {
		added, removed = nil, nil
		for _, t := range add {
			if !slices.Contains(c.Tags, t) && !slices.Contains(remove, t) {
				added = append(added, t)
			}
		}
		for _, t := range remove {
			if slices.Contains(c.Tags, t) {
				removed = append(removed, t)
			}
		}
		if len(added)+len(removed) == 0 {
			return store.ErrSkip
		}
		c.Tags = slices.DeleteFunc(union(c.Tags, added), func(t string) bool { return slices.Contains(removed, t) })
		return nil
	})
	if err != nil {
		return fmt.Errorf("tag conversation: %w", err)
	}
	ev := p.commandEvent(m, event.ConversationTagged, conv)
	ev.Meta[event.MetaTags] = strings.Join(conv.Tags, ",")
	ev.Meta[event.MetaAdded] = strings.Join(added, ",")
	ev.Meta[event.MetaRemoved] = strings.Join(removed, ",")
	if err := p.publishEvent(ctx, ev, m); err != nil {
		return err
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("conversation tagged", "msg_id", m.ID, "desk", m.Channel, "conversation", conv.ID, "added", len(added), "removed", len(removed))
	return nil
}

// union is a and b, each once, sorted.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

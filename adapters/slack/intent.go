package slack

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// keepIntent records the intent routing told from the customer's first
// message (conversation.routed, meta intent), for the card and for an
// agent's correction. An agent's correction is not overwritten by a later
// routing of the same opening.
func (a *Adapter) keepIntent(ctx context.Context, m *core.Message) error {
	in := m.Meta[event.MetaIntent]
	if m.ConversationID == "" || in == "" {
		return nil
	}
	var r convRecord
	if _, err := a.convs.Update(ctx, m.ConversationID, &r, 0, func(bool) error {
		fresh := m.Text != "" && m.Text != r.IntentText // a new opening's first message
		if r.IntentBy != "" && !fresh {
			return store.ErrSkip
		}
		if r.Intent == in && r.IntentConfidence == m.Meta[event.MetaIntentConfidence] && !fresh {
			return store.ErrSkip
		}
		r.Intent, r.IntentConfidence, r.IntentBy = in, m.Meta[event.MetaIntentConfidence], ""
		if m.Text != "" {
			r.IntentText = m.Text
		}
		return nil
	}); err != nil {
		return fmt.Errorf("slack: intent of %s: %w", m.ConversationID, err)
	}
	return nil
}

// intentLine is the card's Intent field: the intent with the model's
// confidence, or who corrected it.
func intentLine(r convRecord) string {
	if r.Intent == "" {
		return ""
	}
	s := "`" + escapeMrkdwn(r.Intent) + "`"
	switch {
	case r.IntentBy != "":
		if u, ok := slackUser(core.Identity(r.IntentBy)); ok {
			s += " (set by <@" + u + ">)"
		}
	case r.IntentConfidence != "":
		if c, err := strconv.ParseFloat(r.IntentConfidence, 64); err == nil {
			s += fmt.Sprintf(" (%.0f%% sure)", c*100)
		}
	}
	return s
}

// intentName is what /omni intent accepts: an intent as the train command
// takes it from a CSV, without spaces.
var intentName = regexp.MustCompile(`^[\p{L}\p{N}_.:/-]{1,64}$`)

// correctIntent sets the conversation's intent to name on an agent's word:
// the card shows it, and the customer's message goes to insight as a training
// row of that intent (intent.correct).
func (a *Adapter) correctIntent(ctx context.Context, act action, name string) (result, error) {
	if !intentName.MatchString(name) {
		return result{say: "`" + escapeMrkdwn(name) + "` is not an intent name: letters, digits and _ . : / - only, e.g. `card_arrival`."}, nil
	}
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: intent: %w", err)
	}
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return result{}, err
	}
	if settings.IntentText == "" {
		return result{say: "This conversation has no message the intent model read yet, so there is nothing to correct."}, nil
	}
	if settings.Intent == name {
		return result{say: "The intent is `" + escapeMrkdwn(name) + "` already."}, nil
	}
	meta := map[string]string{event.MetaIntent: name, event.MetaPreviousIntent: settings.Intent, event.MetaIntentConfidence: settings.IntentConfidence}
	if err := a.publishTextEvent(ctx, event.IntentCorrect, conv, act, settings.IntentText, meta); err != nil {
		return result{}, err
	}
	var r convRecord
	if _, err := a.convs.Update(ctx, conv.ID, &r, 0, func(bool) error {
		r.Intent, r.IntentBy = name, string(act.agent())
		return nil
	}); err != nil {
		return result{}, fmt.Errorf("slack: intent of %s: %w", conv.ID, err)
	}
	return result{
		say:   "Intent set to `" + escapeMrkdwn(name) + "`; the customer's message is kept as a training row for the intent model.",
		after: a.cardAndNote(conv.ID, ":label: <@"+act.user+"> set the intent to `"+escapeMrkdwn(name)+"` (the model said `"+escapeMrkdwn(settings.Intent)+"`)."),
	}, nil
}

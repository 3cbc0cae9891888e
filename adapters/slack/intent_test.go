package slack_test

import (
	"strings"
	"testing"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/routing"
)

// cardIntent is an intent model that knows one intent.
type cardIntent struct{}

func (cardIntent) Intent(text, _ string) (string, float64) {
	if strings.Contains(text, "card") {
		return "card_arrival", 0.93
	}
	return "unknown", 0.1
}

// TestDesk_IntentOnCardAndCorrection: routing's intent reaches the card and
// the routing note; an agent corrects it with /omni intent, which publishes
// intent.correct with the customer's message for insight to keep, and the
// card says who set it.
func TestDesk_IntentOnCardAndCorrection(t *testing.T) {
	d := newDesk(t, nil)
	d.runRoutingDeps(routingConfig(), routing.Deps{Intent: cardIntent{}})
	d.customer(ann, "my card never came", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	d.waitCard(ch, ts, "*Intent*", "card_arrival", "93% sure")
	d.waitNote(ts, "intent card_arrival (0.93)")

	code, say := d.command(agentUser, ch, "intent lost_or_stolen_card "+conv.ID)
	if code != 200 || !strings.Contains(say, "Intent set to `lost_or_stolen_card`") {
		t.Fatalf("/omni intent: %d %q", code, say)
	}
	evs := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.IntentCorrect), 1)
	if e := evs[0]; e.Text != "my card never came" || e.Meta[event.MetaIntent] != "lost_or_stolen_card" ||
		e.Meta[event.MetaPreviousIntent] != "card_arrival" || e.ConversationID != conv.ID || e.From != "slack:"+agentUser {
		t.Errorf("intent.correct %+v", e)
	}
	d.waitCard(ch, ts, "lost_or_stolen_card", "set by <@"+agentUser+">")
	d.waitNote(ts, "set the intent to `lost_or_stolen_card` (the model said `card_arrival`)")

	if _, say := d.command(agentUser, ch, "intent not an intent"); !strings.Contains(say, "Too many arguments") {
		t.Errorf("intent with spaces: %q", say)
	}
	if _, say := d.command(agentUser, ch, "intent bad*name"); !strings.Contains(say, "is not an intent name") {
		t.Errorf("bad name: %q", say)
	}
}

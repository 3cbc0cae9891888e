package event

import (
	"slices"
)

// Kind says whether a type is a command or an event.
type Kind string

// The kinds of Spec.
const (
	// KindCommand asks the owner of some state to change it.
	KindCommand Kind = "command"
	// KindEvent says what happened.
	KindEvent Kind = "event"
)

// Spec describes one event or command type: where it travels, who publishes it
// and who acts on it. What it means is its constant's doc comment.
type Spec struct {
	Type string
	Kind Kind
	// Subjects are where it is published, e.g. "omni.evt.conversation.closed".
	Subjects []string
	// Producers and Consumers name components: pipeline, routing, tickets, the
	// adapter runtime, or a channel or desk adapter (slack, telegram, ...).
	Producers []string
	Consumers []string
	// Meta are the meta keys it carries.
	Meta []string
	// Answer is the event that answers a command.
	Answer string
}

// Subjects the catalogue names. <desk>, <channel> and <partition> stand for the
// parts a publisher fills.
const (
	subjDeskIn  = "omni.in.<desk>.<partition>"
	subjDesk    = "omni.desk.<desk>"
	subjOutChat = "omni.out.<web|app>"
)

func evt(typ string) string { return "omni.evt." + typ }

// catalogue is every event and command, commands first, each group in the
// order a conversation meets them.
var catalogue = []Spec{
	{Type: ConversationClose, Kind: KindCommand, Subjects: []string{subjDeskIn},
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaOpens}, Answer: ConversationClosed},
	{Type: ConversationReopen, Kind: KindCommand, Subjects: []string{subjDeskIn},
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaOpens}, Answer: ConversationReopened},
	{Type: ContactLink, Kind: KindCommand, Subjects: []string{subjDeskIn},
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaIdentity}, Answer: ContactLinked},
	{Type: ConversationTag, Kind: KindCommand, Subjects: []string{subjDeskIn, "omni.in.routing.<partition>"},
		Producers: []string{"slack", "routing"}, Consumers: []string{"pipeline"}, Meta: []string{MetaTags, MetaUntags}, Answer: ConversationTagged},
	{Type: ConversationClaim, Kind: KindCommand, Subjects: []string{evt(ConversationClaim)},
		Producers: []string{"slack"}, Consumers: []string{"routing"}, Meta: []string{MetaAssignee}, Answer: ConversationAssigned},
	{Type: ConversationTransfer, Kind: KindCommand, Subjects: []string{evt(ConversationTransfer)},
		Producers: []string{"slack"}, Consumers: []string{"routing"}, Meta: []string{MetaQueue}, Answer: ConversationRouted},
	{Type: TicketCreate, Kind: KindCommand, Subjects: []string{evt(TicketCreate)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"tickets"},
		Meta: []string{MetaSubject, MetaPriority, MetaTags, MetaAssignee, MetaRule, MetaBy}, Answer: TicketCreated},
	{Type: AgentAway, Kind: KindCommand, Subjects: []string{evt(AgentAway)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"routing"}, Meta: []string{MetaAgent}},
	{Type: AgentBack, Kind: KindCommand, Subjects: []string{evt(AgentBack)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"routing"}, Meta: []string{MetaAgent}},
	{Type: IntentCorrect, Kind: KindCommand, Subjects: []string{evt(IntentCorrect)},
		Producers: []string{"slack"}, Consumers: []string{"insight"}, Meta: []string{MetaIntent, MetaPreviousIntent, MetaIntentConfidence}},

	{Type: ConversationClosed, Kind: KindEvent, Subjects: []string{evt(ConversationClosed)},
		Producers: []string{"pipeline"}, Consumers: []string{"routing", "slack", "analytics"}, Meta: []string{MetaDesk}},
	{Type: ConversationReopened, Kind: KindEvent, Subjects: []string{evt(ConversationReopened)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack", "analytics"}, Meta: []string{MetaDesk}},
	{Type: ConversationTagged, Kind: KindEvent, Subjects: []string{evt(ConversationTagged)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack", "analytics"}, Meta: []string{MetaTags, MetaAdded, MetaRemoved, MetaDesk}},
	{Type: Suggestions, Kind: KindEvent, Subjects: []string{subjDesk},
		Producers: []string{"insight"}, Consumers: []string{"slack"}, Meta: []string{MetaSuggestions}},
	{Type: SuggestionUsed, Kind: KindEvent, Subjects: []string{evt(SuggestionUsed)},
		Producers: []string{"slack"}, Consumers: []string{"analytics"}, Meta: []string{MetaArticle, MetaRank, MetaEdited, MetaDesk}},
	{Type: SuggestionIgnored, Kind: KindEvent, Subjects: []string{evt(SuggestionIgnored)},
		Producers: []string{"slack"}, Consumers: []string{"analytics"}, Meta: []string{MetaArticle, MetaDesk}},
	{Type: ConversationRouted, Kind: KindEvent, Subjects: []string{subjDesk, evt(ConversationRouted)},
		Producers: []string{"routing"}, Consumers: []string{"slack", "analytics"},
		Meta: []string{MetaQueue, MetaPriority, MetaTags, MetaSkills, MetaDeskChannel, MetaLanguage, MetaScore, MetaLabels, MetaIntent, MetaIntentConfidence, MetaRule, MetaReason, MetaPreviousQueue, MetaAssignee, MetaAgent, MetaBy}},
	{Type: ConversationAssigned, Kind: KindEvent, Subjects: []string{subjDesk, evt(ConversationAssigned)},
		Producers: []string{"routing"}, Consumers: []string{"slack", "analytics"}, Meta: []string{MetaAssignee, MetaQueue, MetaStrategy, MetaPriority, MetaBy}},
	{Type: SLABreached, Kind: KindEvent, Subjects: []string{subjDesk, evt(SLABreached)},
		Producers: []string{"routing"}, Consumers: []string{"slack", "analytics"},
		Meta: []string{MetaSLA, MetaQueue, MetaTarget, MetaWaited, MetaMention, MetaOverflow, MetaAssignee, MetaPriority}},
	{Type: ContactMerged, Kind: KindEvent, Subjects: []string{subjDesk, evt(ContactMerged)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"},
		Meta: []string{MetaContact, MetaMergedContact, MetaConversation, MetaClosedConversation, MetaMoved, MetaReason}},
	{Type: ContactLinked, Kind: KindEvent, Subjects: []string{subjDesk},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"}, Meta: []string{MetaIdentity, MetaDesk}},
	{Type: ContactUnreachable, Kind: KindEvent, Subjects: []string{"omni.in.<channel>.<partition>", evt(ContactUnreachable)},
		Producers: []string{"adapter runtime", "sms", "whatsapp", "email", "telegram", "pipeline"}, Consumers: []string{"pipeline", "slack", "analytics"}, Meta: []string{MetaReason, MetaError, MetaDesk}},
	{Type: ContactReachable, Kind: KindEvent, Subjects: []string{"omni.in.<channel>.<partition>", evt(ContactReachable)},
		Producers: []string{"sms", "whatsapp", "telegram", "pipeline"}, Consumers: []string{"pipeline", "slack"}, Meta: []string{MetaReason}},
	{Type: CommandRejected, Kind: KindEvent, Subjects: []string{subjDesk},
		Producers: []string{"pipeline", "routing"}, Consumers: []string{"slack"}, Meta: []string{MetaCommand, MetaReason}},
	{Type: TicketCreated, Kind: KindEvent, Subjects: []string{evt(TicketCreated)},
		Producers: []string{"tickets"}, Consumers: []string{"slack", "tickets", "analytics"}, Meta: []string{MetaTicket, MetaTicketURL, MetaSeq, MetaAction, MetaStatus}},
	{Type: TicketUpdated, Kind: KindEvent, Subjects: []string{evt(TicketUpdated), subjDesk},
		Producers: []string{"tickets"}, Consumers: []string{"slack", "tickets", "analytics"},
		Meta: []string{MetaTicket, MetaSeq, MetaAction, MetaChanges, MetaStatus, MetaPreviousStatus, MetaPriority, MetaAssignee, MetaSubject, MetaTags, MetaDueAt, MetaActor, MetaSource, MetaSatisfaction}},
	{Type: TicketCommented, Kind: KindEvent, Subjects: []string{evt(TicketCommented)},
		Producers: []string{"tickets"}, Consumers: []string{"tickets"}, Meta: []string{MetaTicket, MetaSeq, MetaActor}},
	{Type: DeliverySent, Kind: KindEvent, Subjects: []string{evt(DeliverySent)},
		Producers: []string{"adapter runtime"}, Consumers: []string{"slack", "analytics"}},
	{Type: DeliveryDelivered, Kind: KindEvent, Subjects: []string{evt(DeliveryDelivered)},
		Producers: []string{"sms", "whatsapp", "web", "app"}, Consumers: []string{"slack"}},
	{Type: DeliveryRead, Kind: KindEvent, Subjects: []string{evt(DeliveryRead)},
		Producers: []string{"whatsapp", "web", "app"}, Consumers: []string{"slack"}},
	{Type: DeliveryFailed, Kind: KindEvent, Subjects: []string{evt(DeliveryFailed)},
		Producers: []string{"adapter runtime", "sms", "whatsapp", "email", "telegram", "pipeline"}, Consumers: []string{"slack", "analytics"}, Meta: []string{MetaError, MetaReason, MetaUnreachable}},
	{Type: DeliveryRerouted, Kind: KindEvent, Subjects: []string{evt(DeliveryRerouted)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"}, Meta: []string{MetaCarriedBy, MetaReason, MetaUnreachable}},
	{Type: QueueAvailability, Kind: KindEvent, Subjects: []string{evt(QueueAvailability)},
		Producers: []string{"routing"}, Consumers: []string{"web", "app"},
		Meta: []string{MetaQueue, MetaAgents, MetaAgentsAvailable, MetaOpen, MetaNextOpen, MetaExpectedWait}},
	{Type: Typing, Kind: KindEvent, Subjects: []string{subjOutChat},
		Producers: []string{"desks"}, Consumers: []string{"web", "app"}},
	{Type: Read, Kind: KindEvent, Subjects: []string{subjOutChat},
		Producers: []string{"desks"}, Consumers: []string{"web", "app"}, Meta: []string{MetaUpTo}},
}

// Catalogue returns every event and command type, commands first.
func Catalogue() []Spec {
	out := slices.Clone(catalogue)
	for i := range out {
		out[i].Subjects = slices.Clone(out[i].Subjects)
		out[i].Producers = slices.Clone(out[i].Producers)
		out[i].Consumers = slices.Clone(out[i].Consumers)
		out[i].Meta = slices.Clone(out[i].Meta)
	}
	return out
}

// Lookup returns the Spec of typ.
func Lookup(typ string) (Spec, bool) {
	for _, s := range catalogue {
		if s.Type == typ {
			return s, true
		}
	}
	return Spec{}, false
}

package event

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
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
// and who acts on it.
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
	// Doc says what it means, in a sentence or two.
	Doc string
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
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaOpens}, Answer: ConversationClosed,
		Doc: "Close the conversation. Sent on the desk's partition of the conversation, so it keeps its order with the replies written before it."},
	{Type: ConversationReopen, Kind: KindCommand, Subjects: []string{subjDeskIn},
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaOpens}, Answer: ConversationReopened,
		Doc: "Reopen a closed conversation: only the contact's latest one, and only while the contact has no other open conversation (else `command.rejected`)."},
	{Type: ContactLink, Kind: KindCommand, Subjects: []string{subjDeskIn},
		Producers: []string{"slack"}, Consumers: []string{"pipeline"}, Meta: []string{MetaIdentity}, Answer: ContactLinked,
		Doc: "An agent says the customer also is this identity (`sms:+15551234567`); contacts holding it are merged into the conversation's."},
	{Type: ConversationClaim, Kind: KindCommand, Subjects: []string{evt(ConversationClaim)},
		Producers: []string{"slack"}, Consumers: []string{"routing"}, Meta: []string{MetaAssignee}, Answer: ConversationAssigned,
		Doc: "Assign the conversation to the agent in `assignee` (else From), the agent who claimed it."},
	{Type: ConversationTransfer, Kind: KindCommand, Subjects: []string{evt(ConversationTransfer)},
		Producers: []string{"slack"}, Consumers: []string{"routing"}, Meta: []string{MetaQueue}, Answer: ConversationRouted,
		Doc: "Move the conversation to another queue; a queue routing does not know is rejected."},
	{Type: TicketCreate, Kind: KindCommand, Subjects: []string{evt(TicketCreate)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"tickets"},
		Meta: []string{MetaSubject, MetaPriority, MetaTags, MetaAssignee, MetaRule, MetaBy}, Answer: TicketCreated,
		Doc: "Create a ticket for the conversation; one that has an active ticket gets that one back (ticket.updated, action `exists`)."},
	{Type: AgentAway, Kind: KindCommand, Subjects: []string{evt(AgentAway)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"routing"}, Meta: []string{MetaAgent},
		Doc: "The agent takes no new conversations until `agent.back`."},
	{Type: AgentBack, Kind: KindCommand, Subjects: []string{evt(AgentBack)},
		Producers: []string{"slack", "routing"}, Consumers: []string{"routing"}, Meta: []string{MetaAgent},
		Doc: "The agent is available again; waiting conversations may be assigned to them."},

	{Type: ConversationClosed, Kind: KindEvent, Subjects: []string{evt(ConversationClosed)},
		Producers: []string{"pipeline"}, Consumers: []string{"routing", "slack"}, Meta: []string{MetaDesk},
		Doc: "The conversation was closed. From is who asked; the customer's next message within the reopen window opens it again."},
	{Type: ConversationReopened, Kind: KindEvent, Subjects: []string{evt(ConversationReopened)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"}, Meta: []string{MetaDesk},
		Doc: "An agent reopened the conversation (ConversationReopen)."},
	{Type: ConversationRouted, Kind: KindEvent, Subjects: []string{subjDesk, evt(ConversationRouted)},
		Producers: []string{"routing"}, Consumers: []string{"slack"},
		Meta: []string{MetaQueue, MetaPriority, MetaTags, MetaSkills, MetaDeskChannel, MetaLanguage, MetaScore, MetaLabels, MetaRule, MetaReason, MetaPreviousQueue, MetaAssignee, MetaAgent, MetaBy},
		Doc:  "Routing set or changed the conversation's queue or priority: by its rules, an escalation, an SLA breach's overflow or a transfer (`reason`). A desk moves the thread when the queue lives elsewhere."},
	{Type: ConversationAssigned, Kind: KindEvent, Subjects: []string{subjDesk, evt(ConversationAssigned)},
		Producers: []string{"routing"}, Consumers: []string{"slack"}, Meta: []string{MetaAssignee, MetaQueue, MetaStrategy, MetaPriority, MetaBy},
		Doc: "The conversation has an assignee now: chosen by a strategy (`strategy`), or an agent's claim (`by` is the desk)."},
	{Type: SLABreached, Kind: KindEvent, Subjects: []string{subjDesk, evt(SLABreached)},
		Producers: []string{"routing"}, Consumers: []string{"slack"},
		Meta: []string{MetaSLA, MetaQueue, MetaTarget, MetaWaited, MetaMention, MetaOverflow, MetaAssignee, MetaPriority},
		Doc:  "A response target passed while the customer waited."},
	{Type: ContactMerged, Kind: KindEvent, Subjects: []string{subjDesk, evt(ContactMerged)},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"},
		Meta: []string{MetaContact, MetaMergedContact, MetaConversation, MetaClosedConversation, MetaMoved, MetaReason},
		Doc:  "Two contacts were proved one customer and merged; the older survives."},
	{Type: ContactLinked, Kind: KindEvent, Subjects: []string{subjDesk},
		Producers: []string{"pipeline"}, Consumers: []string{"slack"}, Meta: []string{MetaIdentity, MetaDesk},
		Doc: "An identity was given to the conversation's contact at an agent's request."},
	{Type: ContactBlocked, Kind: KindEvent, Subjects: []string{evt(ContactBlocked)},
		Producers: []string{"telegram"}, Consumers: []string{"slack"}, Meta: []string{MetaReason},
		Doc: "The customer blocked the channel (To); replies there cannot reach them."},
	{Type: CommandRejected, Kind: KindEvent, Subjects: []string{subjDesk},
		Producers: []string{"pipeline", "routing"}, Consumers: []string{"slack"}, Meta: []string{MetaCommand, MetaReason},
		Doc: "A command could not be executed; ReplyTo is the command's id. Sent to the desk the command came from."},
	{Type: TicketCreated, Kind: KindEvent, Subjects: []string{evt(TicketCreated)},
		Producers: []string{"tickets"}, Consumers: []string{"slack", "tickets"}, Meta: []string{MetaTicket, MetaTicketURL, MetaSeq, MetaAction, MetaStatus},
		Doc: "A ticket was created."},
	{Type: TicketUpdated, Kind: KindEvent, Subjects: []string{evt(TicketUpdated), subjDesk},
		Producers: []string{"tickets"}, Consumers: []string{"slack", "tickets"},
		Meta: []string{MetaTicket, MetaSeq, MetaAction, MetaChanges, MetaStatus, MetaPreviousStatus, MetaPriority, MetaAssignee, MetaSubject, MetaTags, MetaDueAt, MetaActor, MetaSource},
		Doc:  "A ticket changed; on a desk, once per linked conversation, with the change in words in Text."},
	{Type: TicketCommented, Kind: KindEvent, Subjects: []string{evt(TicketCommented)},
		Producers: []string{"tickets"}, Consumers: []string{"tickets"}, Meta: []string{MetaTicket, MetaSeq, MetaActor},
		Doc: "A comment was added to a ticket (bridges send it to trackers)."},
	{Type: DeliverySent, Kind: KindEvent, Subjects: []string{evt(DeliverySent)},
		Producers: []string{"adapter runtime"}, Consumers: []string{"slack"},
		Doc: "The channel's provider accepted the outbound message ReplyTo."},
	{Type: DeliveryDelivered, Kind: KindEvent, Subjects: []string{evt(DeliveryDelivered)},
		Producers: []string{"sms", "whatsapp", "web", "app"}, Consumers: []string{"slack"},
		Doc: "The provider confirmed delivery of ReplyTo to the customer."},
	{Type: DeliveryRead, Kind: KindEvent, Subjects: []string{evt(DeliveryRead)},
		Producers: []string{"whatsapp", "web", "app"}, Consumers: []string{"slack"},
		Doc: "The customer read ReplyTo."},
	{Type: DeliveryFailed, Kind: KindEvent, Subjects: []string{evt(DeliveryFailed)},
		Producers: []string{"adapter runtime", "sms", "whatsapp", "email", "telegram"}, Consumers: []string{"slack"}, Meta: []string{MetaError},
		Doc: "ReplyTo could not be delivered; `error` says why in the provider's words."},
	{Type: Typing, Kind: KindEvent, Subjects: []string{subjOutChat},
		Producers: []string{"desks"}, Consumers: []string{"web", "app"},
		Doc: "Show the visitor that an agent is typing."},
	{Type: Read, Kind: KindEvent, Subjects: []string{subjOutChat},
		Producers: []string{"desks"}, Consumers: []string{"web", "app"}, Meta: []string{MetaUpTo},
		Doc: "Tell the visitor the agent read up to ReplyTo or `up_to`."},
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

// metaDocs are the meta keys with what they mean, in the order of the
// constants; Markdown lists them. TestCatalogue checks it has every constant.
var metaDocs = [][2]string{
	{MetaVerifiedEmail, "an email address the channel verified belongs to the sender (HMAC signed by the customer's site); the pipeline links it"},
	{MetaVerifiedPhone, "an E.164 number the channel verified belongs to the sender; linked on every phone channel"},
	{MetaVerifiedUser, "the sender's account id on the customer's site, verified by the channel; linked as `user:<id>`"},
	{MetaThreadKeys, "further thread keys the message refers to, besides External.Thread (email: In-Reply-To, References, reply token)"},
	{MetaName, "the sender's name as the channel gave it"},
	{MetaProfileName, "the sender's profile name (WhatsApp)"},
	{MetaSharedName, "the name on a contact the sender shared (Telegram)"},
	{MetaSubject, "an email's subject; a ticket's subject"},
	{MetaReplyVia, "on a desk's reply: the channel an agent chose replies go by"},
	{MetaFormat, "`markdown` when a reply's Text is CommonMark (what desks write); empty for plain text"},
	{MetaAgentName, "the display name of the agent who wrote a reply"},
	{MetaDesk, "the desk or component a reply or command came from"},
	{MetaAuto, "on what omnigate sent by itself: `ack`, `out_of_hours` or a rule's template (routing), `ticket` (ticket notices)"},
	{MetaTemplate, "the template an automatic message was made from"},
	{MetaCarriedBy, "on a reply: the channel that carried it, when another than the conversation's"},
	{MetaConversationOpened, "`true` on the desk copy of a customer message that opened or reopened its conversation"},
	{MetaPreviousConversation, "on the desk copy of a message that opened a new conversation: the contact's previous one"},
	{MetaOpens, "on conversation.close and .reopen: the opening the agent saw; a close of an opening that is over, or a reopen done already, changes nothing"},
	{MetaIdentity, "the identity of contact.link and contact.linked"},
	{MetaContact, "contact.merged: the surviving contact"},
	{MetaMergedContact, "contact.merged: the contact merged away"},
	{MetaConversation, "contact.merged: the survivor's open conversation"},
	{MetaClosedConversation, "contact.merged: the merged contact's open conversation, closed into `conversation`"},
	{MetaMoved, "contact.merged: `true` when the merged contact's open conversation became the survivor's"},
	{MetaReason, "why: what proved two contacts one; why routing routed (`rules`, `escalation`, `sla_breach`, `transfer`); why a command was rejected or a channel blocked"},
	{MetaCommand, "command.rejected: the command it answers"},
	{MetaQueue, "the conversation's queue"},
	{MetaPreviousQueue, "the queue a conversation was routed away from"},
	{MetaPriority, "the conversation's or ticket's priority"},
	{MetaAssignee, "the agent a conversation or ticket is assigned to, as a desk identity (`slack:U0123ABCD`)"},
	{MetaTags, "tags, comma-separated"},
	{MetaSkills, "skills the conversation needs, comma-separated"},
	{MetaDeskChannel, "where the queue lives on its desk (a Slack channel id)"},
	{MetaLanguage, "the language routing detected or was told"},
	{MetaScore, "the escalation score, 0.00 to 1.00"},
	{MetaLabels, "escalation labels, comma-separated"},
	{MetaRule, "the routing rules that matched, comma-separated"},
	{MetaStrategy, "the assignment strategy that chose the assignee"},
	{MetaBy, "who made the change: `routing`, or the desk of an agent"},
	{MetaSLA, "the target breached: `first_response` or `next_response`"},
	{MetaTarget, "the breached target's duration"},
	{MetaWaited, "how long the customer has waited"},
	{MetaMention, "the desk mention of the group to alert on a breach"},
	{MetaOverflow, "the queue a breach moved the conversation to"},
	{MetaAgent, "the agent of agent.away and agent.back; on conversation.routed, the agent who transferred it"},
	{MetaExpectedWait, "the expected wait an acknowledgement announced"},
	{MetaTicket, "a ticket's number"},
	{MetaTicketURL, "a link to the ticket in its tracker"},
	{MetaSeq, "the entry of a ticket's log the event is about"},
	{MetaAction, "what a ticket event did: created, updated, commented, exists, ..."},
	{MetaChanges, "the fields a ticket event changed, comma-separated"},
	{MetaStatus, "a ticket's status now"},
	{MetaPreviousStatus, "a ticket's status before the change"},
	{MetaDueAt, "a ticket's due date, RFC 3339"},
	{MetaActor, "who changed a ticket"},
	{MetaSource, "the tracker bridge a ticket change came from"},
	{MetaError, "why a delivery failed, in the provider's words"},
	{MetaUpTo, "read: the seq the agent read up to"},
}

// MetaKeys returns every catalogued meta key, in the catalogue's order.
func MetaKeys() []string {
	out := make([]string, len(metaDocs))
	for i, m := range metaDocs {
		out[i] = m[0]
	}
	return out
}

// Markdown renders the catalogue as docs/events.md.
func Markdown() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from core/event by `go test ./core/event -run TestEventsDoc -update`; do not edit. -->\n\n")
	b.WriteString("# Events and commands\n\n")
	b.WriteString("Every event and command that crosses a package boundary, with where it travels, who\n" +
		"publishes it and who acts on it. An **event** says what happened and is published by the\n" +
		"owner of the state that changed; a **command** asks that owner to change it, and is answered\n" +
		"with the event in its *answer* column or with `command.rejected`. Envelopes are\n" +
		"`core.Message` (kind `event`, `Type` as below); `ConversationID` names the conversation.\n" +
		"Constants live in `core/event`; no other package spells these names. Who owns what:\n" +
		"[architecture.md](architecture.md).\n\n")
	for _, k := range []Kind{KindCommand, KindEvent} {
		if k == KindCommand {
			b.WriteString("## Commands\n\n| command | subject | sent by | executed by | answer | meta | meaning |\n|---|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("## Events\n\n| event | subjects | published by | consumed by | meta | meaning |\n|---|---|---|---|---|---|\n")
		}
		for _, s := range catalogue {
			if s.Kind != k {
				continue
			}
			cells := []string{"`" + s.Type + "`", code(s.Subjects), strings.Join(s.Producers, ", "), strings.Join(s.Consumers, ", ")}
			if k == KindCommand {
				cells = append(cells, code([]string{s.Answer}))
			}
			cells = append(cells, code(s.Meta), s.Doc)
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Replies\n\n" +
		"Every message to a customer takes one path. Its author publishes an outbound message\n" +
		"(kind `message`, direction `outbound`, `ConversationID` set) on\n" +
		"`omni.in.<source>.<partition of the conversation>`: a desk (`slack`) for an agent's reply,\n" +
		"`routing` for acknowledgements and automatic replies, `tickets` for ticket notices. The\n" +
		"pipeline picks the channel (meta `reply_via`, else the channel the customer used last)\n" +
		"and the recipient (from the contact's identities only), appends it to the transcript\n" +
		"`omni.conv.<conversation>`, publishes it on `omni.out.<channel>` for the channel's adapter\n" +
		"and echoes it to the desks it did not come from. Deduplication ids derive from the\n" +
		"envelope id (`conv:`, `out:`, `desk:<desk>:`), so a redelivery sends nothing twice.\n\n")
	b.WriteString("## Meta keys\n\n| key | meaning |\n|---|---|\n")
	for _, m := range metaDocs {
		fmt.Fprintf(&b, "| `%s` | %s |\n", m[0], m[1])
	}
	return b.Bytes()
}

func code(xs []string) string {
	if len(xs) == 0 || len(xs) == 1 && xs[0] == "" {
		return ""
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
}

// Package event is omnigate's catalogue: the type of every event and command and
// every meta key that one package publishes and another reads. No other package
// spells them; they import these constants.
//
// An event says what happened ("conversation.closed"); a command asks the owner
// of a piece of state to change it ("conversation.close"). The owner executes a
// command and answers with an event, or with CommandRejected when it cannot.
// Who owns what is in docs/architecture.md; where each type travels, who
// publishes it and who consumes it is in Catalogue, from which docs/events.md is
// generated (go test ./core/event -run TestEventsDoc -update).
package event

// Commands: a component asks the owner of some state to change it. The owner
// answers with the event named in the command's Spec, or with CommandRejected.
// Each constant's doc comment is its entry in docs/events.md.
const (
	// ConversationClose asks the pipeline to close the conversation. A desk
	// sends it on its partition of the conversation, so it keeps its order
	// with the replies written before it.
	ConversationClose = "conversation.close"
	// ConversationReopen asks the pipeline to reopen a closed conversation:
	// only the contact's latest one, and only while the contact has no other
	// open conversation (else command.rejected).
	ConversationReopen = "conversation.reopen"
	// ContactLink says, for an agent, that the customer also is the identity
	// in meta identity (sms:+15551234567); the pipeline merges the contacts
	// holding it into the conversation's.
	ContactLink = "contact.link"
	// ConversationTag asks the pipeline to add the tags in meta tags to the
	// conversation and remove those in meta untags. A desk sends it on its
	// partition of the conversation, as ConversationClose; routing sends the
	// tags of the rules that matched on its own.
	ConversationTag = "conversation.tag"
	// ConversationClaim asks routing to assign the conversation to the agent in
	// meta assignee (else From), the agent who claimed it.
	ConversationClaim = "conversation.claim"
	// ConversationTransfer asks routing to move the conversation to the queue
	// in meta queue; a queue routing does not know is rejected.
	ConversationTransfer = "conversation.transfer"
	// TicketCreate asks the ticket service for a ticket for the conversation;
	// one that has an active ticket gets that one back (ticket.updated, action
	// exists).
	TicketCreate = "ticket.create"
	// AgentAway tells routing that the agent in meta agent (else From) takes
	// no new conversations until agent.back.
	AgentAway = "agent.away"
	// AgentBack tells routing that the agent in meta agent (else From) is
	// available again; waiting conversations may be assigned to them.
	AgentBack = "agent.back"
	// IntentCorrect tells insight that the customer's message in Text has the
	// intent in meta intent, not the model's (meta previous_intent): an
	// agent's correction (From), kept as a training row for the intent model
	// (omnigate intent export-corrections).
	IntentCorrect = "intent.correct"
)

// Events: what happened, published by the owner of the state that changed.
const (
	// ConversationClosed says the pipeline closed the conversation. From is who
	// asked; the customer's next message within the reopen window opens it
	// again.
	ConversationClosed = "conversation.closed"
	// ConversationReopened says the pipeline reopened the conversation at an
	// agent's request (a customer's message that reopens one is marked with
	// meta conversation_opened instead).
	ConversationReopened = "conversation.reopened"
	// ConversationTagged says the pipeline changed the conversation's tags
	// (conversation.tag): meta tags are its tags now, added and removed what
	// changed.
	ConversationTagged = "conversation.tagged"
	// Suggestions, on a desk's subject, are the replies the knowledge base
	// suggests for the customer message ReplyTo: meta suggestions (see
	// canned.Suggestion), best first. Only the desk shows them; sending one
	// is an agent's reply like any other.
	Suggestions = "suggestions"
	// SuggestionUsed says an agent sent a suggested reply or a canned answer
	// (meta article, rank; rank 0 for /omni answer), as it was or edited
	// (meta edited "true"). From is the agent.
	SuggestionUsed = "suggestion.used"
	// SuggestionIgnored says the suggestions for the customer message
	// ReplyTo were passed over: the agent answered in their own words, or the
	// customer wrote again first. Meta article lists the articles suggested.
	SuggestionIgnored = "suggestion.ignored"
	// ConversationRouted says routing set or changed the conversation's queue
	// or priority: by its rules, an escalation, an SLA breach's overflow or a
	// transfer (meta reason). A desk moves the thread when the queue lives
	// elsewhere.
	ConversationRouted = "conversation.routed"
	// ConversationAssigned says the conversation has an assignee now, chosen by
	// a strategy (meta strategy) or by an agent's claim (meta by is the desk).
	ConversationAssigned = "conversation.assigned"
	// SLABreached says a response target passed while the customer waited.
	SLABreached = "sla.breached"
	// ContactMerged says two contacts were proved one customer and merged; the
	// older survives.
	ContactMerged = "contact.merged"
	// ContactLinked says an identity was given to the conversation's contact at
	// an agent's request (contact.link).
	ContactLinked = "contact.linked"
	// ContactUnreachable says an identity of the customer (From) cannot be
	// reached, as its channel's provider said: meta reason (ReasonBlocked,
	// ReasonBounced, ReasonOptedOut, ReasonOutsideWindow, ReasonInvalid) and
	// error (the provider's words). A channel publishes it on its inbound
	// subject, in order with the customer's messages; when a reply failed for
	// it, ReplyTo is that reply and Text, HTML and Attachments are its content,
	// which the pipeline sends again on the contact's next reachable channel.
	// The pipeline records it on the contact and tells the desks on
	// omni.evt.contact.unreachable, with the conversation.
	ContactUnreachable = "contact.unreachable"
	// ContactReachable says an identity (From) can be reached again (the
	// customer opted in, or wrote from it); published and passed on like
	// ContactUnreachable.
	ContactReachable = "contact.reachable"
	// DeliveryRerouted says the pipeline sent reply ReplyTo on another channel
	// than the one it would have used, which cannot reach the customer: meta
	// carried_by is the channel used, reason why the other was passed over.
	DeliveryRerouted = "delivery.rerouted"
	// CommandRejected says a command could not be executed: meta command and
	// reason say which and why, ReplyTo is the command's id. It goes to the
	// desk the command came from.
	CommandRejected = "command.rejected"
	// TicketCreated says a ticket was created.
	TicketCreated = "ticket.created"
	// TicketUpdated says a ticket changed (meta action and changes say how);
	// on a desk, once per linked conversation, with the change in words in
	// Text.
	TicketUpdated = "ticket.updated"
	// TicketCommented says a comment was added to a ticket (bridges send it to
	// trackers).
	TicketCommented = "ticket.commented"
	// DeliverySent says the channel's provider accepted the outbound message
	// ReplyTo.
	DeliverySent = "delivery.sent"
	// DeliveryDelivered says the provider confirmed delivery of ReplyTo to the
	// customer.
	DeliveryDelivered = "delivery.delivered"
	// DeliveryRead says the customer read ReplyTo, where the channel tells.
	DeliveryRead = "delivery.read"
	// DeliveryFailed says ReplyTo could not be delivered; meta error says why
	// in the provider's words.
	DeliveryFailed = "delivery.failed"
	// Typing, on omni.out.<web|app>, shows the visitor that an agent is
	// typing.
	Typing = "typing"
	// Read, on omni.out.<web|app>, tells the visitor that the agent read up to
	// ReplyTo or meta up_to.
	Read = "read"
	// QueueAvailability says a queue's availability changed: whether an agent
	// of the queue is available with room (meta agents_available, of
	// agents), whether it is within business hours (meta open, next_open)
	// and the wait a customer can expect (meta expected_wait, in seconds).
	// Routing publishes it on a change; the chat channels (web, app) read the
	// current state of every queue from the record AvailabilityRecords holds,
	// not from this event.
	QueueAvailability = "queue.availability"
)

// Meta keys that cross a package boundary. Values are strings; lists are
// comma-separated. Each constant's doc comment is its entry in docs/events.md.
const (
	// MetaVerifiedEmail is an email address a channel verified belongs to the
	// sender (an HMAC signed by the customer's site); the pipeline links it.
	MetaVerifiedEmail = "verified_email"
	// MetaVerifiedPhone is an E.164 number a channel verified belongs to the
	// sender; the pipeline links it on every phone channel.
	MetaVerifiedPhone = "verified_phone"
	// MetaVerifiedUser is the sender's account id on the customer's site,
	// verified by the channel; the pipeline links user:<id>.
	MetaVerifiedUser = "verified_user"
	// MetaThreadKeys are further thread keys a message refers to, besides
	// External.Thread (email: In-Reply-To, References, the reply token).
	MetaThreadKeys = "thread_keys"
	// MetaName is the sender's name as the channel gave it.
	MetaName = "name"
	// MetaProfileName is the sender's profile name (WhatsApp).
	MetaProfileName = "profile_name"
	// MetaSharedName is the name on a contact the sender shared (Telegram).
	MetaSharedName = "shared_name"
	// MetaSubject is the subject of an email, of a ticket, or asked for a new
	// ticket.
	MetaSubject = "subject"

	// MetaReplyVia, on a reply from a desk, is the channel an agent chose
	// replies go by.
	MetaReplyVia = "reply_via"
	// MetaFormat is the format of Text on a reply: FormatMarkdown (CommonMark)
	// or empty for plain text.
	MetaFormat = "format"
	// MetaAgentName is the display name of the agent who wrote a reply.
	MetaAgentName = "agent_name"
	// MetaDesk is the desk or component a reply or a command came from.
	MetaDesk = "desk"
	// MetaAuto marks what omnigate sent by itself, not an agent: ack,
	// out_of_hours or a rule's template name (routing), ticket (ticket
	// notices).
	MetaAuto = "auto"
	// MetaTemplate names the template an automatic message was made from.
	MetaTemplate = "template"
	// MetaCarriedBy, on a reply in the transcript, is the channel that carried
	// it when that is not the channel the conversation was on.
	MetaCarriedBy = "carried_by"

	// MetaConversationOpened is "true" on the desk copy of a customer message
	// that opened or reopened its conversation.
	MetaConversationOpened = "conversation_opened"
	// MetaPreviousConversation, on the desk copy of a message that opened a
	// new conversation, is the contact's conversation before it.
	MetaPreviousConversation = "previous_conversation"
	// MetaOpens, on ConversationClose and ConversationReopen, is the opening
	// of the conversation the agent saw (store.Conversation.Opens): a close
	// of an opening that is over, or a reopen done already, changes nothing.
	MetaOpens = "opens"
	// MetaIdentity is the identity of a ContactLink or ContactLinked.
	MetaIdentity = "identity"
	// MetaContact is the surviving contact of a ContactMerged.
	MetaContact = "contact"
	// MetaMergedContact is the contact a ContactMerged merged away.
	MetaMergedContact = "merged_contact"
	// MetaConversation is the survivor's open conversation of a ContactMerged.
	MetaConversation = "conversation"
	// MetaClosedConversation is the merged contact's open conversation, closed
	// into MetaConversation by a ContactMerged because both had one.
	MetaClosedConversation = "closed_conversation"
	// MetaMoved is "true" on a ContactMerged when the merged contact's open
	// conversation became the survivor's.
	MetaMoved = "moved"
	// MetaReason says why: what proved two contacts one (ContactMerged: phone,
	// verified_email, verified_phone, verified_user, thread, agent), why
	// routing routed (rules, escalation, sla_breach, transfer), why a command
	// was rejected or why a customer blocked a channel.
	MetaReason = "reason"
	// MetaCommand is the command type a CommandRejected answers.
	MetaCommand = "command"

	// MetaQueue is a conversation's queue.
	MetaQueue = "queue"
	// MetaPreviousQueue is the queue a conversation was routed away from.
	MetaPreviousQueue = "previous_queue"
	// MetaPriority is a conversation's or ticket's priority.
	MetaPriority = "priority"
	// MetaAssignee is the agent a conversation or ticket is assigned to, as a
	// desk identity (slack:U0123ABCD).
	MetaAssignee = "assignee"
	// MetaTags are tags, comma-separated: of a conversation, a contact or a
	// ticket; on ConversationTag the tags to add.
	MetaTags = "tags"
	// MetaUntags, on ConversationTag, are the tags to remove,
	// comma-separated.
	MetaUntags = "untags"
	// MetaAdded, on ConversationTagged, are the tags the command added,
	// comma-separated.
	MetaAdded = "added"
	// MetaRemoved, on ConversationTagged, are the tags the command removed,
	// comma-separated.
	MetaRemoved = "removed"
	// MetaSkills are the skills a conversation needs, comma-separated.
	MetaSkills = "skills"
	// MetaDeskChannel is where the conversation's queue lives on its desk (a
	// Slack channel id).
	MetaDeskChannel = "desk_channel"
	// MetaLanguage is the language routing detected or was told.
	MetaLanguage = "language"
	// MetaScore is the escalation score, 0.00 to 1.00.
	MetaScore = "score"
	// MetaLabels are the escalation labels, comma-separated.
	MetaLabels = "labels"
	// MetaIntent is what the customer wants, as the intent model tells from
	// the conversation's first message (e.g. card_arrival; unknown when no
	// intent is confident enough); on intent.correct, the agent's intent.
	MetaIntent = "intent"
	// MetaIntentConfidence is the intent model's calibrated confidence in
	// meta intent, 0.00 to 1.00.
	MetaIntentConfidence = "intent_confidence"
	// MetaPreviousIntent is, on intent.correct, the intent the model had
	// given.
	MetaPreviousIntent = "previous_intent"
	// MetaRule names the routing rules that matched, comma-separated.
	MetaRule = "rule"
	// MetaStrategy is the assignment strategy that chose the assignee.
	MetaStrategy = "strategy"
	// MetaBy names who made a change: "routing", or the desk of an agent.
	MetaBy = "by"
	// MetaSLA is the target breached: first_response or next_response.
	MetaSLA = "sla"
	// MetaSatisfaction, on a ticket.updated with action satisfaction, is the
	// customer's score, 1 to 5.
	MetaSatisfaction = "satisfaction"
	// MetaTarget is the breached target's duration.
	MetaTarget = "target"
	// MetaWaited is how long the customer has waited.
	MetaWaited = "waited"
	// MetaMention is the desk mention of the group to alert on a breach.
	MetaMention = "mention"
	// MetaOverflow is the queue a breach moved the conversation to.
	MetaOverflow = "overflow"
	// MetaAgent is the agent of AgentAway and AgentBack.
	MetaAgent = "agent"
	// MetaExpectedWait is the expected wait an acknowledgement announced, or
	// on QueueAvailability the wait a customer can expect now, in seconds.
	MetaExpectedWait = "expected_wait"

	// MetaTicket is a ticket's number.
	MetaTicket = "ticket"
	// MetaTicketURL is a link to a ticket in its tracker.
	MetaTicketURL = "ticket_url"
	// MetaSeq is the entry of a ticket's log an event is about.
	MetaSeq = "seq"
	// MetaAction is what a ticket event did (created, updated, commented,
	// exists, ...).
	MetaAction = "action"
	// MetaChanges are the fields a ticket event changed, comma-separated.
	MetaChanges = "changes"
	// MetaStatus is a ticket's status now.
	MetaStatus = "status"
	// MetaPreviousStatus is a ticket's status before the change.
	MetaPreviousStatus = "previous_status"
	// MetaDueAt is a ticket's due date, RFC 3339.
	MetaDueAt = "due_at"
	// MetaActor is who changed a ticket.
	MetaActor = "actor"
	// MetaSource is the tracker bridge a ticket change came from.
	MetaSource = "source"

	// MetaSuggestions, on Suggestions, is a JSON array of the suggested
	// replies (canned.Suggestion: article, title, name, text, learned).
	MetaSuggestions = "suggestions"
	// MetaArticle names knowledge base articles (insight/kb ids),
	// comma-separated: the one used on SuggestionUsed and on an agent's reply
	// made from it, those suggested on SuggestionIgnored.
	MetaArticle = "article"
	// MetaRank is the place of a used suggestion among those shown, from 1;
	// 0 for a canned answer an agent asked for by name.
	MetaRank = "rank"
	// MetaEdited is "true" on SuggestionUsed when the agent changed the text
	// before sending it.
	MetaEdited = "edited"

	// MetaEditOf, on an agent's reply, names the envelope id of the reply it
	// replaces (the agent edited it in the desk); on a customer's message, the
	// External.Message of the message the customer edited.
	MetaEditOf = "edit_of"
	// MetaDeleteOf, on an agent's reply without text, names the envelope id
	// of the reply the agent deleted.
	MetaDeleteOf = "delete_of"
	// MetaUnreachable, on a DeliveryRerouted or a DeliveryFailed the pipeline
	// raises, lists the identities passed over and why, as
	// "sms:+15551234567 (opted_out), ...".
	MetaUnreachable = "unreachable"
	// MetaError is why a delivery failed, in the provider's words.
	MetaError = "error"
	// MetaUpTo, on a Read event, is the seq the agent read up to.
	MetaUpTo = "up_to"
	// MetaAgentAvatar is the URL of the picture of the agent who wrote a
	// reply (the Slack desk takes it from the agent's profile); chat
	// channels show it beside MetaAgentName.
	MetaAgentAvatar = "agent_avatar"
	// MetaAgentsAvailable, on QueueAvailability, is how many of the queue's
	// agents are available with room for one more conversation.
	MetaAgentsAvailable = "agents_available"
	// MetaAgents, on QueueAvailability, is how many agents the queue lists.
	MetaAgents = "agents"
	// MetaOpen, on QueueAvailability, is "true" within the queue's business
	// hours, else "false".
	MetaOpen = "open"
	// MetaNextOpen, on QueueAvailability of a closed queue, is when it opens
	// next (RFC 3339).
	MetaNextOpen = "next_open"
	// MetaPrechat, on a web or app customer message, lists the fields the
	// visitor filled in the widget's pre-chat form, as "field=value" lines
	// (unverified: the visitor typed them).
	MetaPrechat = "prechat"
)

// FormatMarkdown is the MetaFormat of a reply whose Text is CommonMark, the one
// format desks write in; each channel renders it its own way.
const FormatMarkdown = "markdown"

// Values of MetaReason on ConversationRouted: why routing routed.
const (
	// ReasonRules: the routing rules decided, on the opening's first message.
	ReasonRules = "rules"
	// ReasonEscalation: the escalation scorer raised the priority or moved the
	// conversation.
	ReasonEscalation = "escalation"
	// ReasonSLABreach: a breached target moved it to the overflow queue.
	ReasonSLABreach = "sla_breach"
	// ReasonTransfer: an agent transferred it (ConversationTransfer); MetaAgent
	// is who.
	ReasonTransfer = "transfer"
)

// Values of MetaBy and MetaDesk for what omnigate's own components publish.
const (
	// ByRouting is routing.
	ByRouting = "routing"
	// ByTickets is the ticket service.
	ByTickets = "tickets"
)

// Reasons an identity cannot be reached (MetaReason of ContactUnreachable).
const (
	// ReasonBlocked: the customer blocked the sender (Telegram's 403, kicked).
	ReasonBlocked = "blocked"
	// ReasonBounced: mail to the address bounced for good (DSN 5.x.x).
	ReasonBounced = "bounced"
	// ReasonOptedOut: the customer opted out (SMS STOP, Twilio 21610).
	ReasonOptedOut = "opted_out"
	// ReasonOutsideWindow: WhatsApp's 24-hour window is closed and no
	// template is configured; the customer's next message opens it.
	ReasonOutsideWindow = "outside_window"
	// ReasonInvalid: the provider says the address does not exist.
	ReasonInvalid = "invalid"
)

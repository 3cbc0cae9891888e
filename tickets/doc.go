// Package tickets is omnigate's ticket system: tickets with a lifecycle kept in
// the store, created from the agent desk, by routing or through the admin API,
// bridged to external trackers, and customers kept informed on the channel they
// used last.
//
// # Model and lifecycle
//
// A Ticket has a number unique across replicas (#1042: a counter record in the
// store, incremented with compare-and-set), a subject, a status, a priority, an
// assignee, the requester (a snapshot of the contact), linked conversations,
// tags, custom fields, a due date and a log of every change (Events: who, when,
// what). Statuses move along a fixed table (Transitions):
//
//	new     -> open, pending, on-hold, solved, closed
//	open    -> pending, on-hold, solved, closed
//	pending -> open, on-hold, solved, closed
//	on-hold -> open, pending, solved, closed
//	solved  -> open (reopened), closed
//	closed  -> (final)
//
// Anything else is refused with a *TransitionError naming the allowed statuses.
// The due date is the SLA of the priority (Config.SLA) unless whoever creates or
// updates the ticket sets one; while it is the SLA's, a priority change moves it.
//
// Records (store.Records, JetStream KV or Redis alike): "tickets" holds the
// counter and "t:<number>"; "tickets_links" indexes conversations, contacts and
// trackers' ids; "tickets_idem" remembers idempotency keys; "tickets_outbox" holds
// a marker per change in flight.
//
// # Events
//
// Every change is written to the ticket with compare-and-set together with its
// log entry, then published: omni.evt.ticket.created, omni.evt.ticket.updated
// (meta "action" and "changes" say what) and omni.evt.ticket.commented, each with
// meta "ticket" (the number) and "seq" (the log entry), deduplicated by
// "ticket:<number>:<seq>". An outbox marker written before the change and removed
// after the publish lets any replica's sweep publish what a crashed one left.
// Durable consumers, shared by the replicas, act on the events:
//
//   - tickets-desk: a "ticket.updated" event on omni.desk.<desk> per linked
//     conversation, for every change, with meta ticket, status, previous_status,
//     priority, assignee, subject, tags, due_at, action, changes and actor, and
//     the change in words in Text, so a desk can update its card.
//   - tickets-notify: the customer is told (Config.Notify): an outbound message
//     about the customer's open (else latest linked) conversation, meta
//     "auto"="ticket", on the pipeline's reply path
//     (omni.in.tickets.<partition of the conversation>), which sends it on the
//     channel the customer used last and appends it to the transcript. Texts are templates per language
//     (English and Chinese built in), chosen by the contact's language attribute
//     or the language of the customer's messages.
//   - tickets-bridge-<name>: one per Bridge (see below).
//
// # Creation
//
// A desk's "ticket.create" event on omni.evt.ticket.create (Slack's Create
// ticket button and /omni ticket) is consumed by tickets-create: the ticket gets
// the conversation's contact as requester, the customer's last message as
// subject and the end of the transcript as description; a conversation that has
// an active ticket gets that one back (a desk event with action "exists" says
// so). Routing calls Service.Create or publishes the same event; the admin API
// posts to /api/tickets.
//
// # Replies and the survey
//
// tickets-replies reads every transcript (omni.conv.>). A customer's message in
// a conversation linked to a ticket (or, when the conversation has none, of a
// contact with tickets) reopens a solved ticket within Config.ReopenWindow and
// sets a pending one open. When the survey is on, solving a ticket asks the
// customer for a score; the next reply within the survey window that reads as
// one (1-5, "4/5", 满意, good, ...) is recorded on the ticket instead of
// reopening it.
//
// # Bridges
//
// A Bridge gets Created, Updated and Commented calls from its own durable
// consumer, with the bus's redelivery, backoff (Config.Bridge) and dead letters
// (omni.dlq.tickets-<name>). Two are built in: the generic signed webhook
// (package webhook) and Zendesk (package zendesk). Both take changes back:
// signed POSTs to /api/tickets/hooks/webhook and /api/tickets/hooks/zendesk.
// A change that came from a bridge is not sent back to it.
//
// # Admin API
//
// Handler serves /api/tickets (list, filter, create) and /api/tickets/{number}
// (read, PATCH) behind a bearer token; see docs/tickets.md.
package tickets

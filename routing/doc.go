// Package routing decides where each conversation goes and makes sure nobody
// waits unanswered: rules, queues, assignment, business hours, acknowledgements,
// SLA timers and escalation. docs/routing.md is the operator's guide with a
// full configuration example.
//
// # Flow
//
// A Router consumes the transcripts (durable "routing" on stream OMNI_CONV,
// omni.conv.>, starting at new messages when first created) and the events it
// commands and events it acts on (durable "routing-events" on OMNI_EVT:
// agent.away, agent.back, conversation.closed, and the desks' commands
// conversation.claim and conversation.transfer). Any
// number of Routers may share the durables; Config.Workers transcript entries
// are handled at once per replica.
//
// For a customer message (direction inbound) of a conversation's opening
// routing has not seen, the rules (Config.Rules, in order) decide the queue,
// priority, tags, skills and an optional auto-reply; the escalation scorer
// (Classifier; built-in Scorer for English and Chinese, or an HTTP hook) may
// raise the priority and move the conversation to a senior queue, on this or
// any later message. Routing alone writes Queue, Priority and Assignee on the
// conversation (store.SetRouting, compare-and-set), publishes
// "conversation.routed" on the queue's desk and on omni.evt
// (omni.desk.<desk>), and assigns by the queue's strategy: manual (agents
// claim), round_robin, least_active, sticky (the customer's previous agent) or
// skills. Assignment respects each agent's availability and capacity, kept in
// the store ("routing_agents") so replicas agree; with nobody available the
// conversation waits in the queue's backlog and is assigned when an agent comes
// back or frees a slot. Assignments publish "conversation.assigned" on the
// desk and on omni.evt.conversation.assigned (meta by=routing).
//
// Agents ask by command: "conversation.claim" (meta assignee, else From)
// assigns the conversation to them and is answered by "conversation.assigned"
// with meta by=<desk>; "conversation.transfer" (meta queue) moves it to
// another queue and is answered by "conversation.routed" with reason
// transfer and meta agent; a transfer to a queue routing does not know is
// answered by "command.rejected" on the desk it came from.
//
// A customer waits from their first unanswered message until an agent reply
// (direction outbound in the transcript; routing's own auto-replies, meta
// "auto", do not count). While they wait, durable timers run:
//
//   - ack: after the queue's ack_after, the ack template is sent on the
//     customer's own channel with the expected wait (the median of the queue's
//     recent response times, kept in "routing_stats"), once per wait;
//   - first_response and next_response: the queue's SLA targets for the
//     conversation's priority, counted in business time when the queue has
//     hours. On a breach routing publishes "sla.breached" on the desk (meta
//     mention=<group>) and on omni.evt.sla.breached, and moves the conversation
//     to the queue's overflow queue when it has one.
//
// A customer who writes while their queue is closed gets the out_of_hours
// template with the next opening, once per closed period, instead of an ack.
// Auto-replies are outbound envelopes (meta auto=ack|out_of_hours|<template>)
// that take the pipeline's reply path, published on
// omni.in.routing.<partition of the conversation>: the pipeline picks the
// customer's channel and identity, appends them to the transcript and echoes
// them to the desks.
//
// # Consistency
//
// Each conversation's routing state is one record ("routing_conv") changed
// only by compare-and-set. The conversation's queue, priority and assignee are
// not copied there: the conversation holds them, and a handler sees them
// through the state. Every handler and timer first records in the state what
// must happen (a change of queue, priority or assignee as a pending write with
// a revision, the flags that make each reply and breach happen once, the
// envelopes to publish in an outbox), then brings the rest in line: the
// conversation (a pending write older than what it holds is dropped), the
// agent's slot, the backlog, the timers, the outbox.
// Every step is idempotent, envelopes have ids derived from the conversation
// and the timer, and publishes carry deduplication ids, so a redelivery, a
// crash or two replicas racing change nothing twice. Waiting is derived from
// the stream sequences of the latest customer message and agent reply, which
// makes transcript entries handled out of order (replicas, Workers > 1) come
// out right.
//
// Timers are records ("routing_timers") with a due time. Every replica indexes
// those it armed and, every Config.TimerScan, all of them; the replica whose
// compare-and-set claim on a due timer wins fires it, and a claim left by a
// replica that died expires after two minutes. Firing re-checks the state (the
// customer still waits, the flag is not set), so a stale timer does nothing.
// Time comes from Options.Clock, which tests replace (routingtest.Clock).
package routing

// Package analytics measures how customers are served: conversations opened,
// answered, resolved and reopened; response, resolution and waiting times;
// SLA breaches, abandonment, CSAT, escalations, agent load, tickets, delivery
// failures, opt-outs, bounces and channel switches. docs/metrics.md defines
// every metric: what starts and stops each clock.
//
// The Analytics component reads the transcript stream (OMNI_CONV: every
// customer message and every reply) and the event stream (OMNI_EVT: closes,
// reopens, routing, assignment, SLA breaches, tickets, deliveries,
// reachability) and keeps, for each conversation and ticket, a compact
// timeline of what happened when. Reports aggregate the timelines on demand,
// by channel, queue, agent, tag, intent, hour or day.
//
// # Exactly once
//
// One replica at a time does the work, under a store lease. It applies the
// streams in sequence order and saves its whole state together with the last
// stream sequence applied from each stream, as one object in the JetStream
// object store (the checkpoint). A replica that takes over loads the
// checkpoint and resumes after those sequences: an envelope applied after the
// last checkpoint is applied again to the state that did not have it, so
// every envelope counts exactly once across restarts and replicas. Timelines
// older than the retention are dropped at each checkpoint.
//
// The state is owned by analytics; every other replica answers reports from
// the latest checkpoint.
package analytics

// Package pipeline is omnigate's session continuity: it turns what customers write
// on any channel into one conversation per customer, and what agents answer from a
// desk into replies on the channel the customer used last.
//
// # Flow
//
// Adapters publish to omni.in.<channel>.<partition> (stream OMNI_IN), the partition
// chosen from the sender (bus.SubjectIn). Run starts bus.Partitions durable
// consumers, "pipeline-0" to "pipeline-15", each on one partition with one message
// in flight (MaxAckPending 1), so one sender's messages are handled in order
// however many replicas share the durables, and different partitions in parallel.
// Every envelope is handled once per envelope id: a record in "pipeline_processed"
// (kept 7 days) is checked first and written last, and every publish carries a
// deduplication id derived from the envelope id ("conv:", "desk:<desk>:", "out:"
// + id), so a redelivery neither appends nor sends twice.
// What cannot be handled goes to omni.dlq.pipeline with the reason (bus.DeadLetters
// lists it, "omnigate dlq replay" sends it back).
//
// A customer message (kind message, direction inbound, on a customer channel) is:
//
//  1. resolved to a contact by its sender identity (From), which must be an
//     identity on the message's own channel;
//  2. linked: identities the message proves belong to the same customer are given
//     to the contact (see Linking below); when one already belongs to another
//     contact the two are merged (store.MergeContacts) and every desk gets a
//     "contact.merged" event;
//  3. put in the contact's conversation (store.FindOrOpenConversation: the open one,
//     else the last one reopened within Config.ReopenWindow, else a new one with
//     Previous set), whose LastChannel, LastIdentity and LastMessageAt are updated;
//  4. appended, with ContactID and ConversationID filled, to the transcript
//     omni.conv.<conversation> (read it with Transcript), and published to every
//     desk on omni.desk.<desk>, with meta "conversation_opened"="true" when the
//     message opened or reopened the conversation and "previous_conversation" when
//     a new conversation follows an earlier one.
//
// Every message to a customer takes one reply path: an outbound message (kind
// message, direction outbound, ConversationID set) that a desk (one of
// Config.Desks: an agent's reply) or a source (Sources: routing's
// acknowledgements and automatic replies, tickets' notices) publishes to
// omni.in.<desk or source>.<partition>, partitioned by conversation
// (bus.SubjectIn(desk, conversationID)) so that one conversation's replies and
// commands keep their order. The reply goes to the channel in meta
// "reply_via", else the channel the customer used last. The recipient comes
// from the contact's identities only, never from the message: the
// conversation's LastIdentity when it is on that channel, else the contact's
// first identity on that channel; To and External as the author wrote them are
// dropped (a Slack channel id must not reach Telegram as a chat id). The
// pipeline sets Channel, To, ContactID and meta "desk" (where it came from),
// appends the reply to the transcript, publishes it to omni.out.<channel> for
// the channel's adapter and echoes it to the desks it did not come from. A
// reply to a conversation that a merge closed goes to the conversation it was
// merged into.
//
// Commands from a desk (kind event on a desk channel, core/event), each
// answered with an event:
//
//   - "conversation.close" with ConversationID: closes the conversation;
//     answered by "conversation.closed" on omni.evt.conversation.closed.
//   - "conversation.reopen": reopens the contact's latest conversation when it
//     has no other open one; answered by "conversation.reopened" on
//     omni.evt.conversation.reopened, or "command.rejected" with the reason on
//     the desk's omni.desk.<desk>.
//   - "contact.link" with ConversationID and meta "identity" (e.g.
//     "sms:+15551234567"): an agent's explicit link of that identity to the
//     conversation's contact, merging contacts when the identity had another
//     one; answered by "contact.linked" on every desk.
//
// Any other command from a desk, and any command from a source, is
// dead-lettered.
//
// # Linking
//
// Identities are linked by exact, provable facts only. What an adapter puts in the
// envelope is trusted: an adapter must never pass a customer-controlled value
// under one of these meta keys.
//
//   - Phone numbers: the same E.164 address on the channels of
//     Config.PhoneChannels (serve lists the adapters whose Info says their
//     addresses are phone numbers: sms and whatsapp) is one customer. When
//     sms:+X writes and whatsapp:+X belongs to another contact, the two are merged.
//   - "verified_email"=<address>: email:<address> (domain lower-cased) is the
//     sender's. Like the two keys below, an adapter sets it only after checking a
//     signature made by the customer's own site (HMAC) over the value.
//   - "verified_phone"=<E.164 number>: <channel>:<number> on every phone channel
//     (sms:+X and whatsapp:+X) is the sender's.
//   - "verified_user"=<id>: user:<id>, the customer's account id on the site, is
//     the sender's. It is channel-independent on purpose: the web widget and the
//     mobile app of one site share accounts, so signing in on either lands in one
//     contact. The channel name "user" is reserved for these identities: no
//     message travels on it and no reply is sent to it. An unusable verified value
//     is logged and ignored; the message is still handled.
//   - Thread keys: an adapter puts the provider's thread key in External.Thread,
//     and further keys the message refers to in meta "thread_keys", comma-separated.
//     The email adapter puts the thread root's Message-ID in External.Thread and
//     the In-Reply-To and References ids, and the token of a plus-addressed reply
//     address (support+<token>@...), in "thread_keys". The pipeline records
//     "<channel>:<External.Thread>" -> conversation and contact (records
//     "pipeline_threads", Config.ThreadTTL); an inbound message carrying a known key, in
//     either place, belongs to that key's contact. A reply from another address in
//     the same email thread therefore joins the customer's contact.
//   - Agent links: the "contact.link" desk event above.
//
// When two contacts must become one, the older one (earlier CreatedAt, then lower
// id) survives, whichever replica or message finds out first, so concurrent
// discoveries merge in the same direction. Desks get a "contact.merged" event (kind
// event, ContactID the survivor, ConversationID the survivor's open conversation)
// with meta "contact" (survivor), "merged_contact" (the contact merged away),
// "conversation" (the open conversation, if any), "closed_conversation" (the merged
// contact's open conversation, closed into "conversation", if both had one),
// "moved"="true" when the merged contact's open conversation became the survivor's,
// and "reason" (phone, verified_email, verified_phone, verified_user, thread or
// agent). The same event is published on omni.evt.contact.merged.
//
// # Dead letters
//
// Reasons a message is dead-lettered at once: an envelope that does not decode
// (garbage, invalid or oversized fields, unknown version), "no sender identity", a
// sender identity on another channel than the message, "unknown channel" (a channel
// that is neither a desk nor in Config.Channels, when set), an event or an outbound
// message on a customer channel, an inbound message or an unknown event type from a
// desk, a reply or event whose conversation does not exist, and a reply to a
// contact that "has no <channel> identity". Store and bus errors are retried with
// the consumer's backoff.
package pipeline

package telegram

import (
	"fmt"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// chatMemberUpdated is the part of Telegram's ChatMemberUpdated (the
// my_chat_member update) the adapter reads: in a private chat Telegram sends
// it only when the customer blocks the bot (new status "kicked") or unblocks
// it ("member").
type chatMemberUpdated struct {
	Chat struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	} `json:"chat"`
	From struct {
		ID    int64 `json:"id"`
		IsBot bool  `json:"is_bot"`
	} `json:"from"`
	Date          int        `json:"date"`
	OldChatMember chatMember `json:"old_chat_member"`
	NewChatMember chatMember `json:"new_chat_member"`
}

// chatMember is the part of a ChatMember the adapter reads.
type chatMember struct {
	Status string `json:"status"`
}

// reasonUnblocked is the reason of the contact.reachable event a customer's
// unblocking the bot publishes.
const reasonUnblocked = "unblocked"

// memberEvent turns a my_chat_member update into a reachability event of the
// customer, telegram:<user id>: contact.unreachable (reason blocked) when
// they blocked the bot, contact.reachable (reason unblocked) when they
// unblocked it. External.Message "<chat>:my_chat_member:<update_id>"
// deduplicates Telegram's retries. The bot's membership of groups and
// channels concerns no customer: ignored.
func memberEvent(u *update) (*core.Message, string, error) {
	cm := u.MyChatMember
	if cm.Chat.Type != "private" {
		return nil, "bot membership of a " + strconv.Quote(cm.Chat.Type) + " chat", nil
	}
	if cm.Chat.ID == 0 || cm.From.ID <= 0 {
		return nil, "", fmt.Errorf("%w: my_chat_member without chat or user", errMalformed)
	}
	if cm.From.IsBot {
		return nil, "membership changed by a bot", nil
	}
	id := core.NewIdentity(Name, strconv.FormatInt(cm.From.ID, 10))
	var ev *core.Message
	switch {
	case cm.NewChatMember.Status == "kicked":
		ev = adapters.UnreachableEvent(Name, id, event.ReasonBlocked, "the customer blocked the bot")
	case cm.NewChatMember.Status == "member" && cm.OldChatMember.Status != "member":
		ev = adapters.ReachableEvent(Name, id, reasonUnblocked)
	default:
		return nil, "bot status " + strconv.Quote(cm.OldChatMember.Status) + " -> " + strconv.Quote(cm.NewChatMember.Status), nil
	}
	chat := strconv.FormatInt(cm.Chat.ID, 10)
	ev.External.Chat = chat
	ev.External.Message = chat + ":my_chat_member:" + strconv.Itoa(u.UpdateID)
	if cm.Date > 0 {
		ev.SentAt = time.Unix(int64(cm.Date), 0).UTC()
	}
	return ev, "", nil
}

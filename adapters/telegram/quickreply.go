package telegram

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// Quick replies. Send shows a reply's QuickReplies as an inline keyboard, one
// button per row, under the last part of the message. A button's
// callback_data is "q:<envelope id>:<index>" (31 bytes at most, of the 64
// Telegram allows), so a press names the reply and the choice without a
// lookup. The button's label comes from the message Telegram includes with
// the press; for a message too old for Telegram to include, from the record
// "qr_<envelope id>" that Send writes.
const (
	// choicePrefix starts the callback_data of a quick-reply button.
	choicePrefix = "q:"
	// keyboardTTL is how long a reply's quick replies are remembered.
	keyboardTTL = 30 * 24 * time.Hour
	// answerTimeout bounds answerCallbackQuery: Telegram drops an answer
	// that comes later than a few seconds after the press.
	answerTimeout = 5 * time.Second
)

// whyExpiredChoice is why a press on a quick-reply button the adapter cannot
// match with its reply is not published; the customer is told so.
const whyExpiredChoice = "quick reply no longer known"

// expiredChoiceNotice is what the customer sees after pressing such a button.
const expiredChoiceNotice = "This choice is no longer available. Please type your answer."

// keyboardRecord is what Send remembers of a reply's quick replies.
type keyboardRecord struct {
	// Chat is the chat the reply went to: a press elsewhere is not its.
	Chat int64 `json:"chat"`
	// Labels are the buttons' labels, as shown.
	Labels []string `json:"labels"`
}

func keyboardKey(id string) string { return "qr_" + id }

// choiceData is the callback_data of quick reply i of envelope id.
func choiceData(id string, i int) string { return choicePrefix + id + ":" + strconv.Itoa(i) }

// parseChoiceData reads choiceData's form back; anything else is not a quick
// reply of this adapter's.
func parseChoiceData(data string) (id string, i int, ok bool) {
	rest, found := strings.CutPrefix(data, choicePrefix)
	if !found {
		return "", 0, false
	}
	id, idx, found := strings.Cut(rest, ":")
	if !found || !core.ValidID(id) {
		return "", 0, false
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= core.MaxQuickReplies || strconv.Itoa(i) != idx {
		return "", 0, false
	}
	return id, i, true
}

// keyboard returns the inline keyboard offering m's quick replies and their
// labels as shown (trimmed), or nil when m has none. A blank label is m's
// fault: Telegram refuses buttons without text.
func keyboard(m *core.Message) (*tgbotapi.InlineKeyboardMarkup, []string, error) {
	if len(m.QuickReplies) == 0 {
		return nil, nil, nil
	}
	labels := make([]string, len(m.QuickReplies))
	rows := make([][]tgbotapi.InlineKeyboardButton, len(m.QuickReplies))
	for i, label := range m.QuickReplies {
		labels[i] = strings.TrimSpace(label)
		if labels[i] == "" {
			return nil, nil, fmt.Errorf("quick reply %d is blank", i)
		}
		rows[i] = tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData(labels[i], choiceData(m.ID, i)))
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(rows...)
	return &kb, labels, nil
}

// recordKeyboard remembers the quick replies of envelope id sent to chat. A
// store error is logged, not returned: the keyboard works without the record
// while Telegram includes the message with each press.
func (a *Adapter) recordKeyboard(ctx context.Context, id string, chat int64, labels []string) {
	if a.records == nil {
		return
	}
	_, err := a.records.Create(ctx, keyboardKey(id), keyboardRecord{Chat: chat, Labels: labels}, keyboardTTL)
	if err != nil && !errors.Is(err, store.ErrExists) {
		a.log.Warn("quick replies not recorded; presses on the message once it is old will not be understood", "msg_id", id, "err", err)
	}
}

// callbackIDRE is what a callback query id may look like (Telegram's are
// decimal): it becomes part of a deduplication header.
var callbackIDRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

func validCallbackID(id string) bool { return callbackIDRE.MatchString(id) }

// choice turns callback query cq, a press on a quick-reply button, into the
// customer's answer: an inbound message whose Text is the button's label,
// ReplyTo the reply that offered it, meta quick_reply, quick_reply_index and
// reply_to_external (the Telegram message with the keyboard), and
// External.Message "<chat>:callback:<query id>", so that Telegram's retries
// are stored once. A press on a button that is not a quick reply of this
// adapter's, or on one it cannot match with its reply, is ignored (the
// latter with whyExpiredChoice). An error is errMalformed or the store's.
func (a *Adapter) choice(ctx context.Context, cq *tgbotapi.CallbackQuery, allowGroups bool) (*core.Message, string, error) {
	if !validCallbackID(cq.ID) {
		return nil, "", fmt.Errorf("%w: callback query without a valid id", errMalformed)
	}
	if cq.From == nil || cq.From.ID <= 0 {
		return nil, "", fmt.Errorf("%w: callback query without sender", errMalformed)
	}
	if cq.From.IsBot {
		return nil, "pressed by a bot", nil
	}
	msg := cq.Message
	if msg == nil {
		return nil, "callback query from an inline message", nil
	}
	if msg.Chat == nil || msg.Chat.ID == 0 || msg.MessageID <= 0 {
		return nil, "", fmt.Errorf("%w: callback query message without chat or message_id", errMalformed)
	}
	if why := chatIgnored(msg.Chat, allowGroups); why != "" {
		return nil, why, nil
	}
	id, i, ok := parseChoiceData(cq.Data)
	if !ok {
		return nil, "callback data is not a quick reply", nil
	}
	label, ok := buttonLabel(msg, cq.Data)
	if !ok {
		var err error
		if label, ok, err = a.recordedLabel(ctx, id, i, msg.Chat.ID); err != nil {
			return nil, "", err
		}
	}
	if !ok {
		return nil, whyExpiredChoice, nil
	}

	chat := strconv.FormatInt(msg.Chat.ID, 10)
	m := core.NewMessage(core.KindMessage, core.Inbound, Name)
	m.From = core.NewIdentity(Name, strconv.FormatInt(cq.From.ID, 10))
	m.External.Chat = chat
	m.External.Message = chat + ":callback:" + cq.ID
	m.Text = core.Truncate(label, core.MaxTextBytes)
	m.ReplyTo = id
	if lc := cq.From.LanguageCode; languageRE.MatchString(lc) {
		m.Language = lc
	}
	m.Meta = senderMeta(cq.From, msg.Chat)
	m.Meta[metaQuickReply] = "true"
	m.Meta[metaQuickReplyIndex] = strconv.Itoa(i)
	m.Meta[metaReplyToExternal] = chat + ":" + strconv.Itoa(msg.MessageID)
	return m, "", nil
}

// buttonLabel finds the label of the button with callback data in the
// keyboard of msg, as Telegram includes it with a press.
func buttonLabel(msg *tgbotapi.Message, data string) (string, bool) {
	if msg.ReplyMarkup == nil {
		return "", false
	}
	for _, row := range msg.ReplyMarkup.InlineKeyboard {
		for _, b := range row {
			if b.CallbackData != nil && *b.CallbackData == data && strings.TrimSpace(b.Text) != "" {
				return b.Text, true
			}
		}
	}
	return "", false
}

// recordedLabel returns label i of the quick replies Send recorded for
// envelope id, if they went to chat.
func (a *Adapter) recordedLabel(ctx context.Context, id string, i int, chat int64) (string, bool, error) {
	if a.records == nil {
		return "", false, nil
	}
	var rec keyboardRecord
	_, err := a.records.Get(ctx, keyboardKey(id), &rec)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("telegram: quick replies: %w", err)
	}
	if rec.Chat != chat || i >= len(rec.Labels) {
		return "", false, nil
	}
	return rec.Labels[i], true, nil
}

// answerCallback answers callback query id, which stops the spinner on the
// customer's button; notice, when set, is shown to them. Telegram takes one
// answer per query, within seconds of the press, so it is answered even when
// the choice could not be stored (Telegram's retry then gets an error here,
// which is logged like any failure: the choice is stored either way). It
// outlives a cancelled ctx by up to answerTimeout, so that the webhook
// caller's hanging up does not leave the spinner turning.
func (a *Adapter) answerCallback(ctx context.Context, id, notice string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	defer cancel()
	if _, err := a.client(ctx).Request(tgbotapi.NewCallback(id, notice)); err != nil {
		a.log.Warn("callback query not answered", "err", a.errorf("answerCallbackQuery", err))
		return
	}
	a.log.Debug("callback query answered", "expired", notice != "")
}

package telegram

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Limits of files Telegram fetches from a URL (Bot API, sendPhoto and sendDocument).
const (
	maxPhotoURLBytes    = 5 << 20
	maxDocumentURLBytes = 20 << 20
)

// partTTL is how long a sent part of a message is remembered, so that a retry
// after a later part failed does not send it again.
const partTTL = 7 * 24 * time.Hour

// part is one Bot API call of a message: a text chunk or a file.
type part struct {
	chunk chunk
	file  tgbotapi.RequestFileData
	photo bool
}

// Send delivers m to the chat of m.External.Chat, or else of m.To
// (telegram:<user id>, whose private chat has the same id): its text in
// pieces of at most MaxMessageLength, then each attachment with sendPhoto or
// sendDocument by URL (or by Telegram file id for keys from FileKey). Parts
// already sent by an earlier attempt of the same envelope are skipped. The
// last part carries m.QuickReplies as an inline keyboard, one button per row,
// whose presses come back as the customer's choice (see choice).
//
// A 429 becomes adapters.RetryAfter with Telegram's retry_after; a 403 (the
// user blocked the bot) adapters.Unreachable (Permanent) wrapping ErrBlocked,
// which the runtime passes on as contact.unreachable, reason blocked; other
// 400s (chat not found, a bad file URL) Permanent; 401 and 5xx Unavailable;
// network errors plain errors.
func (a *Adapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	chatID, err := recipient(m)
	if err != nil {
		return adapters.Receipt{}, adapters.Permanent(err)
	}
	markdown := m.Meta[event.MetaFormat] == event.FormatMarkdown
	switch {
	case m.Meta[event.MetaEditOf] != "":
		return a.editReply(ctx, chatID, m.Meta[event.MetaEditOf], m.Text, markdown)
	case m.Meta[event.MetaDeleteOf] != "":
		return a.deleteReply(ctx, chatID, m.Meta[event.MetaDeleteOf])
	}
	var parts []part
	for _, c := range render(m.Text, markdown, MaxMessageLength) {
		parts = append(parts, part{chunk: c})
	}
	for i, att := range m.Attachments {
		p, err := filePart(att)
		if err != nil {
			return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("telegram: attachment %d: %w", i, err))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return adapters.Receipt{}, adapters.Permanent(errors.New("telegram: nothing to send: no text and no attachments"))
	}
	kb, labels, err := keyboard(m)
	if err != nil {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("telegram: %w", err))
	}
	var first string
	// Every part is remembered: a retry skips what went out, and an agent's
	// edit or deletion of the reply finds its messages.
	track := a.records != nil
	for i, p := range parts {
		key := "part_" + m.ID + "_" + strconv.Itoa(i)
		if track {
			id, ok, err := a.sentPart(ctx, key)
			if err != nil {
				return adapters.Receipt{}, err
			}
			if ok {
				first = cmp.Or(first, id)
				continue
			}
		}
		var markup *tgbotapi.InlineKeyboardMarkup
		if i == len(parts)-1 && kb != nil {
			markup = kb
			a.recordKeyboard(ctx, m.ID, chatID, labels)
		}
		sent, err := a.sendPart(ctx, chatID, p, markdown, markup)
		if err != nil {
			return adapters.Receipt{}, sendError(err)
		}
		id := strconv.FormatInt(chatID, 10) + ":" + strconv.Itoa(sent.MessageID)
		first = cmp.Or(first, id)
		if track {
			if _, err := a.records.Create(ctx, key, id, partTTL); err != nil && !errors.Is(err, store.ErrExists) {
				a.log.Warn("part sent but not recorded; a retry may send it again", "msg_id", m.ID, "part", i, "err", err)
			}
		}
	}
	return adapters.Receipt{ProviderID: first, Status: "sent", At: time.Now().UTC()}, nil
}

// editReply replaces the text of the reply whose envelope id is orig (its
// first message) with text, as the agent edited it: editMessageText. An edit
// longer than one message, or of a reply whose messages are not known, is
// Permanent, and the desk notes it.
func (a *Adapter) editReply(ctx context.Context, chatID int64, orig, text string, markdown bool) (adapters.Receipt, error) {
	chunks := render(text, markdown, MaxMessageLength)
	if len(chunks) != 1 {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("telegram: edit of %s: the new text needs %d messages; an edit changes one", orig, len(chunks)))
	}
	msgID, err := a.replyMessage(ctx, chatID, orig, 0)
	if err != nil {
		return adapters.Receipt{}, err
	}
	ec := tgbotapi.NewEditMessageText(chatID, msgID, chunks[0].text)
	if markdown {
		ec.ParseMode = tgbotapi.ModeMarkdownV2
	}
	if _, err := a.client(ctx).Send(ec); err != nil {
		if markdown && cannotParse(err) {
			ec.ParseMode, ec.Text = "", chunks[0].plain
			_, err = a.client(ctx).Send(ec)
		}
		if err != nil {
			return adapters.Receipt{}, sendError(a.errorf("editMessageText", err))
		}
	}
	return adapters.Receipt{ProviderID: strconv.FormatInt(chatID, 10) + ":" + strconv.Itoa(msgID), Status: "sent", At: time.Now().UTC()}, nil
}

// deleteReply deletes every message of the reply whose envelope id is orig:
// deleteMessage, as the agent deleted it in the desk.
func (a *Adapter) deleteReply(ctx context.Context, chatID int64, orig string) (adapters.Receipt, error) {
	for i := 0; ; i++ {
		msgID, err := a.replyMessage(ctx, chatID, orig, i)
		if i > 0 && bus.IsPermanent(err) {
			break // no more parts
		}
		if err != nil {
			return adapters.Receipt{}, err
		}
		if _, err := a.client(ctx).Request(tgbotapi.NewDeleteMessage(chatID, msgID)); err != nil {
			var te *tgbotapi.Error
			if errors.As(err, &te) && te.Code == 400 && strings.Contains(te.Message, "not found") {
				continue // deleted already, by an earlier attempt or the customer
			}
			return adapters.Receipt{}, sendError(a.errorf("deleteMessage", err))
		}
	}
	return adapters.Receipt{Status: "sent", At: time.Now().UTC()}, nil
}

// replyMessage returns the Telegram message id of part i of the reply whose
// envelope id is orig; a part the adapter has no record of is Permanent.
func (a *Adapter) replyMessage(ctx context.Context, chatID int64, orig string, i int) (int, error) {
	if a.records == nil {
		return 0, adapters.Permanent(errors.New("telegram: no store to find the reply's messages in"))
	}
	id, ok, err := a.sentPart(ctx, "part_"+orig+"_"+strconv.Itoa(i))
	if err != nil {
		return 0, err
	}
	chat, msg, found := strings.Cut(id, ":")
	n, perr := strconv.Atoi(msg)
	if !ok || !found || perr != nil || chat != strconv.FormatInt(chatID, 10) {
		return 0, adapters.Permanent(fmt.Errorf("telegram: reply %s part %d: not a message this adapter sent to chat %d", orig, i, chatID))
	}
	return n, nil
}

// sentPart reports whether the part stored under key was sent, and its id.
func (a *Adapter) sentPart(ctx context.Context, key string) (string, bool, error) {
	var id string
	_, err := a.records.Get(ctx, key, &id)
	switch {
	case err == nil:
		return id, true, nil
	case errors.Is(err, store.ErrNotFound):
		return "", false, nil
	}
	return "", false, fmt.Errorf("telegram: sent parts: %w", err)
}

// recipient returns the chat to send m to.
func recipient(m *core.Message) (int64, error) {
	addr := m.External.Chat
	if addr == "" {
		if m.To == "" {
			return 0, errors.New("telegram: no recipient: neither to nor external.chat is set")
		}
		if ch := m.To.Channel(); ch != Name {
			return 0, fmt.Errorf("telegram: recipient is a %s identity, want telegram:<user id>", ch)
		}
		addr = m.To.Address()
	}
	id, err := strconv.ParseInt(addr, 10, 64)
	if err != nil || id == 0 {
		return 0, errors.New("telegram: recipient is not a numeric chat id")
	}
	return id, nil
}

// sendPart makes the Bot API call of p, with the inline keyboard markup when
// it is not nil. A text Telegram cannot parse as MarkdownV2 is sent again as
// the plain text it shows.
func (a *Adapter) sendPart(ctx context.Context, chatID int64, p part, markdown bool, markup *tgbotapi.InlineKeyboardMarkup) (tgbotapi.Message, error) {
	bot := a.client(ctx)
	var c tgbotapi.Chattable
	op := "sendMessage"
	switch {
	case p.file != nil && p.photo:
		pc := tgbotapi.NewPhoto(chatID, p.file)
		pc.ReplyMarkup = markup
		c, op = pc, "sendPhoto"
	case p.file != nil:
		dc := tgbotapi.NewDocument(chatID, p.file)
		dc.ReplyMarkup = markup
		c, op = dc, "sendDocument"
	default:
		mc := tgbotapi.NewMessage(chatID, p.chunk.text)
		if markdown {
			mc.ParseMode = tgbotapi.ModeMarkdownV2
		}
		mc.ReplyMarkup = markup
		c = mc
	}
	sent, err := bot.Send(c)
	if err != nil && markdown && p.file == nil && cannotParse(err) {
		a.log.Warn("telegram refused the markdown; sending plain text", "err", err)
		mc := tgbotapi.NewMessage(chatID, p.chunk.plain)
		mc.ReplyMarkup = markup
		sent, err = bot.Send(mc)
	}
	if err != nil {
		return sent, a.errorf(op, err)
	}
	return sent, nil
}

func cannotParse(err error) bool {
	var te *tgbotapi.Error
	return errors.As(err, &te) && te.Code == 400 && strings.Contains(te.Message, "can't parse entities")
}

// sendError classifies a failed Bot API call for the runtime.
func sendError(err error) error {
	var te *tgbotapi.Error
	if !errors.As(err, &te) {
		return err // network, or a body that is not the Bot API's: retry
	}
	switch {
	case te.Code == 429 || te.RetryAfter > 0:
		d := time.Duration(te.RetryAfter) * time.Second
		if d <= 0 {
			d = time.Second
		}
		return adapters.RetryAfter(err, d)
	case te.Code == 403:
		return adapters.Unreachable(fmt.Errorf("telegram: send: %w (%s)", ErrBlocked, te.Message), event.ReasonBlocked)
	case te.Code == 400 && strings.Contains(strings.ToLower(te.Message), "chat not found"):
		return adapters.Permanent(fmt.Errorf("telegram: send: %w (%s)", ErrChatNotFound, te.Message))
	case te.Code == 400:
		if te.MigrateToChatID != 0 {
			return adapters.Permanent(fmt.Errorf("%w; the group is now supergroup %d", err, te.MigrateToChatID))
		}
		return adapters.Permanent(err)
	}
	if te.Code == 401 || te.Code >= 500 {
		// The token was revoked, or the Bot API is down: the message can go
		// once that is fixed.
		return adapters.Unavailable(err)
	}
	return err // 404, 409: retry, then dead-letter
}

// filePart chooses how to send att: by Telegram file id when its key is one
// of FileKey's, else by URL, which Telegram fetches itself.
func filePart(att core.Attachment) (part, error) {
	photo := isPhoto(att)
	if id, ok := FileID(att.Key); ok {
		return part{file: tgbotapi.FileID(id), photo: photo}, nil
	}
	if att.URL == "" {
		return part{}, errors.New("no URL Telegram can fetch (object-store keys are not supported)")
	}
	u, err := url.Parse(att.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return part{}, errors.New("url must be an absolute http(s) URL Telegram can fetch")
	}
	if photo && att.Size > maxPhotoURLBytes {
		photo = false // Telegram fetches larger images as documents
	}
	if att.Size > maxDocumentURLBytes {
		return part{}, fmt.Errorf("%d bytes, Telegram fetches at most %d from a URL", att.Size, maxDocumentURLBytes)
	}
	return part{file: tgbotapi.FileURL(att.URL), photo: photo}, nil
}

// isPhoto reports whether att goes out with sendPhoto: JPEG, PNG or WebP, by
// content type or, without one, by the URL's extension.
func isPhoto(att core.Attachment) bool {
	if att.ContentType != "" {
		mt, _, err := mime.ParseMediaType(att.ContentType)
		return err == nil && (mt == "image/jpeg" || mt == "image/png" || mt == "image/webp")
	}
	p := att.URL
	if u, err := url.Parse(att.URL); err == nil {
		p = u.Path
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".jpg", ".jpeg", ".png", ".webp":
		return true
	}
	return false
}

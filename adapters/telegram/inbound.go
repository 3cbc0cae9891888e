package telegram

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/event"
)

// SecretHeader carries webhook_secret on every webhook call from Telegram.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// maxUpdateBytes bounds a webhook body; updates are a few kilobytes.
const maxUpdateBytes = 1 << 20

// errMalformed marks an update Telegram would never send: answered 400.
var errMalformed = errors.New("malformed update")

func secretHash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// serveWebhook handles POST /channels/telegram/webhook: 401 without the
// right secret, 400 for a malformed update, 200 once the message is stored
// (or the update is one the adapter ignores), 503 when it could not be stored,
// so that Telegram retries.
func (a *Adapter) serveWebhook(w http.ResponseWriter, r *http.Request) {
	// Hashing first makes the comparison constant-time in the length too.
	got := secretHash(r.Header.Get(SecretHeader))
	if r.Header.Get(SecretHeader) == "" || subtle.ConstantTimeCompare(got[:], a.secret[:]) != 1 {
		edge.Reject(r, a.log, Name, edge.Signature, "webhook call without the right secret token", "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := edge.ReadBody(w, r, maxUpdateBytes)
	if err != nil {
		http.Error(w, "update not read: "+err.Error(), edge.Status(err))
		return
	}
	u, err := parseUpdate(body)
	if err != nil {
		a.log.Warn("malformed webhook update", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.handle(r.Context(), u); err != nil {
		if errors.Is(err, errMalformed) || errors.Is(err, core.ErrInvalid) {
			a.log.Warn("update refused", "update_id", u.UpdateID, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.log.Error("update not stored; Telegram will retry", "update_id", u.UpdateID, "err", err)
		http.Error(w, "not stored, retry", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handle publishes what update u carries, if anything, and answers a
// callback query whatever becomes of it, so that the customer's button stops
// spinning. Errors wrapping errMalformed or core.ErrInvalid are the update's
// fault; others are worth a retry.
func (a *Adapter) handle(ctx context.Context, u *update) error {
	m, why, err := a.inbound(ctx, u)
	if cq := u.CallbackQuery; cq != nil && validCallbackID(cq.ID) {
		notice := ""
		if why == whyExpiredChoice {
			notice = expiredChoiceNotice
		}
		defer a.answerCallback(ctx, cq.ID, notice)
	}
	if err != nil {
		return err
	}
	if m == nil {
		a.log.Debug("update ignored", "update_id", u.UpdateID, "why", why)
		return nil
	}
	dup, err := a.pub.Inbound(ctx, m)
	if err != nil {
		return err
	}
	a.log.Debug("update stored", "update_id", u.UpdateID, "msg_id", m.ID, "type", m.Type, "duplicate", dup)
	return nil
}

// inbound turns update u into the envelope to publish: a customer's message
// or edit, a quick-reply choice, or a reachability event. It returns nil and
// why for an update the adapter ignores, and an error wrapping errMalformed
// for one Telegram would not send; other errors are the store's.
func (a *Adapter) inbound(ctx context.Context, u *update) (*core.Message, string, error) {
	switch {
	case u.Message != nil || u.EditedMessage != nil:
		m, why, err := normalize(u, a.cfg.AllowGroups)
		if err != nil || m == nil || m.Meta[metaLiveLocation] == "" {
			return m, why, err
		}
		return a.throttleLive(ctx, u, m)
	case u.CallbackQuery != nil:
		return a.choice(ctx, u.CallbackQuery, a.cfg.AllowGroups)
	case u.MyChatMember != nil:
		return memberEvent(u)
	}
	return nil, "update kind not handled", nil
}

// update is the part of Telegram's Update the adapter reads. Decoding only
// these keeps an update kind this library version does not know from failing
// the whole update.
type update struct {
	UpdateID      int                     `json:"update_id"`
	Message       *tgbotapi.Message       `json:"message,omitempty"`
	EditedMessage *tgbotapi.Message       `json:"edited_message,omitempty"`
	CallbackQuery *tgbotapi.CallbackQuery `json:"callback_query,omitempty"`
	MyChatMember  *chatMemberUpdated      `json:"my_chat_member,omitempty"`
}

// Meta keys of inbound envelopes that only Telegram sets; docs/channels/telegram.md
// lists them with the others.
const (
	// metaEdited is "true" on an edit of a message the customer sent.
	metaEdited = "edited"
	// metaEditOf is the External.Message ("<chat id>:<message id>") of the
	// message an edit replaces.
	metaEditOf = event.MetaEditOf
	// metaReplyToExternal is the External.Message of the message this one
	// answers: a reply's, or the message whose quick reply was chosen.
	metaReplyToExternal = "reply_to_external"
	// metaQuickReply is "true" on a customer's quick-reply choice.
	metaQuickReply = "quick_reply"
	// metaQuickReplyIndex is the position (from 0) of the choice among the
	// QuickReplies of the message that offered it.
	metaQuickReplyIndex = "quick_reply_index"
	// metaLiveLocation is "active" on a live location (and each of its
	// updates), "stopped" on the update that ends it.
	metaLiveLocation = "live_location"
)

// parseUpdate decodes one update, as a webhook body or an element of
// getUpdates' result. The error wraps errMalformed.
func parseUpdate(data []byte) (*update, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("%w: not a json object", errMalformed)
	}
	var u update
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if u.UpdateID <= 0 {
		return nil, fmt.Errorf("%w: update_id missing", errMalformed)
	}
	return &u, nil
}

// deepLinkRE is Telegram's rule for a /start parameter.
var deepLinkRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// languageRE accepts IETF language tags such as "en" or "pt-br".
var languageRE = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// normalize turns the message or edited_message of update u into an inbound
// envelope. It returns nil and why for an update the adapter ignores (other
// update kinds, groups unless allowed, channels, bots, service messages), and
// an error wrapping errMalformed for one Telegram would not send. An edit is
// a message of its own, External.Message "<chat>:<id>:edit:<edit_date>", with
// meta edited and edit_of naming the message it replaces; a live location's
// updates are such edits.
func normalize(u *update, allowGroups bool) (m *core.Message, why string, err error) {
	msg, edited := u.Message, false
	if msg == nil {
		msg, edited = u.EditedMessage, true
	}
	if msg == nil {
		return nil, "not a message", nil
	}
	if msg.Chat == nil || msg.Chat.ID == 0 || msg.MessageID <= 0 {
		return nil, "", fmt.Errorf("%w: message without chat or message_id", errMalformed)
	}
	if why := chatIgnored(msg.Chat, allowGroups); why != "" {
		return nil, why, nil
	}
	if msg.From == nil {
		return nil, "no sender (anonymous admin or channel)", nil
	}
	if msg.From.ID <= 0 {
		return nil, "", fmt.Errorf("%w: sender without id", errMalformed)
	}
	if msg.From.IsBot {
		return nil, "sent by a bot", nil
	}

	chat := strconv.FormatInt(msg.Chat.ID, 10)
	m = core.NewMessage(core.KindMessage, core.Inbound, Name)
	m.From = core.NewIdentity(Name, strconv.FormatInt(msg.From.ID, 10))
	m.External.Chat = chat
	m.External.Message = chat + ":" + strconv.Itoa(msg.MessageID)
	meta := senderMeta(msg.From, msg.Chat)
	if msg.Date > 0 {
		m.SentAt = time.Unix(int64(msg.Date), 0).UTC()
	}
	if edited {
		meta[metaEdited] = "true"
		meta[metaEditOf] = m.External.Message
		m.External.Message += ":edit:" + strconv.Itoa(msg.EditDate)
		if msg.EditDate > 0 {
			m.SentAt = time.Unix(int64(msg.EditDate), 0).UTC()
		}
	}
	if lc := msg.From.LanguageCode; languageRE.MatchString(lc) {
		m.Language = lc
	}
	if msg.ForwardDate != 0 {
		meta["forwarded"] = "true"
	}
	if r := msg.ReplyToMessage; r != nil && r.MessageID > 0 {
		meta[metaReplyToExternal] = chat + ":" + strconv.Itoa(r.MessageID)
	}
	setMeta(meta, "media_group", msg.MediaGroupID)

	text := msg.Text
	if text == "" {
		text = msg.Caption
	}
	content := false
	if cmd, payload, ok := startCommand(msg.Text); ok && !edited {
		meta["command"] = cmd
		content = true
		text = ""
		if deepLinkRE.MatchString(payload) {
			meta["link_token"] = payload
		} else {
			text = payload
		}
	}
	var lines []string
	if text != "" {
		lines = append(lines, text)
	}
	m.Attachments = attachments(msg)
	if msg.Sticker != nil && text == "" && msg.Sticker.Emoji != "" {
		lines = append(lines, msg.Sticker.Emoji)
	}
	if msg.Location != nil || msg.Venue != nil {
		lines = append(lines, describeLocation(meta, msg, edited)...)
		content = true
	}
	if c := msg.Contact; c != nil {
		name := strings.TrimSpace(c.FirstName + " " + c.LastName)
		phone, valid := e164(c.PhoneNumber)
		switch {
		case c.UserID == msg.From.ID && valid && msg.ForwardDate == 0:
			// Telegram fills user_id only for the account the number belongs
			// to: the customer shared their own, verified number.
			meta["verified_phone"] = phone
		case valid:
			meta["shared_phone"] = phone
		default:
			setMeta(meta, "shared_phone", strings.TrimSpace(c.PhoneNumber))
		}
		setMeta(meta, event.MetaSharedName, name)
		lines = append(lines, strings.TrimSpace("Contact: "+strings.Trim(name+", "+phone, ", ")))
		content = true
	}
	m.Text = core.Truncate(strings.Join(lines, "\n"), core.MaxTextBytes)
	if m.Text == "" && len(m.Attachments) == 0 && !content {
		return nil, "no content the adapter handles", nil
	}
	if len(meta) > 0 {
		m.Meta = meta
	}
	return m, "", nil
}

// chatIgnored says why messages of chat are ignored, "" when they are not:
// private chats are served, groups and supergroups with allowGroups.
func chatIgnored(chat *tgbotapi.Chat, allowGroups bool) string {
	switch chat.Type {
	case "private":
	case "group", "supergroup":
		if !allowGroups {
			return "group chat (allow_groups is off)"
		}
	default:
		return "chat type " + strconv.Quote(chat.Type)
	}
	return ""
}

// senderMeta returns the meta every customer envelope carries about its
// sender and, in groups, its chat.
func senderMeta(from *tgbotapi.User, chat *tgbotapi.Chat) map[string]string {
	meta := map[string]string{}
	setMeta(meta, "username", from.UserName)
	setMeta(meta, event.MetaName, strings.TrimSpace(from.FirstName+" "+from.LastName))
	if chat.Type != "private" {
		meta["chat_type"] = chat.Type
		setMeta(meta, "chat_title", chat.Title)
	}
	return meta
}

// indefinitely is the live_period of a live location shared until the
// customer stops it.
const indefinitely = 0x7FFFFFFF

// describeLocation puts msg's location or venue in meta (lat, lon,
// horizontal_accuracy, heading, and for a live location live_location,
// live_period and live_until) and returns the lines of text that show it.
// An edit of a location is an update of a live one; without live_period it is
// the last, sent when the customer stopped sharing.
func describeLocation(meta map[string]string, msg *tgbotapi.Message, edited bool) []string {
	loc := location(msg)
	lat := strconv.FormatFloat(loc.Latitude, 'f', -1, 64)
	lon := strconv.FormatFloat(loc.Longitude, 'f', -1, 64)
	meta["lat"], meta["lon"] = lat, lon
	at := lat + ", " + lon
	if acc := loc.HorizontalAccuracy; acc > 0 {
		meta["horizontal_accuracy"] = strconv.FormatFloat(acc, 'f', -1, 64)
		at += " (±" + strconv.FormatFloat(math.Round(acc), 'f', 0, 64) + " m)"
	}
	if loc.Heading > 0 {
		meta["heading"] = strconv.Itoa(loc.Heading)
	}
	var where string
	switch {
	case msg.Venue != nil:
		v := msg.Venue
		setMeta(meta, "venue_title", v.Title)
		setMeta(meta, "venue_address", v.Address)
		where = "Venue: " + strings.Trim(strings.TrimSpace(v.Title)+", "+strings.TrimSpace(v.Address), ", ") + " (" + at + ")"
	case loc.LivePeriod > 0:
		meta[metaLiveLocation] = "active"
		meta["live_period"] = strconv.Itoa(loc.LivePeriod)
		if loc.LivePeriod != indefinitely && msg.Date > 0 {
			meta["live_until"] = time.Unix(int64(msg.Date)+int64(loc.LivePeriod), 0).UTC().Format(time.RFC3339)
		}
		where = "Live location: " + at
	case edited:
		meta[metaLiveLocation] = "stopped"
		where = "Live location (sharing ended): " + at
	default:
		where = "Location: " + at
	}
	return []string{where, "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lon}
}

// startCommand reads "/start", "/start <payload>" or "/start@bot <payload>".
func startCommand(text string) (cmd, payload string, ok bool) {
	head, rest, _ := strings.Cut(text, " ")
	name, _, _ := strings.Cut(head, "@")
	if name != "/start" {
		return "", "", false
	}
	return "start", strings.TrimSpace(rest), true
}

// location returns the message's location, a venue's included.
func location(msg *tgbotapi.Message) *tgbotapi.Location {
	if msg.Venue != nil {
		return &msg.Venue.Location
	}
	return msg.Location
}

// attachments lists the files of msg; their bytes stay at Telegram, named by
// FileKey (fetch them with FileURL).
func attachments(msg *tgbotapi.Message) []core.Attachment {
	var out []core.Attachment
	add := func(id, name, mimeType, fallbackType string, size int) {
		if id == "" {
			return
		}
		ct := fallbackType
		if mt, _, err := mime.ParseMediaType(mimeType); err == nil && strings.Contains(mt, "/") {
			ct = mimeType
		}
		out = append(out, core.Attachment{
			Name:        core.Truncate(cleanName(name), core.MaxAttachmentNameBytes),
			ContentType: ct,
			Size:        max(int64(size), 0),
			Key:         FileKey(id),
		})
	}
	if p := largest(msg.Photo); p != nil {
		add(p.FileID, "photo.jpg", "", "image/jpeg", p.FileSize)
	}
	switch {
	case msg.Animation != nil: // Telegram sets document too for animations
		add(msg.Animation.FileID, cmp.Or(msg.Animation.FileName, "animation.mp4"), msg.Animation.MimeType, "video/mp4", msg.Animation.FileSize)
	case msg.Document != nil:
		add(msg.Document.FileID, cmp.Or(msg.Document.FileName, "document"), msg.Document.MimeType, "application/octet-stream", msg.Document.FileSize)
	}
	if v := msg.Video; v != nil {
		add(v.FileID, cmp.Or(v.FileName, "video.mp4"), v.MimeType, "video/mp4", v.FileSize)
	}
	if v := msg.Voice; v != nil {
		add(v.FileID, "voice.ogg", v.MimeType, "audio/ogg", v.FileSize)
	}
	if v := msg.Audio; v != nil {
		add(v.FileID, cmp.Or(v.FileName, "audio.mp3"), v.MimeType, "audio/mpeg", v.FileSize)
	}
	if v := msg.VideoNote; v != nil {
		add(v.FileID, "video_note.mp4", "", "video/mp4", v.FileSize)
	}
	if s := msg.Sticker; s != nil {
		name, ct := "sticker.webp", "image/webp"
		if s.IsAnimated {
			name, ct = "sticker.tgs", "application/x-tgsticker"
		}
		add(s.FileID, name, "", ct, s.FileSize)
	}
	if len(out) > core.MaxAttachments {
		out = out[:core.MaxAttachments]
	}
	return out
}

// largest returns the biggest of a photo's sizes.
func largest(sizes []tgbotapi.PhotoSize) *tgbotapi.PhotoSize {
	var best *tgbotapi.PhotoSize
	for i := range sizes {
		p := &sizes[i]
		if p.FileID == "" {
			continue
		}
		if best == nil || p.Width*p.Height > best.Width*best.Height ||
			p.Width*p.Height == best.Width*best.Height && p.FileSize > best.FileSize {
			best = p
		}
	}
	return best
}

// e164 normalizes a phone number as Telegram shares it ("15551234567",
// "+1 555 123-4567") to E.164, and reports whether it is one.
func e164(phone string) (string, bool) {
	var b strings.Builder
	b.WriteByte('+')
	for i, c := range strings.TrimSpace(phone) {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			return "", false
		}
	}
	s := b.String()
	if n := len(s) - 1; n < 7 || n > 15 || s[1] == '0' {
		return "", false
	}
	return s, true
}

// setMeta sets meta[k] to v, cut to the envelope's limit, unless v is empty.
func setMeta(meta map[string]string, k, v string) {
	if v = strings.TrimSpace(v); v != "" {
		meta[k] = core.Truncate(v, core.MaxMetaValueBytes)
	}
}

// cleanName drops control characters and path separators from a file name.
func cleanName(s string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == '/' || c == '\\' {
			return -1
		}
		return c
	}, s)
}

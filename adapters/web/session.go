package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// visitor is an authenticated visitor: who they are on which site, and what
// their site vouched for.
type visitor struct {
	id    string
	site  *site
	user  string // verified claims, from an identity or from a token that carried them
	email string
	phone string
	token string // a fresh visitor token
	lang  string
	page  string
}

func (v *visitor) verified() bool { return v.user != "" }

func unavailable(msg string) *frameError {
	return &frameError{Code: codeUnavailable, Msg: msg, Status: http.StatusServiceUnavailable, RetryAfter: time.Second}
}

func tokenError(err error) *frameError {
	if errors.Is(err, errTokenExpired) {
		return &frameError{
			Code:   codeTokenExpired,
			Msg:    "visitor token expired: say hello without it",
			Status: http.StatusUnauthorized,
			Fatal:  true,
		}
	}
	return &frameError{
		Code:   codeTokenInvalid,
		Msg:    "visitor token is not valid: say hello without it",
		Status: http.StatusUnauthorized,
		Fatal:  true,
	}
}

var langRE = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$`)

// hello authenticates a hello frame: a site's signed identity, else a visitor
// token, else a new anonymous visitor; and checks the page's origin against
// the site. It returns the visitor with a renewed token.
func (a *Adapter) hello(ctx context.Context, r *http.Request, f *clientFrame) (*visitor, *frameError) {
	key, err := a.tokenKey(ctx)
	if err != nil {
		a.log.Warn("hello refused", "err", err)
		return nil, unavailable("try again later")
	}
	now := a.now()
	var claims *tokenClaims
	if f.VisitorToken != "" && f.Identity == nil {
		c, err := verifyToken(key, f.VisitorToken, now)
		if err != nil || c.Channel != a.name || (f.Site != "" && f.Site != c.Site) {
			if err == nil {
				err = errTokenInvalid
			}
			return nil, tokenError(err)
		}
		claims = &c
	}
	name := f.Site
	if name == "" && claims != nil {
		name = claims.Site
	}
	if name == "" {
		return nil, &frameError{Code: codeBadFrame, Msg: "site: required", Status: http.StatusBadRequest, Fatal: true}
	}
	s := a.sites[name]
	if s == nil {
		return nil, &frameError{Code: codeUnknownSite, Msg: "no such site", Status: http.StatusForbidden, Fatal: true}
	}
	if !a.originAllowed(r, r.Header.Get("Origin"), s) {
		return nil, &frameError{
			Code:   codeOriginForbidden,
			Msg:    "this page's origin may not use this site's chat",
			Status: http.StatusForbidden,
			Fatal:  true,
		}
	}
	v := &visitor{site: s}
	switch {
	case f.Identity != nil:
		id, err := verifyIdentity(s.secret, s.name, *f.Identity, a.cfg.IdentityMaxAge, now)
		if errors.Is(err, errIdentityExpired) {
			return nil, &frameError{
				Code:   codeIdentityExpired,
				Msg:    "identity claim expired: sign a fresh one",
				Status: http.StatusUnauthorized,
				Fatal:  true,
			}
		} else if err != nil {
			return nil, &frameError{
				Code:   codeIdentityInvalid,
				Msg:    "identity claim is not validly signed by the site",
				Status: http.StatusUnauthorized,
				Fatal:  true,
			}
		}
		v.id, v.user, v.email, v.phone = userVisitorID(s.accounts, id.UserID), id.UserID, id.Email, id.Phone
	case claims != nil:
		v.id, v.user, v.email, v.phone = claims.Visitor, claims.User, claims.Email, claims.Phone
	default:
		v.id = newVisitorID()
	}
	v.token = signToken(key, tokenClaims{
		Channel: a.name, Site: s.name, Visitor: v.id, User: v.user, Email: v.email, Phone: v.phone,
		Expires: now.Add(a.cfg.TokenTTL).Unix(),
	})
	if langRE.MatchString(f.Lang) {
		v.lang = f.Lang
	}
	if u, err := url.Parse(f.Page); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		v.page = core.Truncate(f.Page, maxPageBytes)
	}
	return v, nil
}

// bearer authenticates an HTTP request by its visitor token: the
// Authorization header ("Bearer <token>"), or the token query parameter where
// the client cannot set headers (EventSource).
func (a *Adapter) bearer(ctx context.Context, r *http.Request, query bool) (*visitor, *frameError) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && query {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		return nil, &frameError{
			Code:   codeTokenInvalid,
			Msg:    "a visitor token is required (POST hello gives one)",
			Status: http.StatusUnauthorized,
		}
	}
	key, err := a.tokenKey(ctx)
	if err != nil {
		a.log.Warn("request refused", "err", err)
		return nil, unavailable("try again later")
	}
	c, err := verifyToken(key, strings.TrimSpace(tok), a.now())
	if err == nil && c.Channel != a.name {
		err = errTokenInvalid
	}
	if err != nil {
		return nil, tokenError(err)
	}
	s := a.sites[c.Site]
	if s == nil {
		return nil, tokenError(errTokenInvalid) // a site removed from the config
	}
	if !a.originAllowed(r, r.Header.Get("Origin"), s) {
		return nil, &frameError{
			Code:   codeOriginForbidden,
			Msg:    "this page's origin may not use this site's chat",
			Status: http.StatusForbidden,
		}
	}
	return &visitor{id: c.Visitor, site: s, user: c.User, email: c.Email, phone: c.Phone}, nil
}

// welcome builds the answer to v's hello: the latest history, or everything
// after resumeAfter.
func (a *Adapter) welcome(ctx context.Context, v *visitor, resumeAfter *cursor) (*welcomeFrame, *frameError) {
	var (
		es   []entry
		more bool
		last uint64
		err  error
	)
	if resumeAfter != nil {
		es, more, last, err = a.hist.after(ctx, v.id, uint64(*resumeAfter), maxResume)
	} else {
		es, more, last, err = a.hist.before(ctx, v.id, 0, a.cfg.HistoryOnConnect)
	}
	if err != nil {
		a.log.Warn("history not read", "err", err)
		return nil, unavailable("history not available, try again later")
	}
	read, err := a.hist.readUpTo(ctx, v.id)
	if err != nil {
		a.log.Warn("read position not read", "err", err)
	}
	av := a.availability(ctx, v.site)
	w := &welcomeFrame{
		Type: typeWelcome, VisitorToken: v.token, Visitor: v.id, Site: v.site.name, Channel: a.name,
		Verified: v.verified(), AgentsOnline: av.Online, Availability: av,
		History: frames(es), More: more, LastSeq: last, ReadUpTo: read,
		Limits: limits{
			MaxTextBytes: core.MaxTextBytes, MaxUploadBytes: a.cfg.Uploads.MaxBytes,
			UploadTypes: a.cfg.Uploads.Types, MaxAttachments: core.MaxAttachments,
		},
	}
	return w, nil
}

func frames(es []entry) []messageFrame {
	out := make([]messageFrame, len(es))
	for i := range es {
		out[i] = es[i].frame()
	}
	return out
}

// receive takes a message the visitor wrote: it is published on the bus
// (answered only once JetStream has it), kept in the history and passed to
// every session of the visitor, the sender's included, which is the sender's
// acknowledgement. The same client_id again is the same message: it is
// answered with the stored one and not published twice.
func (a *Adapter) receive(ctx context.Context, v *visitor, f *clientFrame, base string) (*messageFrame, *frameError) {
	if ok, d := a.visitorLim.allow(v.id, 1, a.now()); !ok {
		return nil, &frameError{
			Code:       codeRateLimited,
			Msg:        "too many messages, slow down",
			Status:     http.StatusTooManyRequests,
			RetryAfter: d,
		}
	}
	clientID := f.ClientID
	if clientID == "" {
		clientID = core.NewID()
	}
	dedup := "c:" + clientID
	if prev, ok, err := a.hist.lookup(ctx, v.id, dedup); err != nil {
		a.log.Warn("message refused", "err", err)
		return nil, unavailable("try again later")
	} else if ok {
		fr := prev.frame()
		a.hub.send(ctx, v.id, outFrame{seq: prev.Seq, data: encodeFrame(fr)})
		return &fr, nil
	}
	atts, ferr := a.uploads.resolve(ctx, v.id, f.Attachments, base, a.name)
	if ferr != nil {
		return nil, ferr
	}

	m := core.NewMessage(core.KindMessage, core.Inbound, a.name)
	m.From = core.NewIdentity(a.name, v.id)
	// Scoped by visitor: another visitor cannot suppress this one's message by
	// sending the same client_id.
	m.External.Message = v.id + "/" + clientID
	m.Text = f.Text
	m.Language = v.lang
	m.Meta = map[string]string{MetaSite: v.site.name}
	if v.page != "" {
		m.Meta[MetaPageURL] = v.page
	}
	if v.user != "" {
		m.Meta[metaVerifiedUser] = v.site.accounts + ":" + v.user
	}
	if v.email != "" {
		m.Meta[metaVerifiedEmail] = v.email
	}
	if v.phone != "" {
		m.Meta[metaVerifiedPhone] = v.phone
	}
	a.visitorDetails(m, f)
	e := entry{ID: m.ID, ClientID: clientID, From: fromVisitor, Text: m.Text, At: m.ReceivedAt}
	for _, at := range atts {
		m.Attachments = append(m.Attachments, at)
		e.Attachments = append(e.Attachments, attachmentFrame{Name: at.Name, ContentType: at.ContentType, Size: at.Size, URL: at.URL})
	}
	if _, err := a.pub.Inbound(ctx, m); errors.Is(err, core.ErrInvalid) {
		return nil, &frameError{
			Code:   codeInvalidMessage,
			Msg:    "message refused: " + core.Truncate(err.Error(), 200),
			Status: http.StatusBadRequest,
		}
	} else if err != nil {
		a.log.Warn("inbound not published; the client will retry", "err", err)
		return nil, unavailable("message not stored, send it again")
	}
	stored, _, err := a.hist.append(ctx, v.id, dedup, &e)
	if err != nil {
		// Published but not in the history: the client retries with the same
		// client_id, the bus drops the copy, the history gets it.
		a.log.Warn("inbound not kept in history; the client will retry", "msg_id", m.ID, "err", err)
		return nil, unavailable("message not stored, send it again")
	}
	a.log.Debug("inbound", "msg_id", m.ID, "seq", stored.Seq)
	fr := stored.frame()
	a.hub.send(ctx, v.id, outFrame{seq: stored.Seq, data: encodeFrame(fr)})
	return &fr, nil
}

// visitorDetails puts on m what the visitor typed in the pre-chat or the
// offline form: the name (meta name), the email (meta contact_email, never
// verified), the further fields the config asks for (meta prechat). A message
// left in the offline form with offline_form "email" comes from the typed
// address, so that the conversation is that address's and replies go by
// email; the visitor's own history in the widget keeps it as well.
func (a *Adapter) visitorDetails(m *core.Message, f *clientFrame) {
	if name := strings.TrimSpace(f.Name); name != "" {
		m.Meta[event.MetaName] = name
	}
	if f.Email != "" {
		e, _ := normalizeEmail(f.Email) // checked by decodeFrame
		m.Meta[MetaContactEmail] = e
		if f.Offline && a.cfg.Widget.OfflineForm == OfflineEmail {
			m.From = core.NewIdentity("email", e)
		}
	}
	var lines []string
	for _, fd := range a.cfg.Widget.Prechat.Fields {
		if v := strings.TrimSpace(f.Fields[fd.Name]); v != "" {
			lines = append(lines, fd.Name+"="+strings.ReplaceAll(v, "\n", " "))
		}
	}
	if len(lines) > 0 {
		m.Meta[event.MetaPrechat] = strings.Join(lines, "\n")
	}
}

// maxReadScan bounds the entries read to find the agent message a read frame
// acknowledges.
const maxReadScan = 50

// read moves the visitor's read position, tells the visitor's other sessions
// (their unread badges) and publishes delivery.read for the newest agent
// message it covers.
func (a *Adapter) read(ctx context.Context, v *visitor, upTo uint64) *frameError {
	last, err := a.hist.last(ctx, v.id)
	if err != nil {
		return unavailable("try again later")
	}
	upTo = min(upTo, last)
	if upTo == 0 {
		return nil
	}
	prev, err := a.hist.readUpTo(ctx, v.id)
	if err != nil {
		return unavailable("try again later")
	}
	moved, err := a.hist.markRead(ctx, v.id, upTo)
	if err != nil {
		return unavailable("try again later")
	}
	if !moved {
		return nil
	}
	a.hub.send(ctx, v.id, outFrame{data: encodeFrame(readFrame{Type: typeRead, From: fromVisitor, UpTo: upTo})})
	lo := max(prev+1, upTo-min(upTo-1, maxReadScan-1))
	es, err := a.hist.fetch(ctx, v.id, lo, upTo)
	if err != nil {
		a.log.Warn("read receipt not published", "err", err)
		return nil
	}
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].From != fromAgent {
			continue
		}
		ev := core.NewMessage(core.KindEvent, core.Outbound, a.name)
		ev.Type = event.DeliveryRead
		ev.To = core.NewIdentity(a.name, v.id)
		ev.ReplyTo = es[i].ID
		ev.ConversationID = es[i].Conversation
		ev.ContactID = es[i].Contact
		ev.External.Message = es[i].ID + ":read"
		if err := a.pub.Event(ctx, ev); err != nil {
			a.log.Warn("read receipt not published", "err", err)
		}
		break
	}
	return nil
}

// historyPage answers a history request.
func (a *Adapter) historyPage(ctx context.Context, v *visitor, before, after cursor, limit int) (*historyFrame, *frameError) {
	if limit <= 0 {
		limit = defaultHistoryLimit
	}
	limit = min(limit, maxHistoryLimit)
	var (
		es   []entry
		more bool
		err  error
	)
	if after != 0 {
		es, more, _, err = a.hist.after(ctx, v.id, uint64(after), limit)
	} else {
		es, more, _, err = a.hist.before(ctx, v.id, uint64(before), limit)
	}
	if err != nil {
		a.log.Warn("history not read", "err", err)
		return nil, unavailable("history not available, try again later")
	}
	return &historyFrame{Type: typeHistory, Messages: frames(es), More: more}, nil
}

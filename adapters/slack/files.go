package slack

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/sign"
	"github.com/omnigate/omnigate/core/store"
)

// maxFileBytes bounds a file served from Slack.
const maxFileBytes = 100 << 20

// fileRecord is what "slack_conversations" keeps under "file:<id>" of a file
// an agent attached.
type fileRecord struct {
	URL         string `json:"url"`
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
}

// relayFiles turns an agent's Slack files into attachments. Slack's
// url_private needs the bot token, which customer channels do not have: with a
// public URL, an attachment links to /channels/slack/files/<id>/<name>, signed
// and expiring after file_link_ttl, where the adapter fetches it from Slack;
// without one it is url_private itself.
func (a *Adapter) relayFiles(ctx context.Context, files []slack.File) []core.Attachment {
	var out []core.Attachment
	for _, f := range files {
		name := f.Name
		if name == "" {
			name = cmp.Or(f.Title, f.ID)
		}
		if len(name) > core.MaxAttachmentNameBytes {
			name = truncateBytes(name, core.MaxAttachmentNameBytes)
		}
		att := core.Attachment{Name: name, Size: int64(max(f.Size, 0)), URL: f.URLPrivate}
		if validContentType(f.Mimetype) {
			att.ContentType = f.Mimetype
		}
		if a.fileURL != nil && validFileID(f.ID) {
			rec := fileRecord{URL: f.URLPrivate, Name: name, ContentType: att.ContentType}
			if _, err := a.convs.Create(ctx, "file:"+f.ID, rec, a.cfg.FileLinkTTL); err != nil && !errors.Is(err, store.ErrExists) {
				a.log.Warn("file link not recorded, relaying url_private", "file", f.ID, "err", err)
			} else {
				att.URL = a.signedFileURL(f.ID, name, time.Now().Add(a.cfg.FileLinkTTL))
			}
		}
		out = append(out, att)
	}
	return out
}

// validFileID reports whether id is a Slack file id (F...).
func validFileID(id string) bool {
	if len(id) < 2 || len(id) > 32 || id[0] != 'F' {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// signedFileURL is the link to file id, valid until exp.
func (a *Adapter) signedFileURL(id, name string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	q := url.Values{"exp": {e}, "sig": {a.fileSig(id, e)}}
	return a.fileURL("files/"+id+"/"+url.PathEscape(name)) + "?" + q.Encode()
}

// fileSig signs file id with expiry exp.
func (a *Adapter) fileSig(id, exp string) string {
	return hex.EncodeToString(sign.SHA256(a.fileKey[:], []byte(id+"\n"+exp)))
}

// serveFile serves GET /channels/slack/files/{id}/{name}?exp=..&sig=..: it
// checks the signature and expiry, then streams the file from Slack with the
// bot token.
func (a *Adapter) serveFile(w http.ResponseWriter, r *http.Request) {
	id, exp, sig := r.PathValue("id"), r.URL.Query().Get("exp"), r.URL.Query().Get("sig")
	e, err := strconv.ParseInt(exp, 10, 64)
	raw, herr := hex.DecodeString(sig)
	if err != nil || herr != nil || !sign.Check(sha256.New, a.fileKey[:], raw, []byte(id+"\n"+exp)) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if time.Now().Unix() > e {
		http.Error(w, "link expired", http.StatusGone)
		return
	}
	var rec fileRecord
	if _, err := a.convs.Get(r.Context(), "file:"+id, &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		a.log.Warn("file record", "file", id, "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, rec.URL, nil)
	if err != nil {
		http.Error(w, "bad file url", http.StatusBadGateway)
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.BotToken.Value())
	resp, err := a.hc.Do(req)
	if err != nil {
		a.log.Warn("file from slack", "file", id, "err", err)
		http.Error(w, "slack unavailable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.log.Warn("file from slack", "file", id, "status", resp.StatusCode)
		http.Error(w, "slack refused", http.StatusBadGateway)
		return
	}
	ct := cmp.Or(rec.ContentType, resp.Header.Get("Content-Type"))
	w.Header().Set("Content-Type", cmp.Or(ct, "application/octet-stream"))
	if resp.ContentLength > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(rec.Name))
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxFileBytes))
}

// truncateBytes cuts s to at most n bytes on a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.TrimSpace(s)
}

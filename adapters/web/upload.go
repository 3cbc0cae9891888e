package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/store"
)

// Uploads live in the store (records bucket <channel>_uploads), so every
// replica serves them: the metadata under the upload id, the bytes in chunks
// under "<id>-<n>", written first. They expire with the history.

// chunkBytes is the size of one stored chunk: well below any backend's value
// limit once base64-encoded in JSON.
const chunkBytes = 256 << 10

// maxConcurrentUploads bounds the uploads in progress at once, per replica;
// each holds one chunk in memory.
const maxConcurrentUploads = 8

type uploadStore struct {
	rec *store.Records
	ttl time.Duration
}

type uploadMeta struct {
	Visitor     string    `json:"visitor"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Chunks      int       `json:"chunks"`
	At          time.Time `json:"at"`
}

type uploadChunk struct {
	Data []byte `json:"data"`
}

// uploadResult answers POST uploads.
type uploadResult struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

var uploadIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newUploadID returns 128 random bits as 26 characters: an upload's URL is its
// only key.
func newUploadID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return uploadIDEncoding.EncodeToString(b)
}

func chunkKey(id string, n int) string { return fmt.Sprintf("%s-%d", id, n) }

// Errors of uploadStore.write besides the store's.
var (
	errUploadTooLarge = errors.New("web: upload: file too large")
	errUploadRead     = errors.New("web: upload: read")
)

// write streams src into the store, one chunk at a time, holding no more
// than one chunk in memory, and then stores meta (Size, Chunks and
// ContentType filled) under a new id, which it returns. sniff tells the
// content type from the first chunk, or refuses the file with its frame
// error, before anything is stored. A file over limit bytes is
// errUploadTooLarge, a read error of src wraps errUploadRead; on any error
// what was stored is deleted.
func (u *uploadStore) write(ctx context.Context, src io.Reader, limit int64, meta uploadMeta, sniff func(head []byte) (string, *frameError)) (string, uploadMeta, error) {
	buf := make([]byte, chunkBytes)
	id := newUploadID()
	stored := 0
	defer func() {
		if stored < 0 {
			return // kept
		}
		// Without the request's cancellation: a client gone must not leave
		// the chunks behind (they would expire with the history, but take
		// room until then).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for n := range stored {
			_ = u.rec.Delete(dctx, chunkKey(id, n), 0)
		}
	}()
	for {
		n, end, err := fill(src, buf)
		if err != nil {
			return "", meta, fmt.Errorf("%w: %w", errUploadRead, err)
		}
		if meta.Size += int64(n); meta.Size > limit {
			return "", meta, errUploadTooLarge
		}
		if stored == 0 {
			ct, ferr := sniff(buf[:n])
			if ferr != nil {
				return "", meta, ferr
			}
			meta.ContentType = ct
		}
		if n > 0 {
			if _, err := u.rec.Create(ctx, chunkKey(id, stored), uploadChunk{Data: buf[:n]}, u.ttl); err != nil {
				return "", meta, fmt.Errorf("web: upload: %w", err)
			}
			stored++
		}
		if end {
			break
		}
	}
	meta.Chunks = stored
	if _, err := u.rec.Create(ctx, id, meta, u.ttl); err != nil {
		return "", meta, fmt.Errorf("web: upload: %w", err)
	}
	stored = -1
	return id, meta, nil
}

// fill reads src into buf until buf is full or src ends; end reports the
// end (io.EOF). An io.ErrUnexpectedEOF of src (a truncated multipart body)
// is an error, not the end.
func fill(src io.Reader, buf []byte) (n int, end bool, err error) {
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, true, nil
		} else if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// meta returns an upload's metadata, or an error matching store.ErrNotFound.
func (u *uploadStore) meta(ctx context.Context, id string) (uploadMeta, error) {
	var m uploadMeta
	_, err := u.rec.Get(ctx, id, &m)
	return m, err
}

// read returns an upload's bytes.
func (u *uploadStore) read(ctx context.Context, id string, m uploadMeta) ([]byte, error) {
	out := make([]byte, 0, m.Size)
	for n := range m.Chunks {
		var c uploadChunk
		if _, err := u.rec.Get(ctx, chunkKey(id, n), &c); err != nil {
			return nil, err
		}
		out = append(out, c.Data...)
	}
	if int64(len(out)) != m.Size {
		return nil, fmt.Errorf("web: upload %s: %d bytes stored, %d expected", id, len(out), m.Size)
	}
	return out, nil
}

// resolve turns the upload ids of a message frame into attachments; each must
// be an upload of the visitor's own.
func (u *uploadStore) resolve(ctx context.Context, visitor string, refs []attachmentRef, base, channel string) ([]core.Attachment, *frameError) {
	var out []core.Attachment
	for _, ref := range refs {
		m, err := u.meta(ctx, ref.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && m.Visitor != visitor) {
			return nil, &frameError{Code: codeUnknownUpload, Msg: "no such upload: upload the file first", Status: http.StatusBadRequest}
		} else if err != nil {
			return nil, unavailable("try again later")
		}
		out = append(out, core.Attachment{Name: m.Name, ContentType: m.ContentType, Size: m.Size, URL: uploadURL(base, channel, ref.ID)})
	}
	return out, nil
}

func uploadURL(base, channel, id string) string {
	return base + "/channels/" + channel + "/uploads/" + id
}

// serveUpload is POST uploads: one file, as the "file" part of a
// multipart/form-data body or as the raw body (name in ?name=). Its type is
// sniffed from its bytes and must be allowed; it answers the upload's id, to
// put in a message frame's attachments.
func (a *Adapter) serveUpload(w http.ResponseWriter, r *http.Request) {
	v, ok := a.authorize(w, r, false)
	if !ok {
		return
	}
	if ok, d := a.visitorLim.allow(v.id, 1, a.now()); !ok {
		writeError(w, r, &frameError{Code: codeRateLimited, Msg: "too many uploads, slow down", Status: http.StatusTooManyRequests, RetryAfter: d})
		return
	}
	select {
	case a.uploadSlots <- struct{}{}:
		defer func() { <-a.uploadSlots }()
	default:
		writeError(w, r, unavailable("too many uploads at once, try again"))
		return
	}
	limit := a.cfg.Uploads.MaxBytes
	tooLarge := &frameError{Code: codeTooLarge, Msg: fmt.Sprintf("files are at most %d bytes", limit), Status: http.StatusRequestEntityTooLarge}
	const framing = 64 << 10 // room for the multipart framing
	if r.ContentLength > limit+framing {
		// Refused before a byte of it is read.
		w.Header().Set("Connection", "close")
		writeError(w, r, tooLarge)
		return
	}
	var (
		src  io.Reader = edge.LimitBody(w, r, limit+framing)
		name           = r.URL.Query().Get("name")
	)
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		if params["boundary"] == "" {
			writeError(w, r, badFrame("malformed multipart body"))
			return
		}
		mr := multipart.NewReader(src, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				ferr := bodyError(err, tooLarge.Msg)
				if ferr.Status == http.StatusBadRequest {
					ferr = badFrame("no \"file\" part")
				}
				writeError(w, r, ferr)
				return
			}
			if p.FormName() == "file" {
				src, name = p, p.FileName()
				break
			}
		}
	}
	id, meta, err := a.uploads.write(r.Context(), src, limit, uploadMeta{Visitor: v.id, Name: cleanFileName(name), At: a.now().UTC()}, a.sniffUpload)
	if err != nil {
		ferr, ok := errors.AsType[*frameError](err)
		switch {
		case ok:
		case errors.Is(err, errUploadTooLarge):
			ferr = tooLarge
		case errors.Is(err, errUploadRead):
			ferr = bodyError(err, tooLarge.Msg)
		default:
			a.log.Warn("upload not stored", "err", err)
			ferr = unavailable("upload not stored, try again")
		}
		writeError(w, r, ferr)
		return
	}
	writeJSON(w, http.StatusCreated, uploadResult{ID: id, URL: uploadURL(a.baseURL(r), a.name, id), Name: meta.Name, ContentType: meta.ContentType, Size: meta.Size})
}

// sniffUpload tells an upload's type from its first bytes, head, and
// refuses an empty file or one of a type not accepted.
func (a *Adapter) sniffUpload(head []byte) (string, *frameError) {
	if len(head) == 0 {
		return "", badFrame("empty file")
	}
	ct, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	if ct == "text/plain" && bytes.HasPrefix(bytes.TrimSpace(head), []byte("<")) {
		ct = "text/xml" // markup the sniffer does not know (SVG): never accepted
	}
	if !slices.Contains(a.cfg.Uploads.Types, ct) || risky(ct) {
		return "", &frameError{Code: codeUnsupportedMedia, Msg: fmt.Sprintf("files of type %s are not accepted", ct), Status: http.StatusUnsupportedMediaType}
	}
	return ct, nil
}

// cleanFileName keeps the base name of what the client called the file,
// without control characters, within core.MaxAttachmentNameBytes.
func cleanFileName(s string) string {
	s = path.Base(strings.ReplaceAll(s, "\\", "/"))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' {
			return -1
		}
		return r
	}, s)
	s = core.Truncate(strings.TrimSpace(s), core.MaxAttachmentNameBytes)
	if s == "" || s == "." || s == "/" {
		return "upload"
	}
	return s
}

// inlineTypes are shown in the browser; everything else is downloaded.
var inlineTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// serveUploaded is GET uploads/{id}: the file, with its sniffed type, never
// sniffed again by the browser (nosniff), downloaded unless it is a picture,
// and sandboxed by CSP should a browser render it anyway.
func (a *Adapter) serveUploaded(w http.ResponseWriter, r *http.Request) {
	if !a.limitIP(w, r) {
		return
	}
	id := r.PathValue("id")
	if !uploadIDRE.MatchString(id) {
		writeError(w, r, &frameError{Code: codeNotFound, Msg: "no such upload", Status: http.StatusNotFound})
		return
	}
	m, err := a.uploads.meta(r.Context(), id)
	var data []byte
	if err == nil {
		data, err = a.uploads.read(r.Context(), id, m)
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, &frameError{Code: codeNotFound, Msg: "no such upload", Status: http.StatusNotFound})
		return
	} else if err != nil {
		a.log.Warn("upload not read", "err", err)
		writeError(w, r, unavailable("try again later"))
		return
	}
	h := w.Header()
	ct := m.ContentType
	if strings.HasPrefix(ct, "text/") {
		ct += "; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	disposition := "attachment"
	if slices.Contains(inlineTypes, m.ContentType) {
		disposition = "inline"
	}
	cd := mime.FormatMediaType(disposition, map[string]string{"filename": m.Name})
	if cd == "" {
		cd = disposition
	}
	h.Set("Content-Disposition", cd)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", m.At, bytes.NewReader(data))
}

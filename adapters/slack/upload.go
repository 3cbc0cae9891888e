package slack

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// errTooLarge is why a customer's file is shown as a link: it is larger
// than max_upload_bytes.
var errTooLarge = errors.New("too large")

// postFile shows a customer's attachment p.file in thread th: uploaded into
// the thread with files upload v2 (files.getUploadURLExternal, the upload,
// files.completeUploadExternal) when it can be fetched and is at most
// max_upload_bytes, else as a link with a note saying why. It returns what
// the part is recorded as: "file:<id>" of the upload, or the ts of the
// message with the link. Only a rate limit or the end of ctx fails it: the
// message is tried again; any other failure shows the link.
func (a *Adapter) postFile(ctx context.Context, th thread, p part) (string, error) {
	att := *p.file
	if !httpURL(att.URL) {
		return a.postLink(ctx, th, p, "")
	}
	why := "uploads are off (max_upload_bytes: -1)"
	if a.cfg.MaxUploadBytes >= 0 {
		id, err := a.upload(ctx, th, p)
		switch {
		case err == nil:
			return "file:" + id, nil
		case ctx.Err() != nil:
			return "", ctx.Err()
		case isRateLimited(err):
			return "", apiError("files upload", err)
		case retryLater(err):
			return "", err
		case errors.Is(err, errTooLarge):
			why = "larger than the " + humanSize(a.cfg.MaxUploadBytes) + " upload limit"
		default:
			why = err.Error()
		}
		a.log.Warn("customer file not uploaded, shown as a link", "err", why, "size", att.Size)
	}
	return a.postLink(ctx, th, p, why)
}

// upload fetches the file at p.file.URL (without credentials: it is the
// channel's public or signed link) and uploads it into thread th, returning
// Slack's file id. A file of unknown length is read into memory, at most
// max_upload_bytes of it; one whose length the answer gives is streamed.
func (a *Adapter) upload(ctx context.Context, th thread, p part) (string, error) {
	att := *p.file
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, att.URL, nil)
	if err != nil {
		return "", errors.New("not fetched: the link is not a valid URL")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("not fetched: %s", fetchError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("not fetched: the channel's link answered HTTP %d", resp.StatusCode)
	}
	limit := a.cfg.MaxUploadBytes
	size := resp.ContentLength
	var body io.Reader
	switch {
	case size > limit:
		return "", errTooLarge
	case size >= 0:
		body = io.LimitReader(resp.Body, size)
	default:
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return "", fmt.Errorf("not fetched: %s", fetchError(err))
		}
		if int64(len(data)) > limit {
			return "", errTooLarge
		}
		size, body = int64(len(data)), bytes.NewReader(data)
	}
	if size == 0 {
		return "", errors.New("the file is empty")
	}
	if err := a.limits.wait(ctx, th.channel); err != nil {
		return "", err
	}
	name := fileName(att)
	f, err := a.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader:          body,
		FileSize:        int(size),
		Filename:        name,
		Title:           name,
		Channel:         th.channel,
		ThreadTimestamp: th.ts,
		InitialComment:  ":paperclip: " + escapeMrkdwn(p.username) + " sent " + escapeMrkdwn(name) + fileDesc(att, size),
	})
	if err != nil {
		if isRateLimited(err) {
			return "", err
		}
		return "", fmt.Errorf("the upload to Slack failed (%s)", slackReason(err))
	}
	return f.ID, nil
}

// postLink posts the link line of attachment p.file in thread th under the
// customer's name, with the note why when it is set, and returns its ts.
func (a *Adapter) postLink(ctx context.Context, th thread, p part, why string) (string, error) {
	text := attachmentLines([]core.Attachment{*p.file})
	if why != "" {
		text += "\n_Not uploaded to Slack: " + escapeMrkdwn(why) + "._"
	}
	opts := []slack.MsgOption{slack.MsgOptionTS(th.ts), slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl()}
	if p.username != "" {
		opts = append(opts, slack.MsgOptionUsername(p.username), slack.MsgOptionIconEmoji(p.icon))
	}
	return a.post(ctx, th.channel, opts...)
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// fileName is the name an attachment is uploaded as.
func fileName(att core.Attachment) string {
	return cmp.Or(strings.TrimSpace(att.Name), "attachment")
}

// fileDesc describes an uploaded file for the thread: " (type, size)".
func fileDesc(att core.Attachment, size int64) string {
	var desc []string
	if att.ContentType != "" {
		desc = append(desc, escapeMrkdwn(att.ContentType))
	}
	desc = append(desc, humanSize(size))
	return " (" + strings.Join(desc, ", ") + ")"
}

// fetchError says why a file could not be fetched without repeating its URL,
// which may carry an account's ids.
func fetchError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// slackReason is Slack's error code in err, or err itself.
func slackReason(err error) string {
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return se.Err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return strconv.Quote(err.Error())
}

// retryLater reports whether err asks for the message to be tried again
// later (the channel's token bucket is empty).
func retryLater(err error) bool {
	_, ok := bus.RetryDelay(err)
	return ok
}

// isRateLimited reports whether err is Slack's 429.
func isRateLimited(err error) bool {
	_, ok := errors.AsType[*slack.RateLimitedError](err)
	return ok
}

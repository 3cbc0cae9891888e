package telegram

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// fileKeyPrefix starts the Attachment.Key of a file kept by Telegram.
const fileKeyPrefix = "telegram:file:"

// FileKey is the Attachment.Key of the Telegram file fileID:
// "telegram:file:<file_id>".
func FileKey(fileID string) string { return fileKeyPrefix + fileID }

// FileID returns the Telegram file id in an Attachment.Key made by FileKey.
func FileID(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, fileKeyPrefix)
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

// FileURL asks Telegram (getFile) where to download a file and returns the
// URL, valid for at least an hour. fileID is a file id or a key from FileKey.
// The URL contains the bot token: hand it to an HTTP client, never to a log
// or a customer. Telegram serves files of at most 20 MB this way.
func (a *Adapter) FileURL(ctx context.Context, fileID string) (string, error) {
	if id, ok := FileID(fileID); ok {
		fileID = id
	}
	if fileID == "" {
		return "", errors.New("telegram: getFile: empty file id")
	}
	pattern, ok := fileEndpoint(a.cfg.APIEndpoint)
	if !ok {
		return "", errors.New("telegram: getFile: api_endpoint does not end in /bot%s/%s, so the file URL is unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	f, err := a.client(ctx).GetFile(tgbotapi.FileConfig{FileID: fileID})
	if err != nil {
		return "", a.errorf("getFile", err)
	}
	if f.FilePath == "" {
		return "", errors.New("telegram: getFile: no file_path in the answer")
	}
	return fmt.Sprintf(pattern, a.cfg.Token.Value(), f.FilePath), nil
}

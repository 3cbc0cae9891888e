package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/omnigate/omnigate/core"
)

// cursor is where the next page of a list starts, handed to clients as the
// opaque "next": base64url of a small JSON document, so its shape can change
// without breaking clients that pass it back unread.
type cursor struct {
	// Before is the conversation id the next page of conversations ends
	// below (newest first).
	Before string `json:"b,omitempty"`
	// After is the stream sequence the next page of a transcript starts after.
	After uint64 `json:"a,omitempty"`
}

// errCursor is the one error of decodeCursor: the client changed or made up
// a cursor.
var errCursor = errors.New(`next: not a cursor this API gave out: pass "next" back unchanged, or leave it out to start again`)

// maxCursorBytes bounds an encoded cursor.
const maxCursorBytes = 256

// encode returns the cursor as a client sees it.
func (c cursor) encode() string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodeCursor parses a "next" parameter; "" is the first page.
func decodeCursor(s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	if len(s) > maxCursorBytes {
		return c, errCursor
	}
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return c, errCursor
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return cursor{}, errCursor
	}
	if c.Before != "" && !core.ValidID(c.Before) {
		return cursor{}, errCursor
	}
	return c, nil
}

// pageParams reads a list's "limit" (def when absent, at most max) and
// "next" parameters.
func pageParams(q url.Values, def, max int) (int, cursor, error) {
	limit, err := parseLimit(q.Get("limit"), def, max)
	if err != nil {
		return 0, cursor{}, err
	}
	c, err := decodeCursor(q.Get("next"))
	return limit, c, err
}

// parseLimit parses a "limit" parameter: def when empty, at most max.
func parseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errors.New("limit: want a positive whole number, at most " + strconv.Itoa(max))
	}
	return min(n, max), nil
}

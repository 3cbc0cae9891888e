package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// history is the per-visitor message log that welcome, history and resume read:
// what the visitor wrote and what agents answered on this channel, numbered by
// a per-visitor sequence (seq). It lives in the store, so every replica sees
// the same log and it survives restarts; records expire after history_ttl.
//
// Keys of the records bucket <channel>_log:
//
//	h-<visitor>            head: the last seq handed out
//	m-<visitor>-<seq>      one entry
//	i-<visitor>-<hash>     dedup index: client_id or envelope id -> seq
//	r-<visitor>            read position of the visitor
type history struct {
	rec *store.Records
	ttl time.Duration
}

// entry is one message of the log, as stored.
type entry struct {
	Seq          uint64            `json:"seq"`
	ID           string            `json:"id"`
	ClientID     string            `json:"client_id,omitempty"`
	From         string            `json:"from"`
	Agent        string            `json:"agent,omitempty"`
	Avatar       string            `json:"avatar,omitempty"`
	Auto         string            `json:"auto,omitempty"`
	Text         string            `json:"text,omitempty"`
	Attachments  []attachmentFrame `json:"attachments,omitempty"`
	At           time.Time         `json:"at"`
	Conversation string            `json:"conversation,omitempty"`
	Contact      string            `json:"contact,omitempty"`
}

// Who wrote an entry.
const (
	fromVisitor = "visitor"
	fromAgent   = "agent"
)

func (e *entry) frame() messageFrame {
	return messageFrame{
		Type: typeMessage, Seq: e.Seq, ID: e.ID, ClientID: e.ClientID, From: e.From,
		Agent: e.Agent, Avatar: e.Avatar, Auto: e.Auto, Text: e.Text, Attachments: e.Attachments, At: e.At,
	}
}

type head struct {
	Seq uint64 `json:"seq"`
}

type indexRecord struct {
	Seq uint64 `json:"seq"`
}

type readRecord struct {
	UpTo uint64 `json:"up_to"`
}

func headKey(visitor string) string { return "h-" + visitor }

func entryKey(visitor string, seq uint64) string { return fmt.Sprintf("m-%s-%d", visitor, seq) }

func readKey(visitor string) string { return "r-" + visitor }

// indexKey hashes the dedup key: client ids are the client's choice.
func indexKey(visitor, dedup string) string {
	h := sha256.Sum256([]byte(dedup))
	return "i-" + visitor + "-" + hex.EncodeToString(h[:12])
}

// append adds e to visitor's log under the next seq, unless an entry with the
// same dedup key (e.g. "c:<client id>", "m:<envelope id>") is there already:
// then it returns that entry and dup true. e.Seq is set.
func (h *history) append(ctx context.Context, visitor, dedup string, e *entry) (entry, bool, error) {
	if dedup != "" {
		if prev, ok, err := h.lookup(ctx, visitor, dedup); err != nil || ok {
			return prev, ok, err
		}
	}
	var hd head
	if _, err := h.rec.Update(ctx, headKey(visitor), &hd, h.ttl, func(bool) error {
		hd.Seq++
		return nil
	}); err != nil {
		return entry{}, false, fmt.Errorf("web: history: %w", err)
	}
	e.Seq = hd.Seq
	key := entryKey(visitor, e.Seq)
	if _, err := h.rec.Create(ctx, key, e, h.ttl); errors.Is(err, store.ErrExists) {
		// Left over from a head that expired before its entries: replace it.
		var old entry
		_, err = h.rec.Update(ctx, key, &old, h.ttl, func(bool) error { old = *e; return nil })
		if err != nil {
			return entry{}, false, fmt.Errorf("web: history: %w", err)
		}
	} else if err != nil {
		return entry{}, false, fmt.Errorf("web: history: %w", err)
	}
	if dedup == "" {
		return *e, false, nil
	}
	_, err := h.rec.Create(ctx, indexKey(visitor, dedup), indexRecord{Seq: e.Seq}, h.ttl)
	if errors.Is(err, store.ErrExists) {
		// A twin got there first (the same retry on two replicas): keep its entry,
		// leave a gap for ours.
		_ = h.rec.Delete(ctx, key, 0)
		prev, ok, err := h.lookup(ctx, visitor, dedup)
		if err == nil && ok {
			return prev, true, nil
		}
		return entry{}, false, fmt.Errorf("web: history: lost a race and cannot read the winner: %v", err)
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("web: history: %w", err)
	}
	return *e, false, nil
}

// lookup returns the entry stored under dedup, if any.
func (h *history) lookup(ctx context.Context, visitor, dedup string) (entry, bool, error) {
	var ix indexRecord
	if _, err := h.rec.Get(ctx, indexKey(visitor, dedup), &ix); errors.Is(err, store.ErrNotFound) {
		return entry{}, false, nil
	} else if err != nil {
		return entry{}, false, fmt.Errorf("web: history: %w", err)
	}
	e, err := h.get(ctx, visitor, ix.Seq)
	if errors.Is(err, store.ErrNotFound) {
		return entry{}, false, nil
	}
	return e, err == nil, err
}

// get returns one entry, or an error matching store.ErrNotFound.
func (h *history) get(ctx context.Context, visitor string, seq uint64) (entry, error) {
	var e entry
	if _, err := h.rec.Get(ctx, entryKey(visitor, seq), &e); err != nil {
		return entry{}, err
	}
	return e, nil
}

// last returns the last seq handed out to visitor, 0 for none.
func (h *history) last(ctx context.Context, visitor string) (uint64, error) {
	var hd head
	if _, err := h.rec.Get(ctx, headKey(visitor), &hd); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("web: history: %w", err)
	}
	return hd.Seq, nil
}

// after returns up to limit entries with seq > after, oldest first, and whether
// more follow.
func (h *history) after(ctx context.Context, visitor string, after uint64, limit int) ([]entry, bool, uint64, error) {
	last, err := h.last(ctx, visitor)
	if err != nil || after >= last {
		return nil, false, last, err
	}
	hi := min(last, after+uint64(limit))
	es, err := h.fetch(ctx, visitor, after+1, hi)
	return es, hi < last, last, err
}

// before returns up to limit entries with seq < before (0: the latest), oldest
// first, and whether older ones exist.
func (h *history) before(ctx context.Context, visitor string, before uint64, limit int) ([]entry, bool, uint64, error) {
	last, err := h.last(ctx, visitor)
	if err != nil || last == 0 {
		return nil, false, last, err
	}
	hi := last
	if before != 0 {
		if before <= 1 {
			return nil, false, last, nil
		}
		hi = min(last, before-1)
	}
	var out []entry
	// Entries expire oldest first, and gaps are rare: read back in windows of at
	// least minWindow until the page is full, a whole window is gone (expired)
	// or seq 1 is reached.
	const minWindow = 16
	for hi >= 1 && len(out) < limit {
		want := max(uint64(limit-len(out)), minWindow)
		lo := uint64(1)
		if hi > want {
			lo = hi - want + 1
		}
		es, err := h.fetch(ctx, visitor, lo, hi)
		if err != nil {
			return nil, false, last, err
		}
		out = append(es, out...)
		if len(es) == 0 {
			hi = 0
			break
		}
		hi = lo - 1
	}
	if len(out) > limit {
		return out[len(out)-limit:], true, last, nil
	}
	return out, hi >= 1 && len(out) > 0, last, nil
}

// fetchConcurrency bounds the store reads of one page.
const fetchConcurrency = 8

// fetch reads the entries lo..hi, oldest first, skipping missing ones.
func (h *history) fetch(ctx context.Context, visitor string, lo, hi uint64) ([]entry, error) {
	if hi < lo {
		return nil, nil
	}
	n := int(hi - lo + 1)
	es := make([]entry, n)
	found := make([]bool, n)
	errs := make([]error, n)
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e, err := h.get(ctx, visitor, lo+uint64(i))
			switch {
			case err == nil:
				es[i], found[i] = e, true
			case !errors.Is(err, store.ErrNotFound):
				errs[i] = err
			}
		})
	}
	wg.Wait()
	out := es[:0]
	for i := range n {
		if errs[i] != nil {
			return nil, fmt.Errorf("web: history: %w", errs[i])
		}
		if found[i] {
			out = append(out, es[i])
		}
	}
	return out, nil
}

// markRead moves visitor's read position up to upTo, never back, and reports
// whether it moved.
func (h *history) markRead(ctx context.Context, visitor string, upTo uint64) (bool, error) {
	var r readRecord
	moved := false
	if _, err := h.rec.Update(ctx, readKey(visitor), &r, h.ttl, func(bool) error {
		if upTo <= r.UpTo {
			return store.ErrSkip
		}
		r.UpTo, moved = upTo, true
		return nil
	}); err != nil {
		return false, fmt.Errorf("web: history: %w", err)
	}
	return moved, nil
}

// readUpTo returns visitor's read position.
func (h *history) readUpTo(ctx context.Context, visitor string) (uint64, error) {
	var r readRecord
	if _, err := h.rec.Get(ctx, readKey(visitor), &r); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("web: history: %w", err)
	}
	return r.UpTo, nil
}

package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Watcher is implemented by a KV that can report every change of a bucket as it
// happens, by any process. A Store on a Watcher can keep a read cache
// (Options.CacheBytes) that those reports keep correct.
type Watcher interface {
	// Watch calls changed with the key and new revision of every write, delete
	// and expiry in bucket made after Watch returned, in the order they were made,
	// until ctx is done. It calls lost when changes may have been missed (the
	// watch broke and was restarted); changed is called again afterwards.
	Watch(ctx context.Context, bucket string, changed func(key string, rev uint64), lost func()) error
}

// DefaultCacheBytes is the read cache's size when Options.CacheBytes is 0 and
// the cache is on: about 100,000 open conversations with their contacts.
const DefaultCacheBytes = 128 << 20

// recentFor is how long a change reported by a watcher keeps reads that began
// before it out of the cache: longer than any read takes.
const recentFor = time.Minute

// cacheKey names one key of one bucket.
type cacheKey struct{ bucket, key string }

// cached is a cached read: a value, or the knowledge that the key is absent.
type cached struct {
	e       Entry
	missing bool
}

func (c cached) size() int { return len(c.e.Key) + len(c.e.Value) + 96 }

// change is a reported change of a key: when it was reported and its revision.
type change struct {
	at  time.Time
	rev uint64
}

// cachingKV is a KV that answers Gets from memory when it can. A value enters
// the cache when it was read or written and no change of its key was reported
// since the read or write began; a reported change with a newer revision drops
// it; a lost watch drops the bucket. Values that expire are not cached.
//
// So a cached read is as fresh as the watcher: another replica's write is seen
// as soon as its report arrives (a few milliseconds), this process's writes at
// once. A compare-and-set with a stale revision fails with ErrConflict and drops
// the key, so the retry reads the backend: no write is ever lost.
type cachingKV struct {
	KV
	w    Watcher
	log  *slog.Logger
	max  int
	stop context.CancelFunc
	ctx  context.Context

	mu       sync.Mutex
	entries  map[cacheKey]cached
	recent   map[cacheKey]change  // the last change of each key reported lately
	reset    map[string]time.Time // when a bucket's watch was last lost
	watching map[string]*watchStart
	bytes    int
	pruned   time.Time

	hits, misses atomic.Int64
}

// watchStart is a bucket's watch being started, or started.
type watchStart struct {
	done chan struct{}
	err  error
}

func newCachingKV(kv KV, w Watcher, maxBytes int, log *slog.Logger) *cachingKV {
	ctx, stop := context.WithCancel(context.Background())
	return &cachingKV{
		KV: kv, w: w, log: log, max: maxBytes, ctx: ctx, stop: stop,
		entries: map[cacheKey]cached{}, recent: map[cacheKey]change{},
		reset: map[string]time.Time{}, watching: map[string]*watchStart{},
	}
}

// watch starts bucket's watch on first use and reports whether the bucket may be
// cached. A bucket whose watch cannot start is read from the backend.
func (c *cachingKV) watch(ctx context.Context, bucket string) bool {
	c.mu.Lock()
	ws := c.watching[bucket]
	if ws == nil {
		ws = &watchStart{done: make(chan struct{})}
		c.watching[bucket] = ws
		c.mu.Unlock()
		ws.err = c.w.Watch(c.ctx, bucket,
			func(key string, rev uint64) { c.changed(bucket, key, rev) },
			func() { c.lost(bucket) })
		if ws.err != nil {
			c.log.Warn("store cache off for a bucket: cannot watch it", "bucket", bucket, "err", ws.err)
		}
		close(ws.done)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-ws.done:
		return ws.err == nil
	case <-ctx.Done():
		return false
	}
}

// Get implements KV from the cache when it holds the key.
func (c *cachingKV) Get(ctx context.Context, bucket, key string) (Entry, error) {
	if !c.watch(ctx, bucket) {
		return c.KV.Get(ctx, bucket, key)
	}
	k := cacheKey{bucket, key}
	c.mu.Lock()
	v, ok := c.entries[k]
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		if v.missing {
			return Entry{}, ErrNotFound
		}
		return v.e, nil
	}
	c.misses.Add(1)
	began := time.Now()
	e, err := c.KV.Get(ctx, bucket, key)
	switch {
	case err == nil && !e.Expires:
		c.put(k, cached{e: e}, began)
	case errors.Is(err, ErrNotFound):
		c.put(k, cached{missing: true}, began)
	}
	return e, err
}

// Create implements KV, caching what it wrote.
func (c *cachingKV) Create(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) (uint64, error) {
	began := time.Now()
	rev, err := c.KV.Create(ctx, bucket, key, value, ttl)
	c.wrote(ctx, cacheKey{bucket, key}, value, rev, ttl, err, began)
	return rev, err
}

// Update implements KV, caching what it wrote; a conflict drops the key.
func (c *cachingKV) Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	began := time.Now()
	n, err := c.KV.Update(ctx, bucket, key, value, rev, ttl)
	c.wrote(ctx, cacheKey{bucket, key}, value, n, ttl, err, began)
	return n, err
}

// Delete implements KV and drops the key.
func (c *cachingKV) Delete(ctx context.Context, bucket, key string, rev uint64) error {
	err := c.KV.Delete(ctx, bucket, key, rev)
	c.drop(cacheKey{bucket, key})
	return err
}

// Close stops the watches and closes the KV.
func (c *cachingKV) Close() error {
	c.stop()
	return c.KV.Close()
}

func (c *cachingKV) wrote(ctx context.Context, k cacheKey, value []byte, rev uint64, ttl time.Duration, err error, began time.Time) {
	if err != nil || ttl > 0 || !c.watch(ctx, k.bucket) {
		c.drop(k)
		return
	}
	c.put(k, cached{e: Entry{Key: k.key, Value: value, Revision: rev}}, began)
}

// put caches v for k unless it may be stale already: a newer revision of k was
// reported, or (for an absent key, which has no revision) any change of k was
// reported after began; or the bucket's watch was lost after began.
func (c *cachingKV) put(k cacheKey, v cached, began time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.recent[k]; ok {
		if v.missing && !ch.at.Before(began) || !v.missing && ch.rev > v.e.Revision {
			return
		}
	}
	if t, ok := c.reset[k.bucket]; ok && !t.Before(began) {
		return
	}
	if old, ok := c.entries[k]; ok {
		if !old.missing && !v.missing && old.e.Revision > v.e.Revision {
			return
		}
		c.bytes -= old.size()
	}
	c.entries[k] = v
	c.bytes += v.size()
	for k2, old := range c.entries { // random eviction, map order
		if c.bytes <= c.max {
			break
		}
		delete(c.entries, k2)
		c.bytes -= old.size()
	}
}

func (c *cachingKV) drop(k cacheKey) {
	c.mu.Lock()
	if old, ok := c.entries[k]; ok {
		delete(c.entries, k)
		c.bytes -= old.size()
	}
	c.mu.Unlock()
}

// changed is a watcher's report that k now has revision rev.
func (c *cachingKV) changed(bucket, key string, rev uint64) {
	k := cacheKey{bucket, key}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent[k] = change{at: now, rev: rev}
	if old, ok := c.entries[k]; ok && (old.missing || old.e.Revision < rev) {
		delete(c.entries, k)
		c.bytes -= old.size()
	}
	if now.Sub(c.pruned) > recentFor {
		for k2, ch := range c.recent {
			if now.Sub(ch.at) > recentFor {
				delete(c.recent, k2)
			}
		}
		c.pruned = now
	}
}

// lost drops everything cached of bucket: changes may have been missed.
func (c *cachingKV) lost(bucket string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset[bucket] = time.Now()
	for k, v := range c.entries {
		if k.bucket == bucket {
			delete(c.entries, k)
			c.bytes -= v.size()
		}
	}
}

// CacheStats counts the read cache's answers.
type CacheStats struct {
	// Hits and Misses count Gets answered from memory and from the backend.
	Hits, Misses int64
	// Entries and Bytes are what the cache holds now.
	Entries, Bytes int
}

// CacheStats returns the read cache's counters; all zero when it is off.
func (s *Store) CacheStats() CacheStats {
	c, ok := s.kv.(*cachingKV)
	if !ok {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: len(c.entries), Bytes: c.bytes}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// URL is the server, as redis.ParseURL reads it:
	// redis://[user:password@]host:port/db or rediss:// for TLS.
	URL string
	// Prefix is put before every Redis key. Default "omnigate:".
	Prefix string
}

// Redis is the KV on Redis (go-redis v9). A key is one Redis hash,
// Prefix + bucket + ":" + key, with the value in field v and the revision in field
// r. Keys are stored as they are: Redis keys are binary-safe, and bucket names
// cannot contain ':', so the first ':' after the prefix ends the bucket.
//
// Create, Update and Delete are Lua scripts (EVALSHA, loaded on demand), so each
// compare-and-set and the PEXPIRE or PERSIST that sets its TTL are one atomic
// step; each script touches one key, so the layout also suits Redis Cluster.
// Revisions come from the Redis server clock in microseconds, bumped past the
// previous revision when the clock has not moved: they increase on every write, and
// a key deleted and created again does not reuse an old revision unless the server
// clock stepped back by more than the time between the two.
type Redis struct {
	client *redis.Client
	prefix string
}

// Lua scripts. Revisions are formatted with %.0f: Lua numbers are doubles, exact
// for integers up to 2^53, and microseconds since 1970 stay below that until 2255.
const redisNextRev = `
local function nextrev(cur)
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local r = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if cur and r <= cur then r = cur + 1 end
  return string.format('%.0f', r)
end
`

var (
	// KEYS[1] key; ARGV[1] value, ARGV[2] ttl in ms (0 none), ARGV[3] the
	// bucket's change channel, ARGV[4] the key as the store names it. Returns
	// the new revision, or nil if the key exists. Field e marks a value with a
	// TTL; every write publishes "<revision> <key>" on the change channel.
	redisCreate = redis.NewScript(redisNextRev + `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local rev = nextrev(nil)
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', rev)
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]); redis.call('HSET', KEYS[1], 'e', '1') end
redis.call('PUBLISH', ARGV[3], rev .. ' ' .. ARGV[4])
return rev
`)
	// KEYS[1] key; ARGV[1] value, ARGV[2] expected revision, ARGV[3] ttl in ms (0
	// none), ARGV[4] and ARGV[5] as Create's 3 and 4. Returns the new revision,
	// or nil on a revision mismatch.
	redisUpdate = redis.NewScript(redisNextRev + `
local cur = redis.call('HGET', KEYS[1], 'r')
if cur ~= ARGV[2] then return false end
local rev = nextrev(tonumber(cur))
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', rev)
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3]); redis.call('HSET', KEYS[1], 'e', '1')
else
  redis.call('PERSIST', KEYS[1]); redis.call('HDEL', KEYS[1], 'e')
end
redis.call('PUBLISH', ARGV[4], rev .. ' ' .. ARGV[5])
return rev
`)
	// KEYS[1] key; ARGV[1] expected revision (0 unconditional), ARGV[2] and
	// ARGV[3] as Create's 3 and 4 (a delete publishes a revision past the
	// value's). Returns 1, or 0 on a revision mismatch.
	redisDelete = redis.NewScript(redisNextRev + `
local cur = redis.call('HGET', KEYS[1], 'r')
if ARGV[1] ~= '0' and cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if cur then redis.call('PUBLISH', ARGV[2], nextrev(tonumber(cur)) .. ' ' .. ARGV[3]) end
return 1
`)
)

// NewRedis connects to opts.URL, checks that the server answers and loads the
// scripts. Close closes the connection pool.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	if opts.Prefix == "" {
		opts.Prefix = "omnigate:"
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("store: redis: url: %w", err)
	}
	c := redis.NewClient(ro)
	r := &Redis{client: c, prefix: opts.Prefix}
	if err := r.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	for _, s := range []*redis.Script{redisCreate, redisUpdate, redisDelete} {
		if err := s.Load(ctx, c).Err(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("store: redis: load script: %w", err)
		}
	}
	return r, nil
}

// redisKey checks bucket and key and returns the Redis key.
func (r *Redis) redisKey(bucket, key string) (string, error) {
	if err := checkKey(bucket, key); err != nil {
		return "", err
	}
	return r.prefix + bucket + ":" + key, nil
}

// Get implements KV.
func (r *Redis) Get(ctx context.Context, bucket, key string) (Entry, error) {
	rk, err := r.redisKey(bucket, key)
	if err != nil {
		return Entry{}, err
	}
	vals, err := r.client.HMGet(ctx, rk, "v", "r", "e").Result()
	if err != nil {
		return Entry{}, failed("get from", bucket, err)
	}
	v, _ := vals[0].(string)
	rs, ok := vals[1].(string)
	if !ok {
		return Entry{}, ErrNotFound
	}
	rev, err := strconv.ParseUint(rs, 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("store: redis: get from %s: bad revision %q", bucket, rs)
	}
	return Entry{Key: key, Value: []byte(v), Revision: rev, Expires: vals[2] != nil}, nil
}

// Create implements KV.
func (r *Redis) Create(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) (uint64, error) {
	rk, err := r.redisKey(bucket, key)
	if err != nil {
		return 0, err
	}
	rev, err := revision(redisCreate.Run(ctx, r.client, []string{rk}, value, ttlMillis(ttl), r.changes(bucket), key))
	switch {
	case errors.Is(err, redis.Nil):
		return 0, ErrExists
	case err != nil:
		return 0, failed("create in", bucket, err)
	}
	return rev, nil
}

// Update implements KV.
func (r *Redis) Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	rk, err := r.redisKey(bucket, key)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return 0, ErrConflict
	}
	n, err := revision(redisUpdate.Run(ctx, r.client, []string{rk}, value, strconv.FormatUint(rev, 10), ttlMillis(ttl), r.changes(bucket), key))
	switch {
	case errors.Is(err, redis.Nil):
		return 0, ErrConflict
	case err != nil:
		return 0, failed("update in", bucket, err)
	}
	return n, nil
}

// Delete implements KV.
func (r *Redis) Delete(ctx context.Context, bucket, key string, rev uint64) error {
	rk, err := r.redisKey(bucket, key)
	if err != nil {
		return err
	}
	ok, err := redisDelete.Run(ctx, r.client, []string{rk}, strconv.FormatUint(rev, 10), r.changes(bucket), key).Int()
	switch {
	case err != nil:
		return failed("delete in", bucket, err)
	case ok == 0:
		return ErrConflict
	}
	return nil
}

// Keys implements KV with SCAN over the bucket's key prefix (glob characters
// escaped), so it never blocks the server the way KEYS would.
func (r *Redis) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	base := r.prefix + bucket + ":"
	match := escapeGlob(base+prefix) + "*"
	keys := []string{}
	seen := map[string]bool{}
	var cursor uint64
	for {
		batch, next, err := r.client.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return nil, failed("keys of", bucket, err)
		}
		for _, k := range batch {
			key := strings.TrimPrefix(k, base)
			if !seen[key] { // SCAN may return a key twice
				seen[key] = true
				keys = append(keys, key)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// changes is the Pub/Sub channel on which the scripts report bucket's writes.
func (r *Redis) changes(bucket string) string { return r.prefix + "changes:" + bucket }

// Watch implements Watcher with a Pub/Sub subscription to the bucket's change
// channel, confirmed before Watch returns. Pub/Sub delivers at most once: when
// the subscription breaks and go-redis subscribes again, lost is called, since
// what was published meanwhile is gone. Expiries are not reported; the Store
// never caches values with a TTL.
func (r *Redis) Watch(ctx context.Context, bucket string, changed func(key string, rev uint64), lost func()) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	ps := r.client.Subscribe(ctx, r.changes(bucket))
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		_ = ps.Close()
		return failed("watch", bucket, err)
	}
	go func() {
		defer ps.Close()
		for {
			msg, err := ps.Receive(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				lost()
				select { // go-redis reconnects on the next Receive
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					lost() // subscribed again after a reconnect
				}
			case *redis.Message:
				revText, key, ok := strings.Cut(m.Payload, " ")
				if rev, err := strconv.ParseUint(revText, 10, 64); ok && err == nil {
					changed(key, rev)
				}
			}
		}
	}()
	return nil
}

var _ Watcher = (*Redis)(nil)

// Ping implements KV.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: redis: ping: %w", err)
	}
	return nil
}

// Close implements KV: it closes the connection pool.
func (r *Redis) Close() error { return r.client.Close() }

// revision reads a script's revision reply.
func revision(cmd *redis.Cmd) (uint64, error) {
	s, err := cmd.Text()
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// ttlMillis formats ttl for PEXPIRE: milliseconds rounded up, "0" for none.
func ttlMillis(ttl time.Duration) string {
	if ttl <= 0 {
		return "0"
	}
	return strconv.FormatInt(int64((ttl+time.Millisecond-1)/time.Millisecond), 10)
}

// escapeGlob escapes the characters SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var _ KV = (*Redis)(nil)

// failed wraps err of operation op on bucket, marking it ErrUnavailable unless
// Redis itself answered with an error about the request: what did not get an
// answer (a refused or broken connection, a timeout, a full pool) or was
// refused for now (LOADING, READONLY after a failover, CLUSTERDOWN, ...) may
// work when tried again.
func failed(op, bucket string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: redis: %s %s: %w", op, bucket, err)
	}
	var re redis.Error
	if errors.As(err, &re) && !transientReply(re.Error()) {
		return fmt.Errorf("store: redis: %s %s: %w", op, bucket, err)
	}
	return fmt.Errorf("store: redis: %s %s: %w: %w", op, bucket, ErrUnavailable, err)
}

// transientReply reports whether a Redis error reply says the server cannot
// work right now, rather than that the request is wrong.
func transientReply(msg string) bool {
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS", "OOM"} {
		if strings.HasPrefix(msg, p+" ") || msg == p {
			return true
		}
	}
	return false
}

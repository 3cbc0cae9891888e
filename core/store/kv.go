package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamOptions configures NewJetStream.
type JetStreamOptions struct {
	// Replicas is the number of replicas of every bucket's stream: 1 on a single
	// server, 3 on a cluster. 0 means 1.
	Replicas int
	// BucketPrefix is put before every bucket name, so the bucket "contacts" is
	// the JetStream KV bucket "omni_contacts" (stream KV_omni_contacts). Default
	// "omni_".
	BucketPrefix string
}

// requestTimeout bounds one request of a KV operation: an answer lost with a
// NATS node that died costs this (the operation fails as unavailable and is
// tried again), not the caller's whole deadline.
const requestTimeout = 2 * time.Second

// markerTTL is how long a bucket keeps the marker JetStream leaves where a key
// expired or was deleted. Nothing in the store needs the markers to live long;
// they let a watcher see deletions and then go away.
const markerTTL = time.Minute

// Header names JetStream KV uses but nats.go does not export.
const (
	kvOperationHeader = "KV-Operation"
	kvOperationPurge  = "PURGE"
)

// JetStreamKV is the KV on JetStream key-value buckets: one bucket per store
// bucket, history 1, file storage, created on first use.
//
// Reads are direct gets of the key's last message; on a replicated bucket any
// replica may answer, so a read can be a moment stale, which only costs a
// compare-and-set a retry. Writes are plain publishes to the bucket's subject with the
// Nats-Expected-Last-Subject-Sequence header (0 for create), so every write is an
// atomic compare-and-set, and with a Nats-TTL header when the value expires; this is
// how an Update can set a TTL atomically, which jetstream.KeyValue.Update cannot.
// Revisions are stream sequences, so they never repeat for a key. TTLs are rounded
// up to whole seconds, the server's resolution (minimum 1s).
//
// Keys made only of [A-Za-z0-9_-] are stored as they are; any other key is stored
// as "=" followed by its unpadded base64url encoding (the alphabet is legal in a
// JetStream key and "=" never appears in a plain key), and decoded back by Keys.
type JetStreamKV struct {
	js   jetstream.JetStream
	opts JetStreamOptions

	mu      sync.RWMutex // guards buckets
	buckets map[string]*jsBucket
}

// jsBucket is one created bucket.
type jsBucket struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
	subj   string // "$KV.<bucket>.", the prefix of every key's subject
}

// NewJetStream returns a KV on js after checking that JetStream answers. Buckets are
// created (or updated to the expected configuration) when first used. js stays the
// caller's: Close does not close its connection.
func NewJetStream(ctx context.Context, js jetstream.JetStream, opts JetStreamOptions) (*JetStreamKV, error) {
	if js == nil {
		return nil, errors.New("store: jetstream: nil JetStream")
	}
	if opts.BucketPrefix == "" {
		opts.BucketPrefix = "omni_"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if !ValidBucket(opts.BucketPrefix + "x") {
		return nil, fmt.Errorf("%w jetstream bucket prefix %q: want [A-Za-z0-9_-]", ErrInvalid, opts.BucketPrefix)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("store: jetstream: %w", err)
	}
	return &JetStreamKV{js: js, opts: opts, buckets: map[string]*jsBucket{}}, nil
}

// bucket returns the bucket called name (without prefix), creating it on first use.
func (j *JetStreamKV) bucket(ctx context.Context, name string) (*jsBucket, error) {
	j.mu.RLock()
	b := j.buckets[name]
	j.mu.RUnlock()
	if b != nil {
		return b, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if b := j.buckets[name]; b != nil {
		return b, nil
	}
	full := j.opts.BucketPrefix + name
	kv, err := j.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         full,
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       j.opts.Replicas,
		LimitMarkerTTL: markerTTL, // enables per-message TTLs on the stream
	})
	if err != nil {
		return nil, fmt.Errorf("store: jetstream: create bucket %s: %w", full, err)
	}
	st, err := j.js.Stream(ctx, "KV_"+full)
	if err != nil {
		return nil, fmt.Errorf("store: jetstream: bucket %s stream: %w", full, err)
	}
	b = &jsBucket{kv: kv, stream: st, subj: "$KV." + full + "."}
	j.buckets[name] = b
	return b, nil
}

// open checks bucket and key and returns the bucket and the key's subject.
func (j *JetStreamKV) open(ctx context.Context, bucket, key string) (*jsBucket, string, error) {
	if err := checkKey(bucket, key); err != nil {
		return nil, "", err
	}
	b, err := j.bucket(ctx, bucket)
	if err != nil {
		return nil, "", err
	}
	return b, b.subj + encodeKey(key), nil
}

// Get implements KV.
func (j *JetStreamKV) Get(ctx context.Context, bucket, key string) (Entry, error) {
	b, subj, err := j.open(ctx, bucket, key)
	if err != nil {
		return Entry{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	m, err := b.stream.GetLastMsgForSubject(ctx, subj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return Entry{}, ErrNotFound
	case err != nil:
		return Entry{}, fmt.Errorf("store: jetstream: get from %s: %w", bucket, err)
	case tombstone(m):
		return Entry{}, ErrNotFound
	}
	return Entry{Key: key, Value: m.Data, Revision: m.Sequence, Expires: m.Header.Get(jetstream.MsgTTLHeader) != ""}, nil
}

// Create implements KV. A key whose last message is a delete or expiry marker is
// absent: Create then expects the marker's sequence instead of 0.
func (j *JetStreamKV) Create(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) (uint64, error) {
	b, subj, err := j.open(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	var expect uint64
	for range 10 {
		rev, err := j.publish(ctx, subj, value, expect, ttl)
		if err == nil {
			return rev, nil
		}
		if !wrongLastSequence(err) {
			return 0, fmt.Errorf("store: jetstream: create in %s: %w", bucket, err)
		}
		m, err := b.stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			expect = 0 // the marker expired meanwhile
		case err != nil:
			return 0, fmt.Errorf("store: jetstream: create in %s: %w", bucket, err)
		case tombstone(m):
			expect = m.Sequence
		default:
			return 0, ErrExists
		}
	}
	// Ten lost races against deletes and re-creates: someone else owns the key.
	return 0, ErrExists
}

// Update implements KV.
func (j *JetStreamKV) Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	_, subj, err := j.open(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return 0, ErrConflict
	}
	n, err := j.publish(ctx, subj, value, rev, ttl)
	switch {
	case wrongLastSequence(err):
		// rev is a live value's revision; if the key was deleted or expired since,
		// a marker (or nothing) is last, so the check fails here too.
		return 0, ErrConflict
	case err != nil:
		return 0, fmt.Errorf("store: jetstream: update in %s: %w", bucket, err)
	}
	return n, nil
}

// Delete implements KV. It writes a purge marker that rolls up the key's value and
// expires itself after markerTTL, so deleted keys leave nothing behind for long.
func (j *JetStreamKV) Delete(ctx context.Context, bucket, key string, rev uint64) error {
	_, subj, err := j.open(ctx, bucket, key)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Header.Set(kvOperationHeader, kvOperationPurge)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.MsgTTLHeader, ttlSeconds(markerTTL))
	if rev != 0 {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	}
	_, err = j.js.PublishMsg(ctx, m)
	switch {
	case wrongLastSequence(err):
		return ErrConflict
	case err != nil:
		return fmt.Errorf("store: jetstream: delete in %s: %w", bucket, err)
	}
	return nil
}

// Keys implements KV. JetStream lists every key of the bucket; the prefix is
// applied after decoding, since an encoded key does not keep its prefix.
func (j *JetStreamKV) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	b, err := j.bucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lister's goroutine if we return early
	l, err := b.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: jetstream: keys of %s: %w", bucket, err)
	}
	keys := []string{}
	seen := map[string]bool{}
	for k := range l.Keys() {
		key, ok := decodeKey(k)
		if ok && strings.HasPrefix(key, prefix) && !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: jetstream: keys of %s: %w", bucket, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Ping implements KV with a JetStream account info request.
func (j *JetStreamKV) Ping(ctx context.Context) error {
	if _, err := j.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("store: jetstream: ping: %w", err)
	}
	return nil
}

// Close implements KV. The connection belongs to the caller, so Close only forgets
// the buckets it knows.
func (j *JetStreamKV) Close() error {
	j.mu.Lock()
	j.buckets = map[string]*jsBucket{}
	j.mu.Unlock()
	return nil
}

// publish writes value to subj if the subject's last sequence is expect (0: no
// message), with a TTL when ttl > 0, and returns the new sequence.
func (j *JetStreamKV) publish(ctx context.Context, subj string, value []byte, expect uint64, ttl time.Duration) (uint64, error) {
	m := &nats.Msg{Subject: subj, Data: value, Header: nats.Header{}}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	if ttl > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, ttlSeconds(ttl))
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ack, err := j.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// ttlSeconds formats ttl for the Nats-TTL header: whole seconds, rounded up, at
// least 1 (the server truncates and rejects anything under a second).
func ttlSeconds(ttl time.Duration) string {
	s := (ttl + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}

// tombstone reports whether m marks a deleted, purged or expired key rather than
// holding a value.
func tombstone(m *jetstream.RawStreamMsg) bool {
	return m.Header.Get(kvOperationHeader) != "" || m.Header.Get(jetstream.MarkerReasonHeader) != ""
}

// wrongLastSequence reports whether err is JetStream refusing a publish because the
// subject's last sequence is not the expected one: a lost compare-and-set. Replicated
// streams report it with a different code.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// encodeKey maps a store key to a JetStream key: unchanged when it is plain
// ([A-Za-z0-9_-]+), else "=" + unpadded base64url.
func encodeKey(key string) string {
	for i := 0; i < len(key); i++ {
		if !plainByte(key[i]) {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(key))
		}
	}
	return key
}

// decodeKey reverses encodeKey. ok is false for a key the store did not write.
func decodeKey(k string) (key string, ok bool) {
	enc, found := strings.CutPrefix(k, "=")
	if !found {
		return k, true
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(b), true
}

var _ KV = (*JetStreamKV)(nil)

// Watch implements Watcher with an ordered consumer of the bucket's stream that
// delivers headers only, starting after the stream's last message, so no change
// made after Watch returns is missed. The ordered consumer restarts itself
// where it stopped after a disconnect; lost is called when it reports an error.
func (j *JetStreamKV) Watch(ctx context.Context, bucket string, changed func(key string, rev uint64), lost func()) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	b, err := j.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("store: jetstream: watch %s: %w", bucket, err)
	}
	oc, err := j.js.OrderedConsumer(ctx, info.Config.Name, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.State.LastSeq + 1,
		HeadersOnly:   true,
	})
	if err != nil {
		return fmt.Errorf("store: jetstream: watch %s: %w", bucket, err)
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		key, ok := decodeKey(strings.TrimPrefix(m.Subject(), b.subj))
		md, err := m.Metadata()
		if !ok || err != nil {
			return
		}
		changed(key, md.Sequence.Stream)
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) { lost() }))
	if err != nil {
		return fmt.Errorf("store: jetstream: watch %s: %w", bucket, err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}

var _ Watcher = (*JetStreamKV)(nil)

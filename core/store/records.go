package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Records is a bucket of JSON records that a component owns: routing timers,
// ticket counters, outbound idempotency markers. Values are any JSON-encodable Go
// values; every write returns the record's new revision. A Records is cheap and
// safe for concurrent use.
type Records struct {
	s      *Store
	bucket string // the KV bucket: "rec_" + the name
	name   string
}

// Records returns the record bucket called name, which must match
// ValidBucket and be at most 60 characters; other names fail every call with
// ErrInvalid. Record buckets are separate from the store's own buckets, so any
// name is safe to use.
func (s *Store) Records(name string) *Records {
	return &Records{s: s, bucket: recordsPrefix + name, name: name}
}

// Get decodes record key into v (a pointer) and returns its revision, or
// ErrNotFound.
func (r *Records) Get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := r.s.kv.Get(ctx, r.bucket, key)
	if err != nil {
		return 0, r.errorf("get", err)
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return 0, r.errorf("get", fmt.Errorf("decode: %w", err))
	}
	return e.Revision, nil
}

// Create stores v under key only if key does not exist (ErrExists otherwise), and
// returns the revision. With ttl > 0 the record expires after ttl, which makes
// Create a set-if-absent marker with a lifetime, e.g. "reply 42 was sent".
func (r *Records) Create(ctx context.Context, key string, v any, ttl time.Duration) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, r.errorf("create", err)
	}
	rev, err := r.s.kv.Create(ctx, r.bucket, key, data, ttl)
	if err != nil {
		return 0, r.errorf("create", err)
	}
	return rev, nil
}

// Update reads record key into v (a pointer, zeroed first and left zero when the
// key does not exist), calls fn, and stores v with compare-and-set (creating the
// record when it did not exist), retrying from the read when another writer got
// there first; fn may run several times and must derive everything from v. fn may
// return ErrSkip to store nothing; any other error aborts and is returned wrapped.
// The stored record expires after ttl (0: never). Update returns the revision
// stored, or the one read on ErrSkip (0 if the record does not exist).
func (r *Records) Update(ctx context.Context, key string, v any, ttl time.Duration, fn func(exists bool) error) (uint64, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return 0, r.errorf("update", fmt.Errorf("%w: v must be a non-nil pointer", ErrInvalid))
	}
	defer r.s.locks.Lock(r.bucket + "/" + key)()
	var rev uint64
	err := casLoop(ctx, func() error {
		rv.Elem().SetZero()
		e, err := r.s.kv.Get(ctx, r.bucket, key)
		exists := err == nil
		switch {
		case exists:
			if err := json.Unmarshal(e.Value, v); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := fn(exists); errors.Is(err, ErrSkip) {
			rev = e.Revision
			return nil
		} else if err != nil {
			return err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if exists {
			rev, err = r.s.kv.Update(ctx, r.bucket, key, data, e.Revision, ttl)
			return err
		}
		rev, err = r.s.kv.Create(ctx, r.bucket, key, data, ttl)
		if errors.Is(err, ErrExists) {
			return ErrConflict // created meanwhile: read it
		}
		return err
	})
	if err != nil {
		return 0, r.errorf("update", err)
	}
	return rev, nil
}

// Delete removes record key. With rev 0 it is unconditional (a missing key is not
// an error); otherwise rev must be the current revision or Delete returns
// ErrConflict.
func (r *Records) Delete(ctx context.Context, key string, rev uint64) error {
	if err := r.s.kv.Delete(ctx, r.bucket, key, rev); err != nil {
		return r.errorf("delete", err)
	}
	return nil
}

// Keys returns the keys that start with prefix, sorted. It reads the whole bucket.
func (r *Records) Keys(ctx context.Context, prefix string) ([]string, error) {
	keys, err := r.s.kv.Keys(ctx, r.bucket, prefix)
	if err != nil {
		return nil, r.errorf("keys", err)
	}
	return keys, nil
}

// errorf wraps err with the operation and the bucket; keys are left out, since
// they may be personal data.
func (r *Records) errorf(op string, err error) error {
	return fmt.Errorf("store: records %s: %s: %w", r.name, op, err)
}

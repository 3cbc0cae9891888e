// Package storetest is the conformance suite every store backend passes: the KV
// primitive (create, compare-and-set, delete, TTL, key encoding) and the typed
// layer on top of it (identity races, lost updates, one open conversation per
// contact, reopening, merging, records).
//
// A backend's test calls Run with a constructor:
//
//	func TestJetStream(t *testing.T) {
//		srv := bustest.RunServer(t)
//		storetest.Run(t, func(t *testing.T) store.KV { ... })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// Run runs the whole suite. newKV returns a new, empty KV for one subtest,
// isolated from every other one (its own bucket or key prefix); it registers its
// own cleanup with t.Cleanup. Subtests run in parallel, so newKV must be safe to
// call concurrently.
func Run(t *testing.T, newKV func(t *testing.T) store.KV) {
	t.Run("KV", func(t *testing.T) { RunKV(t, newKV) })
	t.Run("Store", func(t *testing.T) { RunStore(t, newKV) })
}

// ctx returns a context that ends with the test, bounded so a hung backend fails
// the test instead of the whole run.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// want fails the test unless errors.Is(err, target); target nil means no error.
func want(t *testing.T, err, target error, what string) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// must fails the test on err.
func must(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

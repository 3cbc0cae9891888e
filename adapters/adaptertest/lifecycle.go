package adaptertest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// cancelTimeout is how soon Run must return once its context is cancelled.
const cancelTimeout = 5 * time.Second

// runCancel: Run keeps running until its context is cancelled, then returns
// nil within cancelTimeout, and no goroutine the adapter started survives it.
func (k *kit) runCancel(t *testing.T) {
	env, fx := k.fixture(t)
	a := fx.Adapter
	before := goroutineIDs()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	early := func() {
		select {
		case err := <-done:
			t.Fatalf("Run returned before its context was cancelled: %v; it must receive until ctx is done (a webhook-only adapter waits on ctx)", err)
		default:
		}
	}

	// Let Run reach its steady state: ready, and (for a polling adapter)
	// fetching what the provider holds.
	if r, ok := a.(adapters.Readier); ok {
		bustest.Eventually(t, k.h.Timeout, func() error {
			early()
			if err := r.Ready(ctx); err != nil {
				return fmt.Errorf("Ready with a healthy fake provider: %w", err)
			}
			return nil
		})
	}
	if !k.h.Skip.Inbound && fx.Inbound != nil {
		k.deliver(t, env, fx, incoming(1), 1)
		bustest.Eventually(t, k.h.Timeout, func() error {
			early()
			if env.Count(t, bus.StreamIn) == 0 {
				return fmt.Errorf("the message delivered while Run runs was not published")
			}
			return nil
		})
	}
	early()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after its context was cancelled, want nil (any other return is a failure the runtime restarts)", err)
		}
	case <-time.After(cancelTimeout):
		t.Fatalf("Run still running %s after its context was cancelled", cancelTimeout)
	}
	if c, ok := a.(adapters.Closer); ok {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(t.Context()), cancelTimeout)
		defer ccancel()
		if err := c.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}

	pkg := pkgPath(a)
	if pkg == "" {
		t.Logf("adapter type %T has no package path; goroutine leak check skipped", a)
		return
	}
	bustest.Eventually(t, cancelTimeout, func() error {
		if leaked := leakedGoroutines(before, pkg); len(leaked) > 0 {
			return fmt.Errorf("%d goroutine(s) of %s still running after Run returned:\n\n%s",
				len(leaked), pkg, strings.Join(leaked, "\n\n"))
		}
		return nil
	})
}

// pkgPath returns the import path of a's type, as it appears in stack traces
// (dots in the last element escaped), or "".
func pkgPath(a any) string {
	t := reflect.TypeOf(a)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.PkgPath() == "" {
		return ""
	}
	p := t.PkgPath()
	i := strings.LastIndex(p, "/") + 1
	return p[:i] + strings.ReplaceAll(p[i:], ".", "%2e")
}

// stacks returns the stack of every goroutine, by goroutine id.
func stacks() map[int64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return parseStacks(buf)
}

// parseStacks splits the output of runtime.Stack(buf, true) by goroutine.
func parseStacks(buf []byte) map[int64]string {
	out := map[int64]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		g = bytes.TrimSpace(g)
		rest, ok := bytes.CutPrefix(g, []byte("goroutine "))
		if !ok {
			continue
		}
		idText, _, ok := bytes.Cut(rest, []byte(" "))
		if !ok {
			continue
		}
		id, err := strconv.ParseInt(string(idText), 10, 64)
		if err != nil {
			continue
		}
		out[id] = string(g)
	}
	return out
}

func goroutineIDs() map[int64]bool {
	ids := map[int64]bool{}
	for id := range stacks() {
		ids[id] = true
	}
	return ids
}

// leakedGoroutines returns the stacks of goroutines not in before that run
// code of package pkg, or were created by it.
func leakedGoroutines(before map[int64]bool, pkg string) []string {
	var out []string
	for id, stack := range stacks() {
		if !before[id] && runsPackage(stack, pkg) {
			out = append(out, stack)
		}
	}
	return out
}

// runsPackage reports whether a goroutine's stack has a function of package
// pkg in it, or was created by one. Test goroutines (other tests of the
// package) do not count. Function lines are the unindented ones after the
// header; file lines are indented.
func runsPackage(stack, pkg string) bool {
	lines := strings.Split(stack, "\n")
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "testing.tRunner(") {
			return false
		}
	}
	for _, l := range lines[1:] {
		l = strings.TrimPrefix(l, "created by ")
		if strings.HasPrefix(l, pkg+".") {
			return true
		}
	}
	return false
}

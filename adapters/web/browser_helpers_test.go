package web_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core/event"
)

// putAvailability writes a queue's availability as routing does: the record
// of core/event.Availability is the contract between them.
func putAvailability(t *testing.T, env *adaptertest.Env, key string, a event.Availability) {
	t.Helper()
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	var cur event.Availability
	if _, err := env.Store.Records(event.AvailabilityRecords).Update(t.Context(), key, &cur, event.AvailabilityTTL, func(bool) error {
		cur = a
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// consoleWatch collects what the tab writes to its console: errors,
// exceptions, and the browser's log (where CSP refusals go).
type consoleWatch struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// watchConsole starts collecting the console of the tab of ctx.
func watchConsole(t *testing.T, ctx context.Context) *consoleWatch {
	t.Helper()
	w := &consoleWatch{}
	seq := chromedp.Console(ctx)
	ready := make(chan struct{})
	go func() {
		close(ready)
		for m, err := range seq {
			if err != nil {
				return
			}
			w.mu.Lock()
			w.msgs = append(w.msgs, m)
			w.mu.Unlock()
		}
	}()
	<-ready
	return w
}

// problems are the errors, exceptions and warnings seen so far.
func (w *consoleWatch) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.HasSuffix(m.URL, "/favicon.ico") {
			continue // the test pages have none
		}
		if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning ||
			strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") {
			out = append(out, string(m.Type)+": "+m.Text)
		}
	}
	return out
}

// none fails the test if the page had console errors or CSP refusals.
func (w *consoleWatch) none(t *testing.T) {
	t.Helper()
	for _, p := range w.problems() {
		t.Errorf("console: %s", p)
	}
}

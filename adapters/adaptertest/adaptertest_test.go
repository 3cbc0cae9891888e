package adaptertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core"
)

// The kit is tested on a toy adapter, once as it should be (TestToy_Conformance)
// and once per bug the kit must catch: TestKit_CatchesBugs runs the test binary
// again with the bug switched on and expects the check to fail, saying why.

// bugEnv names the bug the toy adapter has, in the child process.
const bugEnv = "ADAPTERTEST_TOY_BUG"

const (
	toyName  = "toy"
	toyToken = "s3cret"
)

// toyProvider is the toy's provider, in memory.
type toyProvider struct {
	mu   sync.Mutex
	mode string // "", "throttle", "reject"
	sent []string
}

func (p *toyProvider) send(text string) (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case "throttle":
		return "", http.StatusTooManyRequests
	case "reject":
		return "", http.StatusBadRequest
	}
	p.sent = append(p.sent, text)
	return fmt.Sprintf("p%d", len(p.sent)), http.StatusCreated
}

// toy is a webhook adapter: POST /channels/toy/in with X-Token and a JSON
// body {"id", "from", "text"}; Send goes to a toyProvider.
type toy struct {
	bug  string
	pub  *adapters.Publisher
	prov *toyProvider
	stop chan struct{}
}

func (a *toy) Name() string { return toyName }

func (a *toy) Run(ctx context.Context) error {
	switch a.bug {
	case "run_returns_early":
		return nil
	case "leaks_goroutine":
		go func() { <-a.stop }() // never closed
	}
	<-ctx.Done()
	return nil
}

func (a *toy) Send(_ context.Context, m *core.Message) (adapters.Receipt, error) {
	id, code := a.prov.send(m.Text)
	if a.bug == "double_send" {
		a.prov.send(m.Text)
	}
	switch {
	case code == http.StatusTooManyRequests && a.bug != "plain_429":
		return adapters.Receipt{}, adapters.RetryAfter(errors.New("toy: throttled"), time.Second)
	case code == http.StatusBadRequest && a.bug != "plain_bad_recipient":
		return adapters.Receipt{}, adapters.Permanent(errors.New("toy: invalid recipient"))
	case code >= 300:
		return adapters.Receipt{}, fmt.Errorf("toy: provider answered %d", code)
	}
	return adapters.Receipt{ProviderID: id}, nil
}

func (a *toy) inbound(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Token") != toyToken && a.bug != "accepts_forged" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct{ ID, From, Text string }
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.ID == "" {
		if a.bug == "malformed_500" {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return
	}
	m := &core.Message{From: core.NewIdentity(toyName, p.From), Text: p.Text, External: core.External{Message: p.ID}}
	switch a.bug {
	case "no_provider_id":
		m.External.Message = ""
	case "wrong_channel_from":
		m.From = core.NewIdentity("other", p.From)
	case "ack_after_reply":
		w.WriteHeader(http.StatusOK)
		go func() {
			time.Sleep(100 * time.Millisecond) // the bug: publishing after answering
			_, _ = a.pub.Inbound(context.Background(), m)
		}()
		return
	}
	if _, err := a.pub.Inbound(r.Context(), m); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func toyRequest(token, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/channels/toy/in", strings.NewReader(body))
	r.Header.Set("X-Token", token)
	return r
}

func toyHarness(bug string) adaptertest.Harness {
	return adaptertest.Harness{
		Name: toyName,
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			p := &toyProvider{}
			a := &toy{bug: bug, pub: deps.Publisher, prov: p, stop: make(chan struct{})}
			deps.Routes.HandleFunc("POST /in", a.inbound)
			fx := &adaptertest.Fixture{
				Adapter: a,
				Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
					return toyRequest(toyToken, fmt.Sprintf(`{"id":"t%d","from":"u%d","text":%q}`, in.N, in.N, in.Text))
				},
				Forged:    func(*testing.T) *http.Request { return toyRequest("wrong", `{"id":"f","from":"u","text":"x"}`) },
				Malformed: func(*testing.T) *http.Request { return toyRequest(toyToken, `{"id":`) },
				Outbound: func(*testing.T) *core.Message {
					m := core.NewMessage(core.KindMessage, core.Outbound, toyName)
					m.To = "toy:u1"
					return m
				},
				Sent: func(*testing.T) []string {
					p.mu.Lock()
					defer p.mu.Unlock()
					return append([]string(nil), p.sent...)
				},
				RateLimited:  func(*testing.T) { p.mu.Lock(); p.mode = "throttle"; p.mu.Unlock() },
				BadRecipient: func(*testing.T) { p.mu.Lock(); p.mode = "reject"; p.mu.Unlock() },
			}
			if bug == "nil_hook" {
				fx.Forged = nil
			}
			return fx
		},
	}
}

func TestToy_Conformance(t *testing.T) {
	adaptertest.Run(t, toyHarness(os.Getenv(bugEnv)))
}

func TestToy_Skip(t *testing.T) {
	h := toyHarness("nil_hook")
	h.Skip.Forged = true
	adaptertest.Run(t, h)
}

func TestKit_CatchesBugs(t *testing.T) {
	if os.Getenv(bugEnv) != "" {
		t.Skip("in the child process")
	}
	tests := []struct {
		bug, check, want string
	}{
		{"ack_after_reply", "Inbound/Normalized", "answer 2xx only after Publisher.Inbound returned"},
		{"no_provider_id", "Inbound/Normalized", "external.message is empty"},
		{"no_provider_id", "Inbound/Replay", "want 2"},
		{"wrong_channel_from", "Inbound/Normalized", `want an identity of channel "toy"`},
		{"accepts_forged", "Inbound/Forged", "forged webhook answered 200"},
		{"malformed_500", "Inbound/Malformed", "malformed webhook answered 500"},
		{"double_send", "Outbound/RoundTrip", "received the reply 2 times"},
		{"plain_429", "Outbound/RateLimited", "want an error wrapped with adapters.RetryAfter"},
		{"plain_bad_recipient", "Outbound/BadRecipient", "want an error wrapped with adapters.Permanent"},
		{"run_returns_early", "Run/Cancel", "Run returned before its context was cancelled"},
		{"leaks_goroutine", "Run/Cancel", "goroutine(s) of github.com/omnigate/omnigate/adapters/adaptertest_test still running"},
		{"nil_hook", "Inbound/Forged", "Fixture.Forged is nil; set Skip.Forged"},
	}
	for _, tt := range tests {
		t.Run(tt.bug+"/"+tt.check, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestToy_Conformance$/^"+tt.check+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), bugEnv+"="+tt.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed an adapter with bug %s:\n%s", tt.bug, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("bug %s: output does not say %q:\n%s", tt.bug, tt.want, out)
			}
		})
	}
}

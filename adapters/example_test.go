package adapters_test

// This file is the tutorial for integrators: a complete channel adapter, its
// registration, and its test against the conformance kit. The channel is
// "webhook", an imaginary provider that
//
//   - delivers each customer message as POST /channels/webhook/inbound with a
//     JSON body {"id", "from", "text", "sent_at"} and the header
//     X-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>,
//     and retries until it gets a 2xx;
//   - accepts replies at POST <api_url>/messages with a JSON body {"to",
//     "text"}, a bearer token and an Idempotency-Key header, answering 201
//     {"id"}, 429 with Retry-After when throttling, 4xx {"error"} for a bad
//     request (an invalid recipient) and 5xx when it is down;
//   - tells whether a token is good at GET <api_url>/me.
//
// A real adapter lives in its own package, adapters/<name>, where WebhookConfig
// and Webhook would simply be Config and Adapter, and is blank-imported by
// adapters/builtin. docs/adapters.md explains each step.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// webhookName is the adapter's name: the channel of its messages and
// identities, its config section (channels.webhook) and its URL prefix
// (/channels/webhook/).
const webhookName = "webhook"

// signatureHeader carries the provider's signature of a webhook body.
const signatureHeader = "X-Signature"

// maxWebhookBody bounds what a webhook reads: the provider never sends more.
const maxWebhookBody = 1 << 20

// WebhookConfig is the section channels.webhook of omnigate.yaml. The doc tags
// are the documentation: `omnigate adapters`, the annotated example config and
// the key lists of docs/adapters.md are generated from them. Every key can also
// be set from the environment, e.g. OMNIGATE_CHANNELS_WEBHOOK_API_TOKEN.
type WebhookConfig struct {
	Secret   config.Secret `yaml:"secret" doc:"Shared secret the provider signs every webhook with (X-Signature: sha256=<hex HMAC-SHA256 of the body>)."`
	APIURL   string        `yaml:"api_url" doc:"Base URL of the provider's API, e.g. https://api.example.com/v1."`
	APIToken config.Secret `yaml:"api_token" doc:"Bearer token for the provider's API."`
	Timeout  time.Duration `yaml:"timeout" doc:"Timeout of one API call."`
}

// SetDefaults fills what the file left out. The registry calls it after
// decoding the file and the environment, before Validate.
func (c *WebhookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
}

// Validate reports every problem at once, with paths relative to the section;
// the registry adds the file, line and column.
func (c *WebhookConfig) Validate() error {
	var p config.Problems
	if c.Secret == "" {
		p.Add("secret", "required")
	}
	if c.APIURL == "" {
		p.Add("api_url", "required")
	} else if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add("api_url", "must be an http:// or https:// URL")
	}
	if c.APIToken == "" {
		p.Add("api_token", "required")
	}
	if c.Timeout < 0 {
		p.Add("timeout", "must be positive")
	}
	return p.Err()
}

// Registration: once, from init. The registry decodes channels.webhook into
// a WebhookConfig and hands it, typed, to NewWebhook.
func init() {
	adapters.Register(adapters.Info{
		Name: webhookName, Kind: adapters.Channel, Title: "Webhook", Icon: ":link:",
		Address: adapters.AddressChatID, Format: adapters.FormatPlain,
		Doc: "Generic signed JSON webhook (the tutorial adapter).",
	}, NewWebhook)
}

// Webhook connects the webhook provider to omnigate.
type Webhook struct {
	cfg    WebhookConfig
	pub    *adapters.Publisher
	log    *slog.Logger
	client *http.Client
}

// NewWebhook is the factory: it keeps what it needs from deps and mounts its
// routes, and does no I/O. A bad config never reaches it: Validate refused it.
func NewWebhook(cfg WebhookConfig, deps adapters.Deps) (adapters.Adapter, error) {
	a := &Webhook{
		cfg:    cfg,
		pub:    deps.Publisher,
		log:    deps.Logger,
		client: &http.Client{Timeout: cfg.Timeout},
	}
	// Served at POST /channels/webhook/inbound.
	deps.Routes.HandleFunc("POST /inbound", a.inbound)
	return a, nil
}

// Name is the channel name.
func (a *Webhook) Name() string { return webhookName }

// Run has nothing to receive: the provider calls the webhook. It waits for
// shutdown and returns nil. A polling adapter would fetch here until ctx is
// done, returning an error only when it cannot go on (the runtime restarts it).
func (a *Webhook) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// webhookPayload is the body of the provider's webhook.
type webhookPayload struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	Text   string    `json:"text"`
	SentAt time.Time `json:"sent_at"`
}

// inbound receives one customer message. The order matters: authenticate,
// parse, publish and wait for JetStream's ack, and only then answer 2xx, so
// that what the provider stops retrying is durable.
func (a *Webhook) inbound(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	// A forged request learns nothing about what a good body looks like.
	if !a.signed(r.Header.Get(signatureHeader), body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.ID == "" || p.From == "" {
		http.Error(w, "malformed message", http.StatusBadRequest)
		return
	}

	m := core.NewMessage(core.KindMessage, core.Inbound, webhookName)
	m.From = core.NewIdentity(webhookName, p.From)
	// The provider's id: a retry of the same message is stored once.
	m.External.Message = p.ID
	m.Text = p.Text
	m.SentAt = p.SentAt

	dup, err := a.pub.Inbound(r.Context(), m)
	switch {
	case errors.Is(err, core.ErrInvalid):
		// No retry can fix it (e.g. a control character in the address).
		http.Error(w, "invalid message", http.StatusBadRequest)
		return
	case err != nil:
		// Not stored: a 5xx makes the provider retry, and dedup keeps the
		// retry from doubling a message that was stored after all.
		a.log.Warn("inbound not published, provider will retry", "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	a.log.Debug("inbound", "msg_id", m.ID, "duplicate", dup)
	w.WriteHeader(http.StatusOK)
}

// signed reports whether sig is the provider's signature of body.
func (a *Webhook) signed(sig string, body []byte) bool {
	return hmac.Equal([]byte(sig), []byte(sign(a.cfg.Secret.Value(), body)))
}

// sign returns the X-Signature value of body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// sendRequest and sendResponse are the provider's send API.
type sendRequest struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

type sendResponse struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Send delivers one reply. The runtime calls it for each message on
// omni.out.webhook, possibly from several goroutines; it keeps no state but
// the HTTP client, which is safe for concurrent use. How it fails decides
// what happens next: Permanent goes to the dead-letter queue at once and the
// agent is told, RetryAfter comes back after the delay, anything else is
// retried with backoff.
func (a *Webhook) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	if m.To.Channel() != webhookName {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("webhook: send %s: recipient is not a %s identity", m.ID, webhookName))
	}
	body, err := json.Marshal(sendRequest{To: m.To.Address(), Text: m.Text})
	if err != nil {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("webhook: send %s: %w", m.ID, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.APIURL+"/messages", bytes.NewReader(body))
	if err != nil {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("webhook: send %s: %w", m.ID, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.cfg.APIToken.Value())
	// The runtime sends each envelope once; the key lets the provider drop a
	// copy too, should a crash fall between its send and its record of it.
	req.Header.Set("Idempotency-Key", m.ID)
	resp, err := a.client.Do(req)
	if err != nil {
		return adapters.Receipt{}, fmt.Errorf("webhook: send %s: %w", m.ID, err)
	}
	defer resp.Body.Close()
	var out sendResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out)

	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusCreated:
		return adapters.Receipt{ProviderID: out.ID, Status: "sent", At: time.Now().UTC()}, nil
	case code == http.StatusTooManyRequests:
		return adapters.Receipt{}, adapters.RetryAfter(fmt.Errorf("webhook: send %s: throttled", m.ID), retryAfter(resp.Header.Get("Retry-After")))
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusRequestTimeout || code >= 500:
		// Bad credentials are fixed by an operator, outages pass: retry.
		return adapters.Receipt{}, fmt.Errorf("webhook: send %s: provider answered %s", m.ID, resp.Status)
	default:
		// Any other 4xx (an invalid recipient) stays wrong however often we try.
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("webhook: send %s: provider answered %s: %s", m.ID, resp.Status, out.Error))
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), defaulting
// to 30s.
func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && time.Until(t) > 0 {
		return time.Until(t)
	}
	return 30 * time.Second
}

// Ready checks the token against the provider; /readyz shows the error.
func (a *Webhook) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.APIURL+"/me", nil)
	if err != nil {
		return fmt.Errorf("webhook: ready: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.APIToken.Value())
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: ready: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: ready: provider answered %s (is api_token right?)", resp.Status)
	}
	return nil
}

// Close releases the HTTP client's idle connections; the runtime calls it
// after Run has returned.
func (a *Webhook) Close(context.Context) error {
	a.client.CloseIdleConnections()
	return nil
}

// Interface guards: the build breaks if Webhook stops satisfying them.
var (
	_ adapters.Adapter = (*Webhook)(nil)
	_ adapters.Readier = (*Webhook)(nil)
	_ adapters.Closer  = (*Webhook)(nil)
)

// ExampleRegister shows what registration gives: the adapter is listed with
// the keys of its typed config, which is how `omnigate adapters` and the docs
// describe it.
func ExampleRegister() {
	info, _ := adapters.Lookup("webhook")
	fmt.Println(info.Name, info.Kind)
	for _, k := range info.Keys {
		fmt.Printf("%s (%s, default %q) %s\n", k.Path, k.Type, k.Default, k.Env)
	}
	// Output:
	// webhook channel
	// channels.webhook.secret (secret, default "") OMNIGATE_CHANNELS_WEBHOOK_SECRET
	// channels.webhook.api_url (string, default "") OMNIGATE_CHANNELS_WEBHOOK_API_URL
	// channels.webhook.api_token (secret, default "") OMNIGATE_CHANNELS_WEBHOOK_API_TOKEN
	// channels.webhook.timeout (duration, default "10s") OMNIGATE_CHANNELS_WEBHOOK_TIMEOUT
}

// The test: the conformance kit against the adapter and a fake provider.

const (
	testSecret = "webhook-test-secret"
	testToken  = "webhook-test-token"
)

// TestWebhook_Conformance runs the kit every channel adapter passes.
func TestWebhook_Conformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Harness{
		Name: webhookName,
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			p := newFakeProvider(t)
			return &adaptertest.Fixture{
				Adapter: buildWebhook(t, deps, p.URL),
				Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
					// The same N is the same provider message: same id, same body.
					body := fmt.Sprintf(`{"id":"wh_%d","from":"+1555%07d","text":%q,"sent_at":"2025-01-02T03:04:05Z"}`, in.N, in.N, in.Text)
					return webhookRequest(body, sign(testSecret, []byte(body)))
				},
				Forged: func(t *testing.T) *http.Request {
					body := `{"id":"wh_forged","from":"+15550000000","text":"hi"}`
					return webhookRequest(body, sign("not-the-secret", []byte(body)))
				},
				Malformed: func(t *testing.T) *http.Request {
					body := `{"id": 42, "text": `
					return webhookRequest(body, sign(testSecret, []byte(body)))
				},
				Outbound: func(t *testing.T) *core.Message {
					m := core.NewMessage(core.KindMessage, core.Outbound, webhookName)
					m.To = core.NewIdentity(webhookName, "+15550001234")
					return m
				},
				Sent:         func(*testing.T) []string { return p.Sent() },
				RateLimited:  func(*testing.T) { p.setMode(modeThrottle) },
				BadRecipient: func(*testing.T) { p.setMode(modeReject) },
			}
		},
	})
}

// buildWebhook builds the adapter the way omnigate serve does: from its YAML
// section, through the registry.
func buildWebhook(t *testing.T, deps adapters.Deps, apiURL string) adapters.Adapter {
	t.Helper()
	var node yaml.Node
	src := fmt.Sprintf("secret: %s\napi_url: %s\napi_token: %s\n", testSecret, apiURL, testToken)
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	a, err := adapters.Build(webhookName, "omnigate.yaml", &node, deps)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return a
}

// webhookRequest is the provider's POST of body with signature sig.
func webhookRequest(body, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/channels/webhook/inbound", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(signatureHeader, sig)
	return r
}

// Modes of the fake provider.
const (
	modeOK       = ""
	modeThrottle = "throttle"
	modeReject   = "reject"
)

// fakeProvider is the provider's API as an httptest server, speaking its
// documented wire format. It records every accepted send, ignoring the
// Idempotency-Key the real provider honours, so a double send shows.
type fakeProvider struct {
	*httptest.Server

	mu   sync.Mutex
	mode string
	sent []string
}

func newFakeProvider(t *testing.T) *fakeProvider {
	p := &fakeProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /messages", p.messages)
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *fakeProvider) messages(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	switch {
	case r.Header.Get("Authorization") != "Bearer "+testToken:
		writeJSON(w, http.StatusUnauthorized, sendResponse{Error: "unauthorized"})
		return
	case json.NewDecoder(r.Body).Decode(&req) != nil || req.To == "":
		writeJSON(w, http.StatusBadRequest, sendResponse{Error: "malformed"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case modeThrottle:
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusTooManyRequests, sendResponse{Error: "rate_limited"})
	case modeReject:
		writeJSON(w, http.StatusUnprocessableEntity, sendResponse{Error: "invalid_recipient"})
	default:
		p.sent = append(p.sent, req.Text)
		writeJSON(w, http.StatusCreated, sendResponse{ID: "out_" + strconv.Itoa(len(p.sent))})
	}
}

func (p *fakeProvider) setMode(m string) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// Sent returns the texts of the accepted sends.
func (p *fakeProvider) Sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// TestWebhook_DocsListKeys keeps docs/adapters.md, which walks through this
// adapter, in step with its config.
func TestWebhook_DocsListKeys(t *testing.T) {
	doc, err := os.ReadFile("../docs/adapters.md")
	if err != nil {
		t.Fatal(err)
	}
	info, ok := adapters.Lookup(webhookName)
	if !ok {
		t.Fatal("webhook not registered")
	}
	for _, k := range info.Keys {
		for _, s := range []string{k.Path, k.Env} {
			if !bytes.Contains(doc, []byte(s)) {
				t.Errorf("docs/adapters.md does not mention %s", s)
			}
		}
	}
}

// TestDocs_OutOfProcessExamples keeps the wire examples of docs/adapters.md,
// which out-of-process adapters are written from, true: every JSON envelope
// in it decodes, and the partition it computes is the bus's.
func TestDocs_OutOfProcessExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/adapters.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("%d JSON examples in docs/adapters.md, want the inbound envelope and the delivery event", len(blocks))
	}
	for i, b := range blocks {
		js, _, _ := strings.Cut(b, "```")
		if _, err := core.Decode([]byte(js)); err != nil {
			t.Errorf("JSON example %d does not decode: %v\n%s", i+1, err, js)
		}
	}
	if got := bus.PartitionOf("fax:+15551234567"); got != 53 || !bytes.Contains(doc, []byte("omni.in.fax.53 ")) {
		t.Errorf("PartitionOf(fax:+15551234567) = %d; docs/adapters.md says 53 (omni.in.fax.53)", got)
	}
}

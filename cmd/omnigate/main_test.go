package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// TestMain lets tests run this test binary as the omnigate command itself.
func TestMain(m *testing.M) {
	if os.Getenv("OMNIGATE_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func getStatus(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// startServe runs this test binary as omnigate serve on addr with data dir
// data and the extra environment, until the test ends (then SIGTERM), and
// waits until /readyz answers 200. It returns what serve writes on stderr.
func startServe(t *testing.T, addr, data string, env ...string) *bytes.Buffer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--http", addr, "--data", data)
	cmd.Env = append(append(os.Environ(), "OMNIGATE_TEST_RUN_MAIN=1"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus("http://" + addr + "/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz %d %s", code, body)
		}
		return err
	})
	return &stderr
}

// The first command of the README: serve with no config, fully embedded,
// answers /readyz, and stops cleanly on SIGTERM.
func TestServe_EmbeddedReadyzAndSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "serve", "--http", addr, "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "OMNIGATE_TEST_RUN_MAIN=1")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, `"ready":true`) {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	// /healthz lists every part, the web adapter too, and says all is well.
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus("http://" + addr + "/healthz")
		if err == nil && (code != 200 || !strings.Contains(body, `"status":"ok"`) || !strings.Contains(body, `"adapter web"`)) {
			err = fmt.Errorf("healthz %d %s", code, body)
		}
		return err
	})
	// With no config the web chat runs: a demo page with the widget on it.
	if code, body, err := getStatus("http://" + addr + "/"); err != nil || code != 200 || !strings.Contains(body, "widget.js") {
		t.Fatalf("demo page: %d %v %.200q", code, err, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after SIGTERM")
	}
	if !strings.Contains(stdout.String(), "listening on http://"+addr) {
		t.Errorf("stdout does not say where it listens: %q", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "nats", "jetstream")); err != nil {
		t.Errorf("embedded JetStream store not in the data dir: %v", err)
	}
}

func TestCheckConfig_EveryErrorWithLineAndExit1(t *testing.T) {
	file := filepath.Join(t.TempDir(), "omnigate.yaml")
	os.WriteFile(file, []byte(`http:
  addr: 1
  bogus: 2
store:
  backend: redis
nats:
  streams:
    replicas: 9
channels:
  nosuch: {}
`), 0o600)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"check-config", file}, &stdout, &stderr)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit code 1", err)
	}
	out := stderr.String()
	for _, want := range []string{
		file + ":2:3: http.addr",
		file + ":3:3: http.bogus: unknown key",
		"store.redis.url",
		file + ":8:5: nats.streams.replicas",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("http:\n  addr: \":9090\"\n"), 0o600)
	stdout.Reset()
	if err := run(t.Context(), []string{"check-config", good}, &stdout, &stderr); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

func TestCheckConfig_ExampleIsValid(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"check-config", "../../config/omnigate.example.yaml"}, &stdout, &stderr); err != nil {
		t.Fatalf("example config: %v\n%s", err, stderr.String())
	}
}

// send, tail-style formatting, dlq list and dlq replay against a running bus.
func TestCLI_SendAndDLQReplay(t *testing.T) {
	s := bustest.RunServer(t)
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Options{URL: s.URL(), Consumer: bus.ConsumerDefaults{MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	var healed = make(chan struct{})
	got := make(chan string, 10)
	_, err = b.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamIn, Durable: "pipeline"}, func(_ context.Context, d *bus.Delivery) error {
		select {
		case <-healed:
		default:
			return errors.New("store down")
		}
		m, err := d.Message()
		if err != nil {
			return err
		}
		got <- m.Text
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"send", "--nats", s.URL(), "--channel", "sms", "--from", "+15551234567", "--text", "hi there", "--id", "SM1"}, &out, &errb); err != nil {
		t.Fatalf("send: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "published") {
		t.Fatalf("send said %q", out.String())
	}
	var list bytes.Buffer
	bustest.Eventually(t, 10*time.Second, func() error {
		list.Reset()
		if err := run(ctx, []string{"dlq", "list", "--nats", s.URL()}, &list, &errb); err != nil {
			return err
		}
		if !strings.Contains(list.String(), "store down") {
			return fmt.Errorf("dlq list: %s", list.String())
		}
		return nil
	})
	close(healed)
	out.Reset()
	if err := run(ctx, []string{"dlq", "replay", "--nats", s.URL(), "--all"}, &out, &errb); err != nil {
		t.Fatalf("replay: %v %s", err, errb.String())
	}
	select {
	case text := <-got:
		if text != "hi there" {
			t.Fatalf("replayed text %q", text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replayed message not consumed")
	}
	out.Reset()
	if err := run(ctx, []string{"dlq", "list", "--nats", s.URL()}, &out, &errb); err != nil || !strings.Contains(out.String(), "no dead letters") {
		t.Fatalf("after replay: %v %q", err, out.String())
	}
}

func TestFormatBusMsg(t *testing.T) {
	line := formatBusMsg("omni.in.sms.3", nil, []byte(`{"v":1,"id":"01JB8ZQ0000000000000000000","kind":"message","direction":"inbound","channel":"sms","from":"sms:+1555","text":"hello\nworld","received_at":"2026-11-25T10:00:00Z"}`))
	for _, want := range []string{"omni.in.sms.3", "message inbound", "sms:+1555 -> -", `"hello world"`} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	if l := formatBusMsg("x", nil, []byte("garbage")); !strings.Contains(l, "not an envelope") {
		t.Errorf("garbage rendered as %q", l)
	}
}

// A message injected with `omnigate send` into a running `omnigate serve` goes
// through the pipeline: it reaches the desk with a contact and a conversation.
func TestServe_SendReachesDeskThroughPipeline(t *testing.T) {
	addr, natsAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	stderr := startServe(t, addr, filepath.Join(dir, "data"), "OMNIGATE_NATS_EMBEDDED_LISTEN="+natsAddr)
	url := "nats://" + natsAddr
	b, err := bus.Open(t.Context(), bus.Options{URL: url})
	if err != nil {
		t.Fatalf("connect to the served embedded NATS: %v", err)
	}
	defer b.Close(context.Background())
	desk := make(chan string, 1)
	_, err = b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamDesk, Durable: "test-desk", Filters: []string{bus.SubjectDesk("slack")}},
		func(_ context.Context, d *bus.Delivery) error {
			m, err := d.Message()
			if err != nil {
				return err
			}
			if m.ConversationID == "" || m.ContactID == "" {
				return fmt.Errorf("desk message without conversation/contact: %+v", m)
			}
			desk <- m.Text
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"send", "--nats", url, "--channel", "sms", "--from", "+15551234567", "--text", "where is my order?"}, &out, &errb); err != nil {
		t.Fatalf("send: %v %s", err, errb.String())
	}
	select {
	case text := <-desk:
		if text != "where is my order?" {
			t.Fatalf("desk got %q", text)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing reached omni.desk.slack\nserver log:\n%s", stderr.String())
	}
}

func TestRoute_Explain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "omnigate.yaml")
	os.WriteFile(file, []byte(`routing:
  default_queue: general
  queues:
    general: {desk: slack, channel: C0GENERAL}
    billing: {desk: slack, channel: C0BILLING}
  rules:
    - name: billing
      when: {text_regex: '(?i)\binvoice\b'}
      then: {queue: billing}
`), 0o600)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"route", "--explain", "--config", file, "--channel", "email", "--from", "email:ann@example.com", "where", "is", "my", "invoice?"}, &out, &errb)
	if err != nil {
		t.Fatalf("route --explain: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "billing") {
		t.Fatalf("explanation does not name the billing rule/queue:\n%s", out.String())
	}
}

// The commented channels example in config/omnigate.example.yaml, uncommented,
// passes check-config: it cannot drift from the adapters' keys.
func TestCheckConfig_ExampleChannels(t *testing.T) {
	data, err := os.ReadFile("../../config/omnigate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\nchannels:\n")
	if start < 0 {
		t.Fatal("no channels section in the example")
	}
	var b strings.Builder
	b.WriteString("channels:\n")
	for _, line := range strings.Split(text[start+len("\nchannels:\n"):], "\n") {
		if !strings.HasPrefix(line, "  #") {
			break
		}
		// "  # web:" -> "  web:"; prose lines ("  # An example; ...") have no key.
		body := strings.TrimPrefix(strings.TrimPrefix(line, "  #"), " ")
		if strings.HasPrefix(body, "  ") || strings.HasSuffix(body, ":") && !strings.Contains(body, " ") {
			b.WriteString("  " + body + "\n")
		}
	}
	secrets := t.TempDir()
	example := strings.ReplaceAll(b.String(), "/run/secrets/", secrets+"/")
	os.WriteFile(filepath.Join(secrets, "telegram_bot_token"), []byte("123456789:AAHfake-token-for-the-example\n"), 0o600)
	for _, env := range []string{"SHOP_WIDGET_SECRET", "TWILIO_AUTH_TOKEN", "EMAIL_PASSWORD"} {
		t.Setenv(env, "a-secret-long-enough-for-every-check")
	}
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-1-2-example")
	t.Setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-example")
	file := filepath.Join(t.TempDir(), "channels.yaml")
	os.WriteFile(file, []byte(example), 0o600)
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"check-config", file}, &out, &errb); err != nil {
		t.Fatalf("the example's channels do not check:\n%s\n%s", example, errb.String())
	}
	for _, name := range []string{"web:", "sms:", "telegram:", "email:", "slack:"} {
		if !strings.Contains(example, "  "+name) {
			t.Errorf("the example lacks %s", name)
		}
	}
}

// A tool run without --nats beside a running serve does not open a second
// embedded server on its store: it says how to reach the running one, and
// nothing is "published" into a server nobody reads.
func TestSend_BesideServeWithoutNATS(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	startServe(t, addr, data)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"send", "--data", data, "--channel", "sms", "--from", "+15551234567", "--text", "hi"}, &out, &errb)
	if err == nil {
		t.Fatalf("send beside a running serve succeeded: %s", out.String())
	}
	said := out.String() + errb.String() + err.Error()
	if !strings.Contains(said, "omnigate serve is running on this data directory") || !strings.Contains(said, "nats.embedded.listen") {
		t.Errorf("send said %q, want that serve runs there and how to reach it", said)
	}
	if strings.Contains(out.String(), "published") {
		t.Errorf("send claims it published: %q", out.String())
	}
}

// A serve that listens for clients is found from its data directory: send,
// run without --nats, publishes into the running serve, and the message
// reaches the desk through its pipeline.
func TestSend_FindsListeningServe(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	startServe(t, addr, data, "OMNIGATE_NATS_EMBEDDED_LISTEN=127.0.0.1:0")
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"send", "--data", data, "--channel", "sms", "--from", "+15551234567", "--text", "found you"}, &out, &errb); err != nil {
		t.Fatalf("send: %v %s", err, errb.String())
	}
	url, ok := bus.RunningURL(filepath.Join(data, "nats"))
	if !ok {
		t.Fatal("serve did not write its client URL into the store dir")
	}
	b, err := bus.Open(t.Context(), bus.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	bustest.Eventually(t, 20*time.Second, func() error {
		dls, err := b.DeadLetters(t.Context(), "", 0)
		if err != nil {
			return err
		}
		if len(dls) > 0 {
			return fmt.Errorf("dead letters: %+v", dls)
		}
		info, err := b.JetStream().Stream(t.Context(), bus.StreamDesk)
		if err != nil {
			return err
		}
		if n := info.CachedInfo().State.Msgs; n < 1 {
			return fmt.Errorf("%d messages for the desk", n)
		}
		return nil
	})
}

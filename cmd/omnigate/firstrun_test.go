package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// waitReady waits until serve on addr answers /readyz with 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, func() error {
		code, body, err := getStatus("http://" + addr + "/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz %d %s", code, body)
		}
		return err
	})
}

// all is everything l holds.
func (l *logLines) all() string { return strings.Join(l.with(""), "\n") }

// The first run as a new user meets it: serve with no config says at once
// what it starts and where (before the embedded NATS server is up), and warns
// that no desk can answer customers, pointing to the Slack setup.
func TestServe_FirstRunTellsTheTruth(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "serve", "--http", addr, "--data", "data")
	cmd.Env = append(os.Environ(), "OMNIGATE_TEST_RUN_MAIN=1")
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr logLines
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("serve printed nothing; stderr:\n%s", stderr.all())
	}
	first := lines.Text()
	for _, want := range []string{"omnigate", "starting", "no config file", "embedded NATS with JetStream in " + filepath.Join("data", "nats"), "http://" + addr, "demo page at http://" + addr + "/"} {
		if !strings.Contains(first, want) {
			t.Errorf("first line %q lacks %q", first, want)
		}
	}
	if strings.Contains(stderr.all(), "omnigate started") {
		t.Errorf("the first line came after the start:\n%s", stderr.all())
	}
	go func() {
		for lines.Scan() { // drain, so serve never blocks on stdout
		}
	}()
	waitReady(t, addr)
	warn := strings.Join(stderr.with("nobody can answer customers"), "\n")
	if !strings.Contains(warn, "level=WARN") || !strings.Contains(warn, "docs/slack-setup.md") {
		t.Errorf("no WARN that nobody can answer, pointing to docs/slack-setup.md:\n%s", stderr.all())
	}
}

// A French customer's message, sent through serve's ingress, is detected as
// French and a routing rule on languages sends it to the French queue.
func TestServe_FrenchCustomerReachesFrenchQueue(t *testing.T) {
	addr, natsAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte(`routing:
  default_queue: general
  queues:
    general: {desk: slack, channel: C0GENERAL}
    french: {desk: slack, channel: C0FRENCH}
  rules:
    - name: french
      when: {languages: [fr]}
      then: {queue: french}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve", "--config", file, "--http", addr, "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "OMNIGATE_TEST_RUN_MAIN=1", "OMNIGATE_NATS_EMBEDDED_LISTEN="+natsAddr)
	var stderr logLines
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	waitReady(t, addr)
	url := "nats://" + natsAddr
	b, err := bus.Open(t.Context(), bus.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	type routed struct{ queue, language string }
	got := make(chan routed, 4)
	_, err = b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamDesk, Durable: "test-desk", Filters: []string{bus.SubjectDesk("slack")}},
		func(_ context.Context, d *bus.Delivery) error {
			m, err := d.Message()
			if err != nil {
				return err
			}
			if m.Type == event.ConversationRouted {
				got <- routed{m.Meta[event.MetaQueue], m.Meta[event.MetaLanguage]}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"send", "--nats", url, "--channel", "sms", "--from", "+33612345678", "--text", "Bonjour, ma commande n'est toujours pas arrivée"}, &out, &errb); err != nil {
		t.Fatalf("send: %v %s", err, errb.String())
	}
	select {
	case r := <-got:
		if r.queue != "french" || r.language != "fr" {
			t.Fatalf("routed to queue %q in language %q, want french, fr", r.queue, r.language)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no conversation.routed on omni.desk.slack\nserver log:\n%s", stderr.all())
	}
}

package email_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/config"
)

func decode(t *testing.T, src string) (email.Config, error) {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	var c email.Config
	err := config.DecodeSection("omnigate.yaml", &node, config.EnvName("channels.email"), &c)
	return c, err
}

func TestConfig_Defaults(t *testing.T) {
	c, err := decode(t, "address: support@example.com\nimap:\n  host: imap.example.com\n  password: p\nsmtp:\n  host: smtp.example.com\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "example.com" || c.IMAP.Port != 993 || c.IMAP.Security != "tls" || c.IMAP.Username != "support@example.com" ||
		c.IMAP.Mailbox != "INBOX" || !*c.IMAP.Idle || c.IMAP.InitialScan != "unseen" ||
		c.SMTP.Port != 587 || c.SMTP.Security != "starttls" || c.SMTP.Username != "support@example.com" || c.SMTP.Password.Value() != "p" ||
		c.SMTP.HeloName != "example.com" || c.Limits.InlineAttachmentBytes != email.DefaultInlineAttachmentBytes || *c.VERP {
		t.Errorf("defaults: %+v", c)
	}
	// The return path is plus-addressed by default only where the operator
	// said plus addresses reach the mailbox.
	for _, tc := range []struct {
		extra string
		want  bool
	}{{"reply_token: true\n", true}, {"reply_token: true\nverp: false\n", false}, {"verp: true\n", true}} {
		c, err := decode(t, "address: support@example.com\nsmtp:\n  host: smtp.example.com\n  username: u\n  password: p\n"+tc.extra)
		if err != nil {
			t.Fatal(err)
		}
		if *c.VERP != tc.want {
			t.Errorf("%q: verp %v, want %v", tc.extra, *c.VERP, tc.want)
		}
	}
}

func TestConfig_Env(t *testing.T) {
	t.Setenv("OMNIGATE_CHANNELS_EMAIL_ADDRESS", "help@shop.example")
	t.Setenv("OMNIGATE_CHANNELS_EMAIL_IMAP_HOST", "imap.gmail.com")
	t.Setenv("OMNIGATE_CHANNELS_EMAIL_IMAP_PASSWORD", "app-password")
	t.Setenv("OMNIGATE_CHANNELS_EMAIL_SMTP_SECURITY", "tls")
	c, err := decode(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != "help@shop.example" || c.IMAP.Host != "imap.gmail.com" || c.SMTP.Port != 0 && c.SMTP.Port != 465 {
		t.Errorf("from the environment: %+v", c)
	}
}

func TestConfig_Problems(t *testing.T) {
	_, err := decode(t, strings.Join([]string{
		"address: Support <support@example.com>",
		"imap:",
		"  host: imap.example.com:993",
		"  security: ssl",
		"  initial_scan: everything",
		"  processed_mailbox: INBOX",
		"smtp:",
		"  host: smtp.example.com",
		"  username: u",
		"dkim:",
		"  selector: s1",
		"  private_key: not a key",
		"attachment_hosts: [Files.Example.com]",
		"limits:",
		"  inline_total_bytes: 9999999",
	}, "\n"))
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("decode = %v, want config.Errors", err)
	}
	for _, want := range []string{
		"channels.email.address", "channels.email.imap.host", "channels.email.imap.security", "channels.email.imap.initial_scan",
		"channels.email.imap.password", "channels.email.imap.processed_mailbox", "channels.email.smtp.password",
		"channels.email.dkim.private_key", "channels.email.attachment_hosts[0]", "channels.email.limits.inline_total_bytes",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems do not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "not a key") {
		t.Errorf("a secret is repeated in the problems: %v", err)
	}
}

func TestConfig_NeedsOneSide(t *testing.T) {
	if _, err := decode(t, "address: support@example.com\n"); err == nil || !strings.Contains(err.Error(), "imap.host") {
		t.Errorf("decode = %v, want imap.host required", err)
	}
	env := adaptertest.NewEnv(t, email.Name)
	sm := mailtest.NewSMTP(t)
	a := build(t, env.Deps, cfg{smtpPort: sm.Port}.yaml())
	if err := a.(adapters.Readier).Ready(t.Context()); err != nil {
		t.Errorf("outbound-only adapter not ready: %v", err)
	}
}

// TestDocs_ListKeys keeps docs/channels/email.md in step with the config:
// every key and its environment variable is documented.
func TestDocs_ListKeys(t *testing.T) {
	doc, err := os.ReadFile("../../docs/channels/email.md")
	if err != nil {
		t.Fatal(err)
	}
	info, ok := adapters.Lookup(email.Name)
	if !ok {
		t.Fatal("email not registered")
	}
	for _, k := range info.Keys {
		for _, s := range []string{strings.TrimPrefix(k.Path, "channels.email."), k.Env} {
			if !bytes.Contains(doc, []byte(s)) {
				t.Errorf("docs/channels/email.md does not mention %s", s)
			}
		}
	}
}

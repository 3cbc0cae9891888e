package tickets_test

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/tickets"
)

// section parses a whole file as cmd/omnigate does and returns its tickets node.
func section(t *testing.T, src string) (*yaml.Node, error) {
	t.Helper()
	c, err := config.Parse("omnigate.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c.Tickets, nil
}

func TestConfig_DecodeSection(t *testing.T) {
	t.Setenv("OMNIGATE_TICKETS_ZENDESK_API_TOKEN", "from-env")
	t.Setenv("ZD_HOOK_SECRET", "hook-secret")
	node, _ := section(t, `
tickets:
  admin_token: adm
  first_number: 1000
  default_priority: high
  sla:
    urgent: 2h
  reopen_window: 48h
  notify:
    on: [created, solved, reopened, on_hold]
    default_language: en
    templates:
      pt-BR:
        solved: "O ticket #{{.Number}} foi resolvido."
      zh:
        created: "工单 #{{.Number}} 已创建"
  survey:
    enabled: true
    window: 24h
  bridge:
    max_deliver: 8
    backoff: [1s, 10s, 1m]
  webhook:
    url: https://tracker.example.com/hooks/omnigate
    secret: whsec
  zendesk:
    subdomain: acme
    email: agent@example.com
    webhook_secret: ${env:ZD_HOOK_SECRET}
    custom_fields:
      order_id: 360012345678
`)
	var cfg tickets.Config
	if err := config.DecodeSection("omnigate.yaml", node, "OMNIGATE_TICKETS", &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken.Value() != "adm" || cfg.FirstNumber != 1000 || cfg.DefaultPriority != "high" ||
		cfg.SLA.Urgent != 2*time.Hour || cfg.SLA.Normal != 72*time.Hour || cfg.ReopenWindow != 48*time.Hour ||
		!cfg.Survey.Enabled || cfg.Bridge.MaxDeliver != 8 || len(cfg.Bridge.Backoff) != 3 {
		t.Fatalf("decoded %+v", cfg)
	}
	if strings.Join(cfg.Notify.On, ",") != "created,solved,reopened,on-hold" {
		t.Fatalf("notify.on = %v", cfg.Notify.On)
	}
	if cfg.Zendesk.APIToken.Value() != "from-env" || cfg.Zendesk.WebhookSecret.Value() != "hook-secret" ||
		cfg.Zendesk.CustomFields["order_id"] != 360012345678 || cfg.Webhook.InboundSecret.Value() != "whsec" {
		t.Fatalf("bridges %+v %+v", cfg.Zendesk, cfg.Webhook)
	}
	// Own texts win; the rest falls back to the built-in ones.
	zh := cfg.Notify.Templates["zh"]
	if zh.Created != "工单 #{{.Number}} 已创建" || !strings.Contains(zh.Solved, "已解决") {
		t.Fatalf("zh templates %+v", zh)
	}
	if cfg.Notify.Templates["pt-br"].Solved == "" {
		t.Fatalf("pt-BR templates missing: %v", cfg.Notify.Templates)
	}
}

func TestConfig_Problems(t *testing.T) {
	node, _ := section(t, `
tickets:
  first_number: -5
  default_priority: asap
  reopen_window: -1h
  colour: blue
  notify:
    on: [created, escalated]
    templates:
      en:
        solved: "{{.Number"
  webhook:
    url: tracker.example.com
  zendesk:
    subdomain: acme
`)
	var cfg tickets.Config
	err := config.DecodeSection("omnigate.yaml", node, "OMNIGATE_TICKETS", &cfg)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"omnigate.yaml:6:3: tickets.colour: unknown key",
		"omnigate.yaml:3:3: tickets.first_number: must be at least 1",
		"tickets.default_priority",
		"tickets.reopen_window",
		"tickets.notify.on[1]",
		"tickets.notify.templates.en.solved",
		"tickets.webhook.url",
		"tickets.webhook.secret (default): required when url is set",
		"tickets.zendesk.email (default): required",
		"tickets.zendesk.api_token (default): required",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors do not mention %q:\n%s", want, msg)
		}
	}
}

func TestConfig_Defaults(t *testing.T) {
	var cfg tickets.Config
	if err := config.DecodeSection("", nil, "OMNIGATE_TICKETS", &cfg); err != nil {
		t.Fatalf("no section: %v", err)
	}
	if cfg.FirstNumber != 1 || cfg.DefaultPriority != "normal" || cfg.Survey.Enabled || !*cfg.Notify.Enabled ||
		cfg.Webhook.Outbound() || cfg.Zendesk.Enabled() || cfg.ReopenWindow != 7*24*time.Hour {
		t.Fatalf("defaults %+v", cfg)
	}
	node, _ := section(t, "tickets: {}\n")
	if err := config.DecodeSection("omnigate.yaml", node, "OMNIGATE_TICKETS", &tickets.Config{}); err != nil {
		t.Fatalf("empty section: %v", err)
	}
	if ex := config.Example(tickets.Config{}); !strings.Contains(ex, "admin_token:") || !strings.Contains(ex, "zendesk:") {
		t.Fatalf("example:\n%s", ex)
	}
}

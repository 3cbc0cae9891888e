package routing_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/routing"
)

// decode decodes the routing section of an omnigate.yaml as cmd/omnigate does.
func decode(t *testing.T, doc string) (routing.Config, error) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	var section *yaml.Node
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "routing" {
			section = m.Content[i+1]
		}
	}
	var cfg routing.Config
	err := config.DecodeSection("omnigate.yaml", section, config.EnvName("routing"), &cfg)
	return cfg, err
}

func TestConfig_Defaults(t *testing.T) {
	cfg, err := decode(t, "http: {}\n")
	if err != nil {
		t.Fatal(err)
	}
	q, ok := cfg.Queues[routing.DefaultQueueName]
	if !ok || cfg.DefaultQueue != routing.DefaultQueueName || q.Desk != "slack" || q.Strategy != routing.StrategyManual {
		t.Fatalf("defaults = %+v", cfg)
	}
	if cfg.Escalation.Threshold != 0.6 || cfg.Workers != 4 || cfg.TimerScan != 30*time.Second {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestConfig_EveryProblemWithItsLine(t *testing.T) {
	doc := `routing:
  default_queue: nowhere
  queues:
    billing:
      strategy: fastest
      agents: [slack:U1, "not an identity"]
      hours: office
      sla:
        first_response: 15m
        overflow: billing
        priorities:
          critical: {first_response: 5m}
    bad name!: {}
  hours:
    office:
      time_zone: Mars/Olympus
      weekdays: 18:00-09:00
      holidays: [2025-13-40]
  templates:
    ack:
      en: "Wait {{.Wiat}}"
  rules:
    - name: r1
      when:
        text_regex: "(unclosed"
        customer: maybe
        hours: open
      then:
        queue: missing
        priority: asap
    - when: {channels: [sms]}
      then: {}
  escalation:
    threshold: 1.5
    classifier:
      url: ftp://scores
  colour: blue
`
	_, err := decode(t, doc)
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want config.Errors", err)
	}
	text := err.Error()
	for _, want := range []string{
		`omnigate.yaml:2:3: routing.default_queue: no queue "nowhere"`,
		`omnigate.yaml:5:7: routing.queues.billing.strategy: must be one of`,
		`omnigate.yaml:6:26: routing.queues.billing.agents[1]: must be a desk identity`,
		`omnigate.yaml:10:9: routing.queues.billing.sla.overflow: must be another queue`,
		`omnigate.yaml:12:11: routing.queues.billing.sla.priorities.critical: must be one of low, normal, high, urgent`,
		`omnigate.yaml:13:5: routing.queues.bad name!: queue names are`,
		`omnigate.yaml:16:7: routing.hours.office.time_zone: unknown time zone "Mars/Olympus"`,
		`omnigate.yaml:17:7: routing.hours.office.weekdays: "18:00-09:00" ends before it starts`,
		`omnigate.yaml:18:18: routing.hours.office.holidays[0]: want a date`,
		`omnigate.yaml:21:7: routing.templates.ack.en: 1:7: executing "ack.en" at <.Wiat>: can't evaluate field Wiat`,
		`omnigate.yaml:25:9: routing.rules[0].when.text_regex:`,
		`omnigate.yaml:26:9: routing.rules[0].when.customer: must be one of new, returning`,
		`omnigate.yaml:29:9: routing.rules[0].then.queue: no queue "missing"`,
		`omnigate.yaml:30:9: routing.rules[0].then.priority: must be one of`,
		`omnigate.yaml:32:7: routing.rules[1].then: does nothing`,
		`omnigate.yaml:34:5: routing.escalation.threshold: must be between 0 and 1`,
		`omnigate.yaml:36:7: routing.escalation.classifier.url: must be an absolute http`,
		`omnigate.yaml:37:3: routing.colour: unknown key`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing problem %q", want)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%s", text)
	}
}

func TestConfig_NewRejectsInvalid(t *testing.T) {
	cfg := routing.Config{Queues: map[string]routing.Queue{"a": {}, "b": {}}}
	cfg.SetDefaults()
	_, err := routing.New(cfg, routing.Deps{})
	if err == nil || !strings.Contains(err.Error(), "default_queue: required") {
		t.Fatalf("New = %v, want default_queue required", err)
	}
}

// TestDocs_FullExample decodes the full example of docs/routing.md, so the
// documentation cannot drift from the code.
func TestDocs_FullExample(t *testing.T) {
	t.Setenv("CLASSIFIER_TOKEN", "test-token")
	data, err := os.ReadFile("../docs/routing.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(routing:.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) == 0 {
		t.Fatal("docs/routing.md has no yaml block starting with routing:")
	}
	for i, b := range blocks {
		cfg, err := decode(t, b[1])
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if i == 0 && (len(cfg.Queues) < 3 || len(cfg.Rules) < 5) {
			t.Fatalf("the first block should be the full example, got %d queues, %d rules", len(cfg.Queues), len(cfg.Rules))
		}
	}
	// Every key is in the reference tables.
	for _, s := range []struct {
		v      any
		prefix string
	}{
		{routing.Config{}, "routing"},
		{routing.Queue{}, "routing.queues.<name>"},
		{routing.Agent{}, "routing.agents[]"},
		{routing.Rule{}, "routing.rules[]"},
		{routing.Hours{}, "routing.hours.<name>"},
	} {
		for _, k := range config.Keys(s.v, s.prefix) {
			if !strings.Contains(string(data), "| `"+k.Path+"` | "+k.Type+" |") {
				t.Errorf("docs/routing.md does not list %s (%s)", k.Path, k.Type)
			}
		}
	}
}

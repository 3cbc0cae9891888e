package config_test

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
)

func TestKeys_Adapter(t *testing.T) {
	want := []config.Key{
		{Path: "channels.sms.account_sid", Type: "string", Doc: "Twilio account SID.", Env: "OMNIGATE_CHANNELS_SMS_ACCOUNT_SID"},
		{Path: "channels.sms.auth_token", Type: "secret", Doc: "Twilio auth token.", Env: "OMNIGATE_CHANNELS_SMS_AUTH_TOKEN", Secret: true},
		{Path: "channels.sms.from", Type: "string", Doc: "Sender phone number, E.164.", Env: "OMNIGATE_CHANNELS_SMS_FROM"},
		{Path: "channels.sms.timeout", Type: "duration", Default: "10s", Doc: "Timeout of one API call.", Env: "OMNIGATE_CHANNELS_SMS_TIMEOUT"},
		{Path: "channels.sms.whatsapp", Type: "bool", Doc: "Also handle WhatsApp.", Env: "OMNIGATE_CHANNELS_SMS_WHATSAPP"},
		{Path: "channels.sms.allow", Type: "[]string", Doc: "Numbers allowed to write; empty allows all.", Env: "OMNIGATE_CHANNELS_SMS_ALLOW"},
		{Path: "channels.sms.webhook.path", Type: "string", Default: "inbound", Doc: "Path under /channels/sms/.", Env: "OMNIGATE_CHANNELS_SMS_WEBHOOK_PATH"},
		{Path: "channels.sms.webhook.validate", Type: "bool", Doc: "Check the X-Twilio-Signature header.", Env: "OMNIGATE_CHANNELS_SMS_WEBHOOK_VALIDATE"},
	}
	for _, v := range []any{smsConfig{}, &smsConfig{AccountSID: "ignored"}} {
		if got := config.Keys(v, "channels.sms"); !reflect.DeepEqual(got, want) {
			t.Errorf("Keys(%T) =\n%+v\nwant\n%+v", v, got, want)
		}
	}
	if got := config.Keys(42, ""); got != nil {
		t.Errorf("Keys(int) = %v, want nil", got)
	}
}

func TestKeys_Config(t *testing.T) {
	keys := map[string]config.Key{}
	for _, k := range config.Keys(config.Config{}, "") {
		if k.Doc == "" {
			t.Errorf("%s has no doc tag", k.Path)
		}
		keys[k.Path] = k
	}
	tests := []config.Key{
		{Path: "http.addr", Type: "string", Default: `":8080"`, Env: "OMNIGATE_HTTP_ADDR"},
		{Path: "http.body_timeout", Type: "duration", Default: "1m", Env: "OMNIGATE_HTTP_BODY_TIMEOUT"},
		{Path: "http.max_conns_per_client", Type: "int", Default: "128", Env: "OMNIGATE_HTTP_MAX_CONNS_PER_CLIENT"},
		{Path: "http.admin_token", Type: "secret", Env: "OMNIGATE_HTTP_ADMIN_TOKEN", Secret: true},
		{Path: "http.link_ttl", Type: "duration", Default: "168h", Env: "OMNIGATE_HTTP_LINK_TTL"},
		{Path: "data_dir", Type: "string", Default: "./data", Env: "OMNIGATE_DATA_DIR"},
		{Path: "nats.password", Type: "secret", Env: "OMNIGATE_NATS_PASSWORD", Secret: true},
		{Path: "nats.embedded.store_dir", Type: "string", Default: "<data_dir>/nats", Env: "OMNIGATE_NATS_EMBEDDED_STORE_DIR"},
		{Path: "nats.streams.replicas", Type: "int", Default: "1", Env: "OMNIGATE_NATS_STREAMS_REPLICAS"},
		{Path: "nats.consumer.backoff", Type: "[]duration", Default: "[1s, 5s, 30s, 2m]", Env: "OMNIGATE_NATS_CONSUMER_BACKOFF"},
		{Path: "store.redis.url", Type: "secret", Env: "OMNIGATE_STORE_REDIS_URL", Secret: true},
		{Path: "store.closed_ttl", Type: "duration", Default: "720h", Env: "OMNIGATE_STORE_CLOSED_TTL"},
		{Path: "store.kv.replicas", Type: "int", Default: "nats.streams.replicas", Env: "OMNIGATE_STORE_KV_REPLICAS"},
		{Path: "channels", Type: "map[string]object"},
	}
	for _, want := range tests {
		t.Run(want.Path, func(t *testing.T) {
			got, ok := keys[want.Path]
			if !ok {
				t.Fatal("missing")
			}
			got.Doc = ""
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	if len(keys) != 54 {
		t.Errorf("Keys(Config{}) lists %d keys, want 54", len(keys))
	}
}

func TestExample(t *testing.T) {
	wantText := `# Path under /channels/sms/.
path: ""
# Check the X-Twilio-Signature header.
validate: false
`
	if got := config.Example(smsWebhook{}); got != wantText {
		t.Errorf("Example(smsWebhook{}) =\n%s\nwant\n%s", got, wantText)
	}

	// The rendered example of the whole config parses back to the defaults.
	c, err := config.Parse("example", []byte(config.Example(&config.Config{})))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Channels = map[string]yaml.Node{} // rendered as "channels: {}"
	// routing and tickets are raw sections, rendered as "{}": compare their kind.
	if c.Routing.Kind != yaml.MappingNode || c.Tickets.Kind != yaml.MappingNode || c.Insight.Kind != yaml.MappingNode {
		t.Errorf("Example(Config) renders routing/tickets/insight as %v/%v/%v, want mappings", c.Routing.Kind, c.Tickets.Kind, c.Insight.Kind)
	}
	c.Routing, c.Tickets, c.Insight, c.Analytics = yaml.Node{}, yaml.Node{}, yaml.Node{}, yaml.Node{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Example(Config) parses to %+v", c)
	}
}

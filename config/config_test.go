package config_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
)

// writeFile writes content to a new file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustParse parses data and fails the test on any error.
func mustParse(t *testing.T, data string) *config.Config {
	t.Helper()
	c, err := config.Parse("omnigate.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestDefault(t *testing.T) {
	c := config.Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"http.addr", c.HTTP.Addr, ":8080"},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout, 15 * time.Second},
		{"http.public_url", c.HTTP.PublicURL, ""},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout, 10 * time.Second},
		{"http.body_timeout", c.HTTP.BodyTimeout, 60 * time.Second},
		{"http.idle_timeout", c.HTTP.IdleTimeout, 2 * time.Minute},
		{"http.max_header_bytes", c.HTTP.MaxHeaderBytes, 65536},
		{"http.max_conns_per_client", c.HTTP.MaxConnsPerClient, 128},
		{"data_dir", c.DataDir, "./data"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"nats.url", c.NATS.URL, ""},
		{"nats.embedded.listen", c.NATS.Embedded.Listen, ""},
		{"nats.embedded.store_dir", c.NATS.Embedded.StoreDir, filepath.Join("data", "nats")},
		{"nats.streams.replicas", c.NATS.Streams.Replicas, 1},
		{"nats.streams.duplicate_window", c.NATS.Streams.DuplicateWindow, 2 * time.Minute},
		{"nats.streams.max_age", c.NATS.Streams.MaxAge, 72 * time.Hour},
		{"nats.streams.max_bytes", c.NATS.Streams.MaxBytes, int64(-1)},
		{"nats.streams.transcript_max_age", c.NATS.Streams.TranscriptMaxAge, 2160 * time.Hour},
		{"nats.consumer.max_deliver", c.NATS.Consumer.MaxDeliver, 5},
		{"nats.consumer.backoff", c.NATS.Consumer.Backoff, []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}},
		{"nats.consumer.ack_wait", c.NATS.Consumer.AckWait, 3 * time.Second},
		{"nats.consumer.max_ack_pending", c.NATS.Consumer.MaxAckPending, 1000},
		{"store.backend", c.Store.Backend, "kv"},
		{"store.redis.prefix", c.Store.Redis.Prefix, "omnigate:"},
		{"store.closed_ttl", c.Store.ClosedTTL, 720 * time.Hour},
		{"store.kv.replicas", c.Store.KV.Replicas, 1},
		{"conversation.reopen_window", c.Conversation.ReopenWindow, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestParse_DerivedDefaults(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(*config.Config) bool
	}{
		{"store_dir follows data_dir", "data_dir: /var/lib/omnigate\n",
			func(c *config.Config) bool { return c.NATS.Embedded.StoreDir == "/var/lib/omnigate/nats" }},
		{"explicit store_dir wins", "data_dir: /a\nnats: {embedded: {store_dir: /b}}\n",
			func(c *config.Config) bool { return c.NATS.Embedded.StoreDir == "/b" }},
		{"kv replicas follow stream replicas", "nats: {streams: {replicas: 3}}\n",
			func(c *config.Config) bool { return c.Store.KV.Replicas == 3 }},
		{"redis url selects redis backend", "store: {redis: {url: redis://localhost:6379/0}}\n",
			func(c *config.Config) bool { return c.Store.Backend == "redis" }},
		{"explicit kv backend wins over redis url", "store: {backend: kv, redis: {url: redis://localhost}}\n",
			func(c *config.Config) bool { return c.Store.Backend == "kv" }},
		{"empty backoff list stays empty", "nats: {consumer: {backoff: []}}\n",
			func(c *config.Config) bool {
				return c.NATS.Consumer.Backoff != nil && len(c.NATS.Consumer.Backoff) == 0
			}},
		{"public_url loses trailing slash", "http: {public_url: 'https://support.example.com/'}\n",
			func(c *config.Config) bool { return c.HTTP.PublicURL == "https://support.example.com" }},
		{"null keeps default", "http:\n  addr:\n",
			func(c *config.Config) bool { return c.HTTP.Addr == ":8080" }},
		{"empty document", "# nothing here\n",
			func(c *config.Config) bool { return reflect.DeepEqual(c, config.Default()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustParse(t, tt.yaml); !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestParse_Channels(t *testing.T) {
	c := mustParse(t, "channels:\n  sms:\n    from: '+15551234567'\n  web:\n")
	if got := slices.Sorted(maps.Keys(c.Channels)); !slices.Equal(got, []string{"sms", "web"}) {
		t.Fatalf("channels = %v", got)
	}
	sms := c.Channels["sms"]
	if sms.Kind != yaml.MappingNode || sms.Line != 3 {
		t.Errorf("channels.sms node: kind %v line %d", sms.Kind, sms.Line)
	}
}

func TestLoad(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		path := writeFile(t, "omnigate.yaml", "http:\n  addr: 127.0.0.1:9000\n")
		c, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTP.Addr != "127.0.0.1:9000" {
			t.Errorf("http.addr = %q", c.HTTP.Addr)
		}
	})
	t.Run("no file", func(t *testing.T) {
		t.Setenv("OMNIGATE_LOG_LEVEL", "debug")
		c, err := config.Load("")
		if err != nil {
			t.Fatal(err)
		}
		want := config.Default()
		want.Log.Level = "debug"
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Load(\"\") = %+v, want %+v", c, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("errors name the file", func(t *testing.T) {
		path := writeFile(t, "bad.yaml", "htp: {}\n")
		_, err := config.Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+":1:1: htp: unknown key") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("omnigate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("omnigate.example.yaml", data)
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	c.Routing, c.Tickets, c.Insight, c.Analytics = yaml.Node{}, yaml.Node{}, yaml.Node{}, yaml.Node{} // raw sections, decoded by their packages
	if !reflect.DeepEqual(c, config.Default()) {
		t.Errorf("the example's values differ from the defaults:\n got %+v\nwant %+v", c, config.Default())
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectPaths(doc.Content[0], "", present)
	for _, k := range config.Keys(config.Config{}, "") {
		if !present[k.Path] {
			t.Errorf("key %s is missing from omnigate.example.yaml", k.Path)
		}
	}
	for _, line := range []string{"# sms:", "#   auth_token: ${env:TWILIO_AUTH_TOKEN}"} {
		if !strings.Contains(string(data), line) {
			t.Errorf("the example lacks the commented channels section line %q", line)
		}
	}
}

// collectPaths records the dotted path of every key in a mapping tree.
func collectPaths(n *yaml.Node, prefix string, out map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if prefix != "" {
			p = prefix + "." + p
		}
		out[p] = true
		collectPaths(n.Content[i+1], p, out)
	}
}

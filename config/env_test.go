package config_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/omnigate/omnigate/config"
)

func TestEnvOverrides(t *testing.T) {
	file := "http:\n  addr: :8080\nnats:\n  consumer:\n    backoff: [1s]\n"
	tests := []struct {
		name string
		env  map[string]string
		get  func(*config.Config) any
		want any
	}{
		{"addr", map[string]string{"OMNIGATE_HTTP_ADDR": "127.0.0.1:9090"}, func(c *config.Config) any { return c.HTTP.Addr }, "127.0.0.1:9090"},
		{"duration", map[string]string{"OMNIGATE_HTTP_SHUTDOWN_TIMEOUT": "1m30s"}, func(c *config.Config) any { return c.HTTP.ShutdownTimeout }, 90 * time.Second},
		{"data_dir derives store_dir", map[string]string{"OMNIGATE_DATA_DIR": "/srv/og"}, func(c *config.Config) any { return c.NATS.Embedded.StoreDir }, "/srv/og/nats"},
		{"nats url list", map[string]string{"OMNIGATE_NATS_URL": "nats://a:4222,nats://b:4222"}, func(c *config.Config) any { return c.NATS.URL }, "nats://a:4222,nats://b:4222"},
		{"replicas", map[string]string{"OMNIGATE_NATS_STREAMS_REPLICAS": "3"}, func(c *config.Config) any { return [2]int{c.NATS.Streams.Replicas, c.Store.KV.Replicas} }, [2]int{3, 3}},
		{"hex integer", map[string]string{"OMNIGATE_NATS_STREAMS_MAX_BYTES": "0x40000000"}, func(c *config.Config) any { return c.NATS.Streams.MaxBytes }, int64(1 << 30)},
		{"list", map[string]string{"OMNIGATE_NATS_CONSUMER_BACKOFF": "2s, 10s,1m"}, func(c *config.Config) any { return c.NATS.Consumer.Backoff }, []time.Duration{2 * time.Second, 10 * time.Second, time.Minute}},
		{"empty list", map[string]string{"OMNIGATE_NATS_CONSUMER_BACKOFF": ""}, func(c *config.Config) any { return c.NATS.Consumer.Backoff }, []time.Duration{}},
		{"redis url secret", map[string]string{"OMNIGATE_STORE_REDIS_URL": "rediss://:pw@cache:6380/2"}, func(c *config.Config) any { return []string{c.Store.Backend, c.Store.Redis.URL.Value()} }, []string{"redis", "rediss://:pw@cache:6380/2"}},
		{"secret reference", map[string]string{"REDIS_URL": "redis://cache", "OMNIGATE_STORE_REDIS_URL": "${env:REDIS_URL}"}, func(c *config.Config) any { return c.Store.Redis.URL.Value() }, "redis://cache"},
		{"password", map[string]string{"OMNIGATE_NATS_USER": "app", "OMNIGATE_NATS_PASSWORD": "s3cret"}, func(c *config.Config) any { return c.NATS.Password.Value() }, "s3cret"},
		{"reopen_window", map[string]string{"OMNIGATE_CONVERSATION_REOPEN_WINDOW": "48h"}, func(c *config.Config) any { return c.Conversation.ReopenWindow }, 48 * time.Hour},
		{"log", map[string]string{"OMNIGATE_LOG_FORMAT": "json", "OMNIGATE_LOG_LEVEL": "warn"}, func(c *config.Config) any { return c.Log }, config.Log{Level: "warn", Format: "json"}},
		{"empty means default", map[string]string{"OMNIGATE_HTTP_ADDR": ""}, func(c *config.Config) any { return c.HTTP.Addr }, ":8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := mustParse(t, file)
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		"":                        "OMNIGATE",
		"http.addr":               "OMNIGATE_HTTP_ADDR",
		"data_dir":                "OMNIGATE_DATA_DIR",
		"nats.streams.replicas":   "OMNIGATE_NATS_STREAMS_REPLICAS",
		"store.redis.url":         "OMNIGATE_STORE_REDIS_URL",
		"channels.sms.auth_token": "OMNIGATE_CHANNELS_SMS_AUTH_TOKEN",
	}
	for path, want := range tests {
		if got := config.EnvName(path); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", path, got, want)
		}
	}
}

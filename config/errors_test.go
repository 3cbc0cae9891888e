package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/config"
)

// badFile has one mistake of each kind; the comments are the line numbers.
const badFile = `http:
  addr: ":8080"
  shutdown_timeout: 10 seconds
log:
  level: verbose
  colour: true
nats:
  consumer:
    max_deliver: 3
    backoff: [1s, 5s, 30s]
store:
  backend: redis
  redis:
    prefix: "acme:"
`

func TestParse_BadFileReportsEveryError(t *testing.T) {
	_, err := config.Parse("omnigate.yaml", []byte(badFile))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v (%T), want config.Errors", err, err)
	}
	want := []string{
		`omnigate.yaml:3:21: http.shutdown_timeout: want a duration like 30s, 5m or 72h, got "10 seconds"`,
		`omnigate.yaml:5:3: log.level: must be one of debug, info, warn, error; got "verbose"`,
		`omnigate.yaml:6:3: log.colour: unknown key (known keys: level, format)`,
		`omnigate.yaml:10:5: nats.consumer.backoff: has 3 entries; it must have fewer than max_deliver (3)`,
		`omnigate.yaml:13:3: store.redis.url (default): required when store.backend is redis`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if got := errs[i].Error(); got != w {
			t.Errorf("error %d:\n got %s\nwant %s", i, got, w)
		}
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Errors.Error() =\n%s", got)
	}
	var one *config.Error
	if !errors.As(err, &one) || one.Line != 3 || one.Path != "http.shutdown_timeout" {
		t.Errorf("errors.As(*config.Error) = %+v", one)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // every error, in order
	}{
		{
			name: "syntax error",
			yaml: "http:\n  addr: [\n",
			want: []string{"omnigate.yaml:2:9: sequence end token ']' not found"},
		},
		{
			name: "top level is not a mapping",
			yaml: "- a\n- b\n",
			want: []string{"omnigate.yaml:1:1: want a mapping of keys, got a list"},
		},
		{
			name: "section is not a mapping",
			yaml: "http: yes please\n",
			want: []string{"omnigate.yaml:1:7: http: want a mapping of keys, got a string"},
		},
		{
			name: "integer expected",
			yaml: "nats:\n  streams:\n    replicas: three\n",
			want: []string{`omnigate.yaml:3:15: nats.streams.replicas: want an integer, got "three"`},
		},
		{
			name: "scalar expected",
			yaml: "data_dir: [a, b]\n",
			want: []string{"omnigate.yaml:1:11: data_dir: want a string, got a list"},
		},
		{
			name: "list item",
			yaml: "nats:\n  consumer:\n    backoff:\n      - 1s\n      - soon\n",
			want: []string{`omnigate.yaml:5:9: nats.consumer.backoff[1]: want a duration like 30s, 5m or 72h, got "soon"`},
		},
		{
			name: "negative list item",
			yaml: "nats:\n  consumer:\n    backoff: [1s, -5s]\n",
			want: []string{`omnigate.yaml:3:19: nats.consumer.backoff[1]: must be a positive duration, got -5s`},
		},
		{
			name: "duplicate key",
			yaml: "log:\n  level: info\n  level: debug\n",
			want: []string{"omnigate.yaml:3:3: log.level: duplicate key (first at line 2)"},
		},
		{
			name: "range",
			yaml: "nats:\n  streams:\n    replicas: 7\nstore:\n  kv:\n    replicas: -1\n",
			want: []string{
				"omnigate.yaml:3:5: nats.streams.replicas: must be between 1 and 5, got 7",
				"omnigate.yaml:6:5: store.kv.replicas: must be between 1 and 5, got -1",
			},
		},
		{
			name: "http limits",
			yaml: "http:\n  body_timeout: -1s\n  max_header_bytes: 100\n  max_conns_per_client: -2\n",
			want: []string{
				"omnigate.yaml:2:3: http.body_timeout: must be a positive duration, got -1s",
				"omnigate.yaml:3:3: http.max_header_bytes: must be between 4096 and 16777216, got 100",
				"omnigate.yaml:4:3: http.max_conns_per_client: must be -1 (no cap) or a positive number, got -2",
			},
		},
		{
			name: "default checked against a set key",
			yaml: "nats:\n  consumer:\n    max_deliver: 2\n",
			want: []string{"omnigate.yaml:2:3: nats.consumer.backoff (default): has 4 entries; it must have fewer than max_deliver (2)"},
		},
		{
			name: "bad redis url is not echoed",
			yaml: "store:\n  redis:\n    url: http://user:hunter2@cache:6379\n",
			want: []string{"omnigate.yaml:3:5: store.redis.url: must start with redis:// or rediss://"},
		},
		{
			name: "redis database",
			yaml: "store:\n  redis:\n    url: redis://cache:6379/zero\n",
			want: []string{"omnigate.yaml:3:5: store.redis.url: database must be a number, as in redis://host:6379/0"},
		},
		{
			name: "nats url and auth",
			yaml: "nats:\n  url: localhost:4222\n  user: app\n  token: t0k3n\n",
			want: []string{
				"omnigate.yaml:2:3: nats.url: must be comma-separated nats://, tls://, ws:// or wss:// URLs with a host",
				"omnigate.yaml:4:3: nats.token: set only one of credentials, nkey_seed_file, user/password and token (user is set too)",
			},
		},
		{
			name: "tls pair and addresses",
			yaml: "http:\n  addr: localhost\n  public_url: support.example.com\nnats:\n  tls:\n    key_file: /dev/null\n  embedded:\n    listen: ':99999'\n",
			want: []string{
				`omnigate.yaml:2:3: http.addr: must be host:port, like :8080 or 127.0.0.1:8080; got "localhost"`,
				`omnigate.yaml:3:3: http.public_url: must be an absolute http:// or https:// URL, got "support.example.com"`,
				"omnigate.yaml:5:3: nats.tls.cert_file (default): required with key_file",
				"omnigate.yaml:6:5: nats.tls.key_file: /dev/null is not a regular file",
				`omnigate.yaml:8:5: nats.embedded.listen: port must be a number from 0 to 65535; got "99999"`,
			},
		},
		{
			name: "missing credentials file",
			yaml: "nats:\n  url: nats://a:4222,nats://b:4222\n  credentials: /nonexistent/app.creds\n",
			want: []string{"omnigate.yaml:3:3: nats.credentials: /nonexistent/app.creds does not exist"},
		},
		{
			name: "channel name",
			yaml: "channels:\n  SMS: {}\n",
			want: []string{"omnigate.yaml:2:3: channels.SMS: adapter names are lower-case snake_case, like sms or my_bot"},
		},
		{
			name: "merge keys",
			yaml: "base: &b {level: debug}\n",
			want: []string{"omnigate.yaml:1:1: base: unknown key (known keys: http, data_dir, log, nats, store, conversation, channels, routing, tickets, insight, analytics, telemetry, language)"},
		},
		{
			name: "env value names the variable",
			yaml: "nats:\n  streams:\n    replicas: 3\n",
			env:  map[string]string{"OMNIGATE_NATS_STREAMS_REPLICAS": "9", "OMNIGATE_HTTP_SHUTDOWN_TIMEOUT": "soon"},
			want: []string{
				`http.shutdown_timeout (env OMNIGATE_HTTP_SHUTDOWN_TIMEOUT): want a duration like 30s, 5m or 72h, got "soon"`,
				"nats.streams.replicas (env OMNIGATE_NATS_STREAMS_REPLICAS): must be between 1 and 5, got 9",
			},
		},
		{
			name: "default outside any key of the file",
			yaml: "log: {}\n",
			env:  map[string]string{"OMNIGATE_STORE_BACKEND": "redis"},
			want: []string{"omnigate.yaml: store.redis.url (default): required when store.backend is redis"},
		},
		{
			name: "env list item",
			env:  map[string]string{"OMNIGATE_NATS_CONSUMER_BACKOFF": "1s, x"},
			want: []string{`nats.consumer.backoff (env OMNIGATE_NATS_CONSUMER_BACKOFF): item 2: want a duration like 30s, 5m or 72h, got "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := config.Parse("omnigate.yaml", []byte(tt.yaml))
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v (%T), want config.Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestError_Error(t *testing.T) {
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "a.yaml", Line: 12, Column: 5, Path: "store.redis.url", Msg: "required"}, "a.yaml:12:5: store.redis.url: required"},
		{config.Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{config.Error{File: "a.yaml", Path: "x", Msg: "bad", Source: "default"}, "a.yaml: x (default): bad"},
		{config.Error{Path: "x", Msg: "bad", Source: "env OMNIGATE_X"}, "x (env OMNIGATE_X): bad"},
		{config.Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	var inner config.Problems
	inner.Add("url", "required")
	inner.Add("", "whole section %s", "bad")

	var p config.Problems
	if p.Err() != nil {
		t.Fatal("empty Problems must give a nil error")
	}
	p.Merge("redis", inner.Err())
	p.Merge("kv", errors.New("plain"))
	p.Merge("nothing", nil)
	p.Add("backoff[2]", "too short")

	var errs config.Errors
	if !errors.As(p.Err(), &errs) {
		t.Fatalf("Err() = %T", p.Err())
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Path+": "+e.Msg)
	}
	want := "redis.url: required|redis: whole section bad|kv: plain|backoff[2]: too short"
	if strings.Join(got, "|") != want {
		t.Errorf("got %s", strings.Join(got, "|"))
	}
}

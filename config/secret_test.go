package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
)

func TestSecret_References(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "token", "from-file\n")
	crlf := writeFile(t, "crlf", "windows\r\n")
	huge := writeFile(t, "huge", strings.Repeat("x", 1<<20+1))
	t.Setenv("NATS_TOKEN", "from-env")
	t.Setenv("EMPTY_TOKEN", "")

	tests := []struct {
		name    string
		value   string
		want    string
		wantErr string
	}{
		{"literal", "plain-token", "plain-token", ""},
		{"literal with dollar", "pa$$word", "pa$$word", ""},
		{"env", "${env:NATS_TOKEN}", "from-env", ""},
		{"empty env", "${env:EMPTY_TOKEN}", "", ""},
		{"file", "${file:" + file + "}", "from-file", ""},
		{"file with CRLF", "${file:" + crlf + "}", "windows", ""},
		{"unset env", "${env:NO_SUCH_VAR_42}", "", "omnigate.yaml:2:10: nats.token: environment variable NO_SUCH_VAR_42 is not set"},
		{"missing file", "${file:" + filepath.Join(dir, "nope") + "}", "", "omnigate.yaml:2:10: nats.token: secret file: " + filepath.Join(dir, "nope") + " does not exist"},
		{"device", "${file:/dev/zero}", "", "omnigate.yaml:2:10: nats.token: secret file: /dev/zero is not a regular file"},
		{"directory", "${file:" + dir + "}", "", "omnigate.yaml:2:10: nats.token: secret file: " + dir + " is not a regular file"},
		{"huge file", "${file:" + huge + "}", "", "omnigate.yaml:2:10: nats.token: secret file: " + huge + " is larger than 1048576 bytes"},
		{"unknown scheme", "${vault:x}", "", "omnigate.yaml:2:10: nats.token: unknown secret reference: use a literal, ${env:NAME} or ${file:/path}"},
		{"no name", "${env:}", "", "omnigate.yaml:2:10: nats.token: ${env:NAME} needs a variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("omnigate.yaml", []byte("nats:\n  token: '"+tt.value+"'\n"))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.NATS.Token.Value(); got != tt.want {
				t.Errorf("Value() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecret_UnmarshalYAML(t *testing.T) {
	t.Setenv("SOME_TOKEN", "abc")
	var v struct {
		Token config.Secret `yaml:"token"`
	}
	if err := yaml.Unmarshal([]byte("token: ${env:SOME_TOKEN}\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.Token.Value() != "abc" {
		t.Errorf("Value() = %q", v.Token.Value())
	}
}

func TestSecret_NeverPrinted(t *testing.T) {
	const secret = "hunter2-s3cret"
	c := config.Default()
	c.NATS.User = "app"
	c.NATS.Password = secret
	c.NATS.Token = secret
	c.Store.Redis.URL = "redis://:" + secret + "@cache:6379/0"
	s := config.Secret(secret)

	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outputs = append(outputs, fmt.Sprintf(format, c), fmt.Sprintf(format, s), fmt.Sprintf(format, &s), fmt.Sprintf(format, []config.Secret{s}))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(c), s.String(), s.GoString())
	for _, v := range []any{c, s, map[string]config.Secret{"k": s}} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(data))
		data, err = yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(data))
	}
	text, _ := s.MarshalText()
	outputs = append(outputs, string(text))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("loaded", "config", c, "token", s, slog.Any("url", c.Store.Redis.URL), slog.Group("g", "pw", s))
		outputs = append(outputs, buf.String())
	}

	for _, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
			t.Errorf("secret printed: %s", out)
		}
	}
	if got := fmt.Sprintf("%v|%#v|%s", s, s, config.Secret("")); got != `****|"****"|` {
		t.Errorf("formatting = %q", got)
	}
	if data, _ := json.Marshal(struct{ A, B config.Secret }{s, ""}); string(data) != `{"A":"****","B":""}` {
		t.Errorf("json = %s", data)
	}
	if s.Value() != secret {
		t.Errorf("Value() = %q", s.Value())
	}
}

func TestSecret_NotInErrors(t *testing.T) {
	const secret = "hunter2-s3cret"
	for _, doc := range []string{
		"store:\n  redis:\n    url: 'http://u:" + secret + "@h'\n",
		"store:\n  redis:\n    url: 'redis://u:" + secret + "@h/%zz'\n",
		"store:\n  redis: 'redis://u:" + secret + "@h'\n",
		"nats:\n  url: 'nats://u:" + secret + "@'\n",
	} {
		_, err := config.Parse("omnigate.yaml", []byte(doc))
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("want errors for %q, got %v", doc, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("secret in error: %v", err)
		}
	}
}

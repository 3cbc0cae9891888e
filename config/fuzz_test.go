package config_test

import (
	"errors"
	"os"
	"testing"

	"github.com/omnigate/omnigate/config"
)

// FuzzParse checks that Parse never panics and that it returns either a config or
// Errors, never both or neither.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("omnigate.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		badFile,
		"",
		"---\n...\n",
		"http: {addr: ':1'}\n",
		"a: &a [*a]\n",
		"nats: &n {streams: *n}\n",
		"channels: {sms: &s {x: *s}}\n",
		"nats: {consumer: {backoff: &b [1s, *b]}}\n",
		"<<: {log: {level: debug}}\n",
		"? [a]\n: b\n",
		"store:\n  redis:\n    url: ${env:}\n",
		"nats:\n  token: ${file:/}\n",
		"nats: {streams: {max_bytes: 99999999999999999999999}}\n",
		"log: !!binary aGVsbG8=\n",
		"\t- bad",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		var errs config.Errors
		if err != nil && (!errors.As(err, &errs) || len(errs) == 0) {
			t.Fatalf("error is %T, want non-empty config.Errors", err)
		}
	})
}

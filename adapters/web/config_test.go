package web_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/config"
)

func TestConfig_ZeroConfig(t *testing.T) {
	env := adaptertest.NewEnv(t, "web")
	a, err := adapters.Build("web", "", nil, env.Deps)
	if err != nil {
		t.Fatalf("build with no config: %v", err)
	}
	f := &fixture{env: env, a: a.(*web.Adapter), url: env.Server.URL}
	env.Start(t, f.a)
	if got := f.a.Sites(); len(got) != 1 || got[0] != "demo" {
		t.Fatalf("sites %v, want [demo]", got)
	}
	// The demo site takes pages of this server, and no others.
	c, _, err := dial(t, f, env.Server.URL)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.hello(map[string]any{"site": "demo"}); w.VisitorToken == "" {
		t.Fatal("no token")
	}
	if _, resp, err := dial(t, f, "https://elsewhere.example.com"); err == nil || resp.StatusCode != 403 {
		t.Errorf("foreign origin on the demo site: %v", err)
	}
	// The generated token key was kept in the store: a second instance (a
	// restart, a replica) accepts the tokens of the first.
	var w frame
	call(t, f, "POST", "/hello", "", "", map[string]any{"site": "demo"}, &w)
	env2 := adaptertest.NewEnv(t, "web")
	env2.Deps.Store = env.Store
	b, err := adapters.Build("web", "", nil, env2.Deps)
	if err != nil {
		t.Fatal(err)
	}
	f2 := &fixture{env: env2, a: b.(*web.Adapter), url: env2.Server.URL}
	var w2 frame
	if resp := call(t, f2, "POST", "/hello", "", "", map[string]any{"visitor_token": w.VisitorToken}, &w2); resp.StatusCode != 200 || w2.Visitor != w.Visitor {
		t.Errorf("second instance: %d %+v", resp.StatusCode, w2)
	}
}

func TestConfig_Validate(t *testing.T) {
	src := `
token_secret: short
token_ttl: 1s
sites:
  Bad Name: {}
  shop:
    secret: tiny
    origins: [https://ok.example.com, "ftp://x", "https://x.example.com/path", "*"]
    accounts: "a:b"
uploads:
  max_bytes: 10
  types: [image/png, text/html, "not a type"]
rate_limit:
  per_ip_burst: -1
trusted_proxies: [10.0.0.0/8, 192.168.1.1, nonsense]
`
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	_, err := adapters.Build("web", "omnigate.yaml", &node, adaptertest.NewEnv(t, "web").Deps)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want config.Errors", err)
	}
	text := err.Error()
	for _, want := range []string{
		"channels.web.token_secret", "channels.web.token_ttl", "channels.web.sites.Bad Name",
		"channels.web.sites.shop.secret", "channels.web.sites.shop.origins[1]", "channels.web.sites.shop.origins[2]",
		"channels.web.sites.shop.accounts", "channels.web.uploads.max_bytes", "channels.web.uploads.types[1]",
		"channels.web.uploads.types[2]", "channels.web.rate_limit", "channels.web.trusted_proxies[2]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no problem reported at %s in:\n%s", want, text)
		}
	}
	for _, leak := range []string{"short", "tiny"} {
		if strings.Contains(text, leak) {
			t.Errorf("a secret value is in the errors:\n%s", text)
		}
	}
	if strings.Contains(text, "origins[0]") || strings.Contains(text, "origins[3]") || strings.Contains(text, "trusted_proxies[1]") {
		t.Errorf("good values reported:\n%s", text)
	}
	if !strings.Contains(text, "omnigate.yaml:") {
		t.Errorf("errors carry no position:\n%s", text)
	}
}

func TestConfig_BothChannelsRegistered(t *testing.T) {
	for _, name := range []string{"web", "app"} {
		info, ok := adapters.Lookup(name)
		if !ok || info.Kind != adapters.Channel {
			t.Fatalf("%s not registered as a channel", name)
		}
		paths := map[string]bool{}
		for _, k := range info.Keys {
			paths[k.Path] = true
		}
		for _, want := range []string{"channels." + name + ".sites", "channels." + name + ".token_secret", "channels." + name + ".rate_limit.per_visitor"} {
			if !paths[want] {
				t.Errorf("%s: key %s not listed", name, want)
			}
		}
	}
}

// TestDocs_ListKeys keeps docs/web-protocol.md in step with the config.
func TestDocs_ListKeys(t *testing.T) {
	doc, err := os.ReadFile("../../docs/web-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := adapters.Lookup("web")
	for _, k := range info.Keys {
		key := strings.TrimPrefix(k.Path, "channels.web.")
		if !bytes.Contains(doc, []byte(key)) {
			t.Errorf("docs/web-protocol.md does not mention %s", key)
		}
	}
}

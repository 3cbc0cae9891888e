package adapters_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
)

// regConfig is the config of the adapters this file registers.
type regConfig struct {
	Token   config.Secret `yaml:"token" doc:"API token."`
	Retries int           `yaml:"retries" doc:"How often to retry."`
	Timeout time.Duration `yaml:"timeout" doc:"Timeout of one call."`
}

func (c *regConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
}

func (c *regConfig) Validate() error {
	var p config.Problems
	if c.Token == "" {
		p.Add("token", "required")
	}
	if c.Retries < 0 || c.Retries > 10 {
		p.Add("retries", "must be 0 to 10")
	}
	return p.Err()
}

// stubAdapter is an adapter that does nothing, keeping the config it was built with.
type stubAdapter struct {
	name string
	cfg  regConfig
}

func (a *stubAdapter) Name() string { return a.name }
func (a *stubAdapter) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (a *stubAdapter) Send(context.Context, *core.Message) (adapters.Receipt, error) {
	return adapters.Receipt{}, nil
}

var errBoom = errors.New("boom")

// Registered once per test binary: tests may run more than once (-count).
func init() {
	adapters.Register(adapters.Info{Name: "reg_cfg", Kind: adapters.Channel, Doc: "Registry test channel.", Address: adapters.AddressPhone}, func(cfg regConfig, deps adapters.Deps) (adapters.Adapter, error) {
		deps.Routes.HandleFunc("GET /ping", func(http.ResponseWriter, *http.Request) {})
		return &stubAdapter{name: "reg_cfg", cfg: cfg}, nil
	})
	adapters.Register(adapters.Info{Name: "reg_desk", Kind: adapters.Desk, Doc: "Registry test desk."}, func(cfg regConfig, _ adapters.Deps) (adapters.Adapter, error) {
		return &stubAdapter{name: "reg_desk", cfg: cfg}, nil
	})
	adapters.Register(adapters.Info{Name: "reg_fail", Kind: adapters.Channel, Doc: "Registry test channel whose factory fails."}, func(regConfig, adapters.Deps) (adapters.Adapter, error) {
		return nil, errBoom
	})
}

// panicOf returns what f panics with, or nil.
func panicOf(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

func TestRegister_Panics(t *testing.T) {
	factory := func(regConfig, adapters.Deps) (adapters.Adapter, error) { return nil, nil }
	tests := []struct {
		name, adapter, want string
	}{
		{"duplicate", "reg_cfg", `"reg_cfg" registered twice`},
		{"upper case", "Reg", "not a valid channel name"},
		{"dash", "my-bot", "not a valid channel name"},
		{"empty", "", "not a valid channel name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := panicOf(func() { adapters.Register(adapters.Info{Name: tt.adapter, Kind: adapters.Channel, Doc: "x"}, factory) })
			if s, _ := p.(string); !strings.Contains(s, tt.want) {
				t.Errorf("Register(%q) panicked with %v, want a panic containing %q", tt.adapter, p, tt.want)
			}
		})
	}
	if _, ok := adapters.Lookup("Reg"); ok {
		t.Error("an invalid name was registered despite the panic")
	}
}

func TestList(t *testing.T) {
	list := adapters.List()
	names := make([]string, len(list))
	for i, info := range list {
		names[i] = info.Name
	}
	if !slices.IsSorted(names) {
		t.Errorf("List not sorted by name: %v", names)
	}
	for _, want := range []string{"reg_cfg", "reg_desk", "reg_fail", "webhook"} {
		if !slices.Contains(names, want) {
			t.Errorf("List lacks %s: %v", want, names)
		}
	}
}

func TestLookup(t *testing.T) {
	info, ok := adapters.Lookup("reg_desk")
	if !ok {
		t.Fatal("reg_desk not found")
	}
	if info.Kind != adapters.Desk || info.Doc != "Registry test desk." {
		t.Errorf("info = %+v", info)
	}
	var keys []string
	for _, k := range info.Keys {
		keys = append(keys, k.Path+"="+k.Default+" "+k.Env)
	}
	want := []string{
		"channels.reg_desk.token= OMNIGATE_CHANNELS_REG_DESK_TOKEN",
		"channels.reg_desk.retries= OMNIGATE_CHANNELS_REG_DESK_RETRIES",
		"channels.reg_desk.timeout=5s OMNIGATE_CHANNELS_REG_DESK_TIMEOUT",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys:\n got %q\nwant %q", keys, want)
	}
	if _, ok := adapters.Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}
}

// build parses file as omnigate.yaml and builds channel name from its section.
func build(t *testing.T, name, file string) (adapters.Adapter, error) {
	t.Helper()
	c, err := config.Parse("omnigate.yaml", []byte(file))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	deps := adapters.Deps{Routes: adapters.NewRoutes(http.NewServeMux(), name)}
	node, ok := c.Channels[name]
	if !ok {
		return adapters.Build(name, "omnigate.yaml", nil, deps)
	}
	return adapters.Build(name, "omnigate.yaml", &node, deps)
}

func TestBuild(t *testing.T) {
	a, err := build(t, "reg_cfg", "channels:\n  reg_cfg:\n    token: t0k\n    retries: 3\n")
	if err != nil {
		t.Fatal(err)
	}
	got := a.(*stubAdapter).cfg
	want := regConfig{Token: "t0k", Retries: 3, Timeout: 5 * time.Second}
	if got != want {
		t.Errorf("factory got %+v, want %+v", got, want)
	}
}

func TestBuild_EnvOverrides(t *testing.T) {
	t.Setenv("OMNIGATE_CHANNELS_REG_CFG_RETRIES", "7")
	t.Setenv("OMNIGATE_CHANNELS_REG_CFG_TOKEN", "from-env")
	a, err := build(t, "reg_cfg", "channels:\n  reg_cfg:\n    token: from-file\n    retries: 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.(*stubAdapter).cfg; got.Retries != 7 || got.Token != "from-env" {
		t.Errorf("cfg = %+v, want retries 7 and the token from the environment", got)
	}
	// The environment alone configures an adapter whose section is absent.
	if _, err := build(t, "reg_cfg", "http:\n  addr: ':1'\n"); err != nil {
		t.Errorf("build from the environment only: %v", err)
	}
}

func TestBuild_ConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "strict decoding",
			file: "channels:\n  reg_cfg:\n    token: t\n    retries: many\n    timout: 5s\n",
			want: []string{
				`omnigate.yaml:4:14: channels.reg_cfg.retries: want an integer, got "many"`,
				"omnigate.yaml:5:5: channels.reg_cfg.timout: unknown key (known keys: token, retries, timeout)",
			},
		},
		{
			name: "validation",
			file: "channels:\n  reg_cfg:\n    retries: 11\n",
			want: []string{
				"omnigate.yaml:3:5: channels.reg_cfg.token (default): required",
				"omnigate.yaml:3:5: channels.reg_cfg.retries: must be 0 to 10",
			},
		},
		{
			name: "absent section",
			file: "http:\n  addr: ':1'\n",
			want: []string{"omnigate.yaml: channels.reg_cfg.token (default): required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, "reg_cfg", tt.file)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v (%T), want config.Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			var one *config.Error
			if !errors.As(err, &one) || one.File != "omnigate.yaml" {
				t.Errorf("errors.As(*config.Error) = %+v", one)
			}
		})
	}
}

func TestBuild_UnknownAdapter(t *testing.T) {
	_, err := adapters.Build("no_such_adapter", "omnigate.yaml", nil, adapters.Deps{})
	if !errors.Is(err, adapters.ErrUnknownAdapter) {
		t.Fatalf("err = %v, want ErrUnknownAdapter", err)
	}
	if !strings.Contains(err.Error(), `"no_such_adapter"`) {
		t.Errorf("err = %v, want the name in it", err)
	}
}

func TestBuild_FactoryError(t *testing.T) {
	_, err := build(t, "reg_fail", "channels:\n  reg_fail:\n    token: t\n")
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the factory's error", err)
	}
	// Located at the section, like the decoder's problems.
	if want := "omnigate.yaml:3:5: channels.reg_fail: boom"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

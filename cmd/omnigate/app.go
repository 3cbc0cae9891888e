package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
)

// commonFlags are the flags every command that touches the bus takes.
type commonFlags struct {
	config string
	data   string
	nats   string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "config `FILE` (default: none, everything embedded)")
	fs.StringVar(&c.data, "data", "", "data `DIR` (overrides data_dir; default ./data)")
	fs.StringVar(&c.nats, "nats", "", "NATS `URL` to connect to (overrides nats.url)")
}

// load reads the config file (or defaults) and applies the flags over it.
func (c *commonFlags) load() (*config.Config, error) {
	cfg, err := config.Load(c.config)
	if err != nil {
		return nil, err
	}
	if c.data != "" {
		// The store dir follows the data dir unless it was set on its own.
		if cfg.NATS.Embedded.StoreDir == filepath.Join(cfg.DataDir, "nats") {
			cfg.NATS.Embedded.StoreDir = filepath.Join(c.data, "nats")
		}
		cfg.DataDir = c.data
	}
	if c.nats != "" {
		cfg.NATS.URL = c.nats
	}
	return cfg, nil
}

// openTool opens the bus for a command-line tool (send, tail, dlq), logging
// only warnings, and returns the function that closes it.
func (c *commonFlags) openTool(ctx context.Context, name string, stderr io.Writer) (*bus.Bus, func(), error) {
	cfg, err := c.load()
	if err != nil {
		return nil, nil, err
	}
	quiet := newLogger(config.Log{Level: "warn"}, stderr)
	b, err := openBus(ctx, cfg, quiet, name)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { closeBus(b, 10*time.Second, quiet) }, nil
}

// newLogger builds the process logger from the log section.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// busOptions maps the nats section onto bus.Options.
func busOptions(cfg *config.Config, log *slog.Logger, name string) bus.Options {
	n := cfg.NATS
	return bus.Options{
		URL:          n.URL,
		Credentials:  n.Credentials,
		NKeySeedFile: n.NKeySeedFile,
		User:         n.User,
		Password:     n.Password.Value(),
		Token:        n.Token.Value(),
		TLS:          bus.TLSOptions{CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile},
		Embedded: bus.EmbeddedOptions{
			Listen:     n.Embedded.Listen,
			StoreDir:   n.Embedded.StoreDir,
			ServerName: n.Embedded.ServerName,
		},
		Streams: bus.StreamOptions{
			Replicas:         n.Streams.Replicas,
			DuplicateWindow:  n.Streams.DuplicateWindow,
			MaxAge:           n.Streams.MaxAge,
			MaxBytes:         n.Streams.MaxBytes,
			TranscriptMaxAge: n.Streams.TranscriptMaxAge,
		},
		Consumer: bus.ConsumerDefaults{
			MaxDeliver:    n.Consumer.MaxDeliver,
			Backoff:       n.Consumer.Backoff,
			AckWait:       n.Consumer.AckWait,
			MaxAckPending: n.Consumer.MaxAckPending,
		},
		Name:   name,
		Logger: log,
	}
}

// openBus opens the bus of cfg. A tool (send, tail, dlq) run beside a serving
// omnigate cannot open the same embedded store: it uses the server serve runs
// when serve listens for clients, and otherwise says how to reach it.
func openBus(ctx context.Context, cfg *config.Config, log *slog.Logger, name string) (*bus.Bus, error) {
	b, err := bus.Open(ctx, busOptions(cfg, log, name))
	if errors.Is(err, bus.ErrStoreInUse) && name != "omnigate" {
		// A tool beside a running serve: use serve's server when it listens.
		if url, ok := bus.RunningURL(cfg.NATS.Embedded.StoreDir); ok {
			opts := busOptions(cfg, log, name)
			opts.URL = url
			return bus.Open(ctx, opts)
		}
	}
	switch {
	case errors.Is(err, bus.ErrStoreInUse) && name != "omnigate":
		return nil, fmt.Errorf("omnigate serve is running on this data directory (%s) and takes no clients: "+
			"give it a client port with nats.embedded.listen (e.g. OMNIGATE_NATS_EMBEDDED_LISTEN=127.0.0.1:4222) and this command finds it, or pass --nats", cfg.NATS.Embedded.StoreDir)
	case errors.Is(err, bus.ErrStoreInUse):
		return nil, fmt.Errorf("another omnigate is running on this data directory (%s): stop it, or give this one its own --data", cfg.NATS.Embedded.StoreDir)
	case err != nil && cfg.NATS.URL == "" && name != "omnigate":
		return nil, fmt.Errorf("%w\n(if omnigate serve is running on this data directory, let it expose a client port with nats.embedded.listen, e.g. OMNIGATE_NATS_EMBEDDED_LISTEN=127.0.0.1:4222, and pass --nats nats://127.0.0.1:4222)", err)
	}
	return b, err
}

// openStore opens the state store of cfg on b, its operations measured on
// reg.
func openStore(ctx context.Context, cfg *config.Config, b *bus.Bus, reg prometheus.Registerer) (*store.Store, error) {
	var kv store.KV
	switch strings.ToLower(cfg.Store.Backend) {
	case "redis":
		r, err := store.NewRedis(ctx, store.RedisOptions{URL: cfg.Store.Redis.URL.Value(), Prefix: cfg.Store.Redis.Prefix})
		if err != nil {
			return nil, err
		}
		kv = r
	default:
		j, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{Replicas: cfg.Store.KV.Replicas})
		if err != nil {
			return nil, err
		}
		kv = j
	}
	kv, err := store.Instrument(kv, strings.ToLower(cfg.Store.Backend), reg)
	if err != nil {
		return nil, err
	}
	return store.New(kv, store.Options{ClosedTTL: cfg.Store.ClosedTTL, CacheBytes: max(cfg.Store.CacheBytes, 0)}), nil
}

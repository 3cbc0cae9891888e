package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Store configures where omnigate keeps state.
type Store struct {
	Backend string `yaml:"backend" default:"kv, or redis when redis.url is set" doc:"kv (JetStream key-value buckets on the NATS server) or redis."`
	// ClosedTTL applies to both backends.
	ClosedTTL time.Duration `yaml:"closed_ttl" doc:"How long the state of a closed conversation is kept (a customer who writes again within reopen_window reopens it)."`
	Redis     Redis         `yaml:"redis" doc:"Redis, used when backend is redis."`
	KV        KV            `yaml:"kv" doc:"JetStream key-value buckets, used when backend is kv."`
	// CacheBytes sizes the store's read cache (store.Options.CacheBytes).
	CacheBytes int `yaml:"cache_bytes" default:"134217728 (128 MiB)" doc:"Memory for the read cache of contacts, conversations and records, in bytes; every change, by any replica, drops what it changed. -1 turns it off."`
}

// SetDefaults chooses backend redis when redis.url is set and kv otherwise, and
// fills the Redis defaults. store.kv.replicas is derived from nats.streams.replicas
// by Config.SetDefaults.
func (s *Store) SetDefaults() {
	if s.Backend == "" {
		s.Backend = "kv"
		if s.Redis.URL != "" {
			s.Backend = "redis"
		}
	}
	if s.ClosedTTL == 0 {
		s.ClosedTTL = 720 * time.Hour
	}
	if s.CacheBytes == 0 {
		s.CacheBytes = 128 << 20
	}
	s.Redis.SetDefaults()
}

// Validate checks the backend and its settings.
func (s *Store) Validate() error {
	var p Problems
	checkEnum(&p, "backend", s.Backend, "kv", "redis")
	if s.Backend == "redis" && s.Redis.URL == "" {
		p.Add("redis.url", "required when store.backend is redis")
	}
	checkPositive(&p, "closed_ttl", s.ClosedTTL)
	p.Merge("redis", s.Redis.Validate())
	p.Merge("kv", s.KV.Validate())
	return p.Err()
}

// Redis configures the Redis store.
type Redis struct {
	URL    Secret `yaml:"url" doc:"redis://[user:password@]host:port[/db] or rediss:// for TLS. Required when backend is redis."`
	Prefix string `yaml:"prefix" doc:"Prefix of every key, so several deployments can share one Redis."`
}

// SetDefaults sets prefix "omnigate:".
func (r *Redis) SetDefaults() {
	if r.Prefix == "" {
		r.Prefix = "omnigate:"
	}
}

// Validate checks the URL, when set, without ever echoing it.
func (r *Redis) Validate() error {
	var p Problems
	if r.URL != "" {
		u, err := url.Parse(r.URL.Value())
		switch {
		case err != nil:
			p.Add("url", "is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			p.Add("url", "must start with redis:// or rediss://")
		case !validRedisDB(u.Path):
			p.Add("url", "database must be a number, as in redis://host:6379/0")
		}
	}
	return p.Err()
}

// validRedisDB accepts the path part of a Redis URL: empty, "/" or "/<db number>".
func validRedisDB(path string) bool {
	db := strings.TrimPrefix(path, "/")
	if db == "" {
		return true
	}
	n, err := strconv.Atoi(db)
	return err == nil && n >= 0
}

// KV configures the JetStream key-value store.
type KV struct {
	Replicas int `yaml:"replicas" default:"nats.streams.replicas" doc:"Copies of each bucket in a NATS cluster, 1 to 5."`

	// derived is set when Replicas was copied from nats.streams.replicas, whose
	// problems are reported there and not twice.
	derived bool
}

// Validate checks replicas.
func (k *KV) Validate() error {
	var p Problems
	if !k.derived {
		checkRange(&p, "replicas", k.Replicas, 1, 5)
	}
	return p.Err()
}

package config

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/omnigate/omnigate/core/bus"
)

// NATS configures the connection to NATS JetStream, or the embedded server.
type NATS struct {
	URL          string   `yaml:"url" doc:"NATS server URLs, comma-separated (nats://, tls://, ws:// or wss://). Empty runs an embedded server in this process."`
	Credentials  string   `yaml:"credentials" doc:"Path to a .creds file (user JWT and NKey seed)."`
	NKeySeedFile string   `yaml:"nkey_seed_file" doc:"Path to a file holding an NKey seed."`
	User         string   `yaml:"user" doc:"User name, with password."`
	Password     Secret   `yaml:"password" doc:"Password for user."`
	Token        Secret   `yaml:"token" doc:"Authentication token."`
	TLS          NATSTLS  `yaml:"tls" doc:"TLS for the connection to NATS."`
	Embedded     Embedded `yaml:"embedded" doc:"The embedded NATS server, used when url is empty."`
	Streams      Streams  `yaml:"streams" doc:"JetStream streams (OMNI_IN, OMNI_DESK, OMNI_OUT, ...)."`
	Consumer     Consumer `yaml:"consumer" doc:"Durable consumers: redelivery and flow control."`
}

// SetDefaults fills the embedded server, streams and consumer defaults.
// nats.embedded.store_dir is derived from data_dir by Config.SetDefaults.
func (n *NATS) SetDefaults() {
	n.Streams.SetDefaults()
	n.Consumer.SetDefaults()
}

// Validate checks URLs, that at most one way of authenticating is set, files, and
// the embedded server, stream and consumer settings.
func (n *NATS) Validate() error {
	var p Problems
	if n.URL != "" {
		for s := range strings.SplitSeq(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || u.Host == "" || !isNATSScheme(u.Scheme) {
				// The URL is not echoed: it may carry a password.
				p.Add("url", "must be comma-separated nats://, tls://, ws:// or wss:// URLs with a host")
				break
			}
		}
	}
	checkFile(&p, "credentials", n.Credentials)
	checkFile(&p, "nkey_seed_file", n.NKeySeedFile)
	var methods []string
	for _, m := range []struct {
		key string
		set bool
	}{
		{"credentials", n.Credentials != ""},
		{"nkey_seed_file", n.NKeySeedFile != ""},
		{"user", n.User != ""},
		{"token", n.Token != ""},
	} {
		if m.set {
			methods = append(methods, m.key)
		}
	}
	if len(methods) > 1 {
		p.Add(methods[1], "set only one of credentials, nkey_seed_file, user/password and token (%s is set too)", methods[0])
	}
	if n.Password != "" && n.User == "" {
		p.Add("password", "needs user")
	}
	p.Merge("tls", n.TLS.Validate())
	p.Merge("embedded", n.Embedded.Validate())
	p.Merge("streams", n.Streams.Validate())
	p.Merge("consumer", n.Consumer.Validate())
	return p.Err()
}

func isNATSScheme(s string) bool {
	switch s {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

// checkFile reports a set path that is not a readable regular file.
func checkFile(p *Problems, path, file string) {
	if file == "" {
		return
	}
	if err := checkRegular(file, 0); err != nil {
		p.Add(path, "%v", err)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		p.Add(path, "%v", err)
		return
	}
	_ = f.Close()
}

// NATSTLS configures TLS to NATS.
type NATSTLS struct {
	CAFile   string `yaml:"ca_file" doc:"PEM file of CAs that sign the server certificate; empty uses the system roots."`
	CertFile string `yaml:"cert_file" doc:"PEM client certificate, for mutual TLS; needs key_file."`
	KeyFile  string `yaml:"key_file" doc:"PEM private key of cert_file."`
}

// Validate checks that the files exist and that cert_file and key_file come together.
func (t *NATSTLS) Validate() error {
	var p Problems
	checkFile(&p, "ca_file", t.CAFile)
	checkFile(&p, "cert_file", t.CertFile)
	checkFile(&p, "key_file", t.KeyFile)
	if t.CertFile != "" && t.KeyFile == "" {
		p.Add("key_file", "required with cert_file")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		p.Add("cert_file", "required with key_file")
	}
	return p.Err()
}

// Embedded configures the NATS server that runs inside omnigate when nats.url is empty.
type Embedded struct {
	Listen     string `yaml:"listen" doc:"host:port for the embedded server's client port, so other processes can connect (port 0 picks a free port). Empty exposes no port: in-process clients only."`
	StoreDir   string `yaml:"store_dir" default:"<data_dir>/nats" doc:"JetStream storage directory."`
	ServerName string `yaml:"server_name" doc:"Server name shown in monitoring; empty lets NATS generate one."`
}

// Validate checks listen and server_name.
func (e *Embedded) Validate() error {
	var p Problems
	if e.Listen != "" {
		checkHostPort(&p, "listen", e.Listen)
	}
	if e.StoreDir == "" {
		p.Add("store_dir", "required")
	}
	if strings.ContainsFunc(e.ServerName, unicode.IsSpace) {
		p.Add("server_name", "must not contain spaces")
	}
	return p.Err()
}

// Streams configures the JetStream streams omnigate creates.
type Streams struct {
	Replicas         int           `yaml:"replicas" doc:"Copies of each stream in a NATS cluster, 1 to 5; 1 for a single server."`
	DuplicateWindow  time.Duration `yaml:"duplicate_window" doc:"How long a provider retry with the same message id is recognized as a duplicate."`
	MaxAge           time.Duration `yaml:"max_age" doc:"How long messages stay in the message streams."`
	MaxBytes         int64         `yaml:"max_bytes" doc:"Size limit of each stream in bytes; -1 is unlimited."`
	TranscriptMaxAge time.Duration `yaml:"transcript_max_age" doc:"How long conversation transcripts are kept."`
}

// SetDefaults sets the bus's defaults (core/bus): replicas 1,
// duplicate_window 2m, max_age 72h, max_bytes -1 and transcript_max_age 2160h
// (90 days).
func (s *Streams) SetDefaults() {
	if s.Replicas == 0 {
		s.Replicas = bus.DefaultReplicas
	}
	if s.DuplicateWindow == 0 {
		s.DuplicateWindow = bus.DefaultDuplicateWindow
	}
	if s.MaxAge == 0 {
		s.MaxAge = bus.DefaultMaxAge
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = bus.DefaultMaxBytes
	}
	if s.TranscriptMaxAge == 0 {
		s.TranscriptMaxAge = bus.DefaultTranscriptMaxAge
	}
}

// Validate checks ranges; JetStream needs duplicate_window <= max_age.
func (s *Streams) Validate() error {
	var p Problems
	checkRange(&p, "replicas", s.Replicas, 1, 5)
	checkPositive(&p, "duplicate_window", s.DuplicateWindow)
	checkPositive(&p, "max_age", s.MaxAge)
	if s.DuplicateWindow > s.MaxAge && s.MaxAge > 0 {
		p.Add("duplicate_window", "must not be longer than max_age (%s)", fmtDuration(s.MaxAge))
	}
	if s.MaxBytes < -1 {
		p.Add("max_bytes", "must be -1 (unlimited) or a positive size, got %d", s.MaxBytes)
	}
	checkPositive(&p, "transcript_max_age", s.TranscriptMaxAge)
	return p.Err()
}

// Consumer configures omnigate's durable JetStream consumers.
type Consumer struct {
	MaxDeliver    int             `yaml:"max_deliver" doc:"Deliveries of a message before it goes to the dead-letter subject, at least 1. Retries while a store, NATS or a provider is unavailable do not count: they go on until it is back."`
	Backoff       []time.Duration `yaml:"backoff" doc:"Delays before each redelivery; the last one repeats. Must have fewer entries than max_deliver. [] redelivers after ack_wait."`
	AckWait       time.Duration   `yaml:"ack_wait" doc:"How long a message held by a replica that stopped answering (it crashed, its NATS node died) waits before another replica gets it; a replica still working on a message keeps it, up to 30s per attempt."`
	MaxAckPending int             `yaml:"max_ack_pending" doc:"Messages in flight per consumer; -1 is unlimited."`
}

// SetDefaults sets the bus's defaults (core/bus): max_deliver 5, backoff [1s,
// 5s, 30s, 2m] (unless the file sets a list, even an empty one), ack_wait 3s
// and max_ack_pending 1000.
func (c *Consumer) SetDefaults() {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = bus.DefaultMaxDeliver
	}
	if c.Backoff == nil {
		c.Backoff = bus.DefaultBackoff()
	}
	if c.AckWait == 0 {
		c.AckWait = bus.DefaultAckWait
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = bus.DefaultMaxAckPending
	}
}

// Validate checks ranges; JetStream needs fewer backoff entries than max_deliver.
func (c *Consumer) Validate() error {
	var p Problems
	if c.MaxDeliver < 1 {
		p.Add("max_deliver", "must be at least 1, got %d", c.MaxDeliver)
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			p.Add("backoff["+strconv.Itoa(i)+"]", "must be a positive duration, got %s", d)
		}
	}
	if len(c.Backoff) > 0 && len(c.Backoff) >= c.MaxDeliver {
		p.Add("backoff", "has %d entries; it must have fewer than max_deliver (%d)", len(c.Backoff), c.MaxDeliver)
	}
	checkPositive(&p, "ack_wait", c.AckWait)
	if c.MaxAckPending < -1 {
		p.Add("max_ack_pending", "must be -1 (unlimited) or positive, got %d", c.MaxAckPending)
	}
	return p.Err()
}

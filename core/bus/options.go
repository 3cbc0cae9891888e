package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Options configure a Bus. The zero value runs an embedded server with
// JetStream in ./data/nats and no client port; Open fills every unset default.
type Options struct {
	// URL of an external NATS cluster (comma-separated seeds). Empty runs an
	// embedded server.
	URL string
	// Credentials is the path of a .creds file (JWT + NKey) for URL.
	Credentials string
	// NKeySeedFile is the path of an NKey seed file for URL.
	NKeySeedFile string
	// User and Password, or Token, authenticate to URL.
	User, Password, Token string
	// TLS secures the connection to URL.
	TLS TLSOptions
	// Embedded configures the in-process server used when URL is empty.
	Embedded EmbeddedOptions
	// Streams sets the limits of omnigate's streams.
	Streams StreamOptions
	// Consumer sets the redelivery defaults of every consumer.
	Consumer ConsumerDefaults
	// Name is the NATS connection name shown in server monitoring.
	Name string
	// Logger receives the bus's and the embedded server's logs.
	Logger *slog.Logger
}

// TLSOptions are file paths of PEM files for a TLS connection to NATS.
type TLSOptions struct {
	CAFile, CertFile, KeyFile string
}

// EmbeddedOptions configure the in-process nats-server.
type EmbeddedOptions struct {
	// Listen is host:port of a client port for other processes (e.g. the nats
	// CLI or an out-of-process adapter). Empty exposes none.
	Listen string
	// StoreDir holds JetStream's files. Default ./data/nats.
	StoreDir string
	// ServerName names the server. Default "omnigate".
	ServerName string
}

// StreamOptions are the limits applied to omnigate's streams at start.
type StreamOptions struct {
	// Replicas of every stream (1 for the embedded server, up to 5 on a cluster).
	Replicas int
	// DuplicateWindow is how long Nats-Msg-Id deduplication remembers an id.
	DuplicateWindow time.Duration
	// MaxAge of messages in the in, desk, out and event streams.
	MaxAge time.Duration
	// MaxBytes of each stream; -1 is unlimited.
	MaxBytes int64
	// TranscriptMaxAge is how long conversation transcripts are kept.
	TranscriptMaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept.
	DLQMaxAge time.Duration
}

// ConsumerDefaults are the redelivery settings of consumers that set none.
type ConsumerDefaults struct {
	// MaxDeliver is how many times a handler is tried before the dead letter.
	MaxDeliver int
	// Backoff are the delays before the 2nd, 3rd, ... attempt after an error;
	// the last one repeats.
	Backoff []time.Duration
	// AckWait is how long a delivery may go without an answer before JetStream
	// gives it to another replica: what a process that died held is handed
	// over after about this long. Consumers tell the server every third of it
	// that the deliveries they hold are still being worked on, so a handler
	// may take longer (up to HandlerTimeout).
	AckWait time.Duration
	// HandlerTimeout bounds one attempt of a handler run by a Group.
	HandlerTimeout time.Duration
	// MaxAckPending bounds unacknowledged messages per consumer.
	MaxAckPending int
}

// Defaults of the streams and consumers: the one place they are set (the
// config's nats section takes its defaults from here).
const (
	DefaultReplicas         = 1
	DefaultDuplicateWindow  = 2 * time.Minute
	DefaultMaxAge           = 72 * time.Hour
	DefaultMaxBytes         = -1 // unlimited
	DefaultTranscriptMaxAge = 90 * 24 * time.Hour
	DefaultDLQMaxAge        = 14 * 24 * time.Hour
	DefaultMaxDeliver       = 5
	DefaultAckWait          = 3 * time.Second
	DefaultHandlerTimeout   = 30 * time.Second
	DefaultMaxAckPending    = 1000
)

// DefaultBackoff returns the default delays before each redelivery: 1s, 5s,
// 30s, 2m.
func DefaultBackoff() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "omnigate"
	}
	if o.Embedded.StoreDir == "" {
		o.Embedded.StoreDir = "./data/nats"
	}
	if o.Embedded.ServerName == "" {
		o.Embedded.ServerName = "omnigate"
	}
	s := &o.Streams
	if s.Replicas == 0 {
		s.Replicas = DefaultReplicas
	}
	if s.DuplicateWindow == 0 {
		s.DuplicateWindow = DefaultDuplicateWindow
	}
	if s.MaxAge == 0 {
		s.MaxAge = DefaultMaxAge
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if s.TranscriptMaxAge == 0 {
		s.TranscriptMaxAge = DefaultTranscriptMaxAge
	}
	if s.DLQMaxAge == 0 {
		s.DLQMaxAge = DefaultDLQMaxAge
	}
	c := &o.Consumer
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff()
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Streams.Replicas < 1 || o.Streams.Replicas > 5 {
		errs = append(errs, fmt.Errorf("streams.replicas: %d, must be 1 to 5", o.Streams.Replicas))
	}
	if o.URL == "" && o.Streams.Replicas != 1 {
		errs = append(errs, fmt.Errorf("streams.replicas: %d, the embedded server is a single node: use 1 or set nats.url", o.Streams.Replicas))
	}
	if o.Consumer.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("consumer.max_deliver: %d, must be at least 1", o.Consumer.MaxDeliver))
	}
	if o.Embedded.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Embedded.Listen); err != nil {
			errs = append(errs, fmt.Errorf("embedded.listen: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bus: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

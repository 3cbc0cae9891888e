// Package bus is omnigate's message bus on NATS JetStream: the streams of the
// design, publishing with acknowledgement and deduplication, durable consumers
// with bounded redelivery and a dead-letter queue, and an embedded nats-server
// for single-process deployments.
package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/semver"
)

// Bus is a connection to JetStream with omnigate's streams in place. It is safe
// for concurrent use. Close it once, after the consumers it started.
type Bus struct {
	opts Options
	log  *slog.Logger
	srv  *server.Server // nil when connected to an external NATS
	// lock holds the embedded server's store dir.
	lock *storeLock
	nc   *nats.Conn
	js   jetstream.JetStream

	mu        sync.Mutex
	consumers map[*Consumer]struct{}
	closed    bool

	// outage counts and logs the deliveries waiting for a dependency.
	outage outage
	// metrics count what RegisterMetrics exports.
	metrics *metrics
}

// Open starts the embedded server (when opts.URL is empty) or connects to
// opts.URL, then creates or updates omnigate's streams.
func Open(ctx context.Context, opts Options) (*Bus, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	b := &Bus{opts: opts, log: opts.Logger, consumers: map[*Consumer]struct{}{}, metrics: newMetrics()}
	if err := b.connect(ctx); err != nil {
		b.shutdownServer()
		return nil, err
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	b.js = js
	if err := b.ensureStreams(ctx); err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, err
	}
	return b, nil
}

func (b *Bus) connect(ctx context.Context) error {
	copts := []nats.Option{
		nats.Name(b.opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	addr := b.opts.URL
	if addr == "" {
		srv, err := b.startEmbedded()
		if err != nil {
			return err
		}
		b.srv = srv
		copts = append(copts, nats.InProcessServer(srv))
	} else {
		auth, err := b.authOptions()
		if err != nil {
			return err
		}
		copts = append(copts, auth...)
	}
	// nats.Connect does not take a context; bound it by the context's deadline.
	if dl, ok := ctx.Deadline(); ok {
		copts = append(copts, nats.Timeout(time.Until(dl)))
	}
	nc, err := nats.Connect(addr, copts...)
	if err != nil {
		if addr == "" {
			return fmt.Errorf("bus: connect to embedded server: %w", err)
		}
		return fmt.Errorf("bus: connect to %s: %w (is NATS running there, with JetStream enabled?)", redactURL(addr), err)
	}
	if err := checkServerVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return fmt.Errorf("bus: %s: %w", cmp.Or(redactURL(addr), "embedded server"), err)
	}
	b.nc = nc
	return nil
}

// MinServerVersion is the oldest nats-server omnigate runs on: 2.11 brought
// per-message TTLs, which the store's buckets use, and pinned consumers, which
// give each pipeline partition one owner.
const MinServerVersion = "2.11.0"

// checkServerVersion refuses a server older than MinServerVersion, saying which
// version is needed and which was found. An unreadable version counts as older.
func checkServerVersion(found string) error {
	if semver.Compare("v"+strings.TrimPrefix(found, "v"), "v"+MinServerVersion) < 0 {
		return fmt.Errorf("nats-server %s is too old: omnigate needs %s or later (per-message TTLs and pinned consumers); upgrade the server, or leave nats.url empty to run the embedded one", found, MinServerVersion)
	}
	return nil
}

func (b *Bus) authOptions() ([]nats.Option, error) {
	var o []nats.Option
	if b.opts.Credentials != "" {
		o = append(o, nats.UserCredentials(b.opts.Credentials))
	}
	if b.opts.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(b.opts.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("bus: nkey seed %s: %w", b.opts.NKeySeedFile, err)
		}
		o = append(o, opt)
	}
	if b.opts.User != "" {
		o = append(o, nats.UserInfo(b.opts.User, b.opts.Password))
	}
	if b.opts.Token != "" {
		o = append(o, nats.Token(b.opts.Token))
	}
	t := b.opts.TLS
	if t.CAFile != "" {
		o = append(o, nats.RootCAs(t.CAFile))
	}
	if t.CertFile != "" || t.KeyFile != "" {
		o = append(o, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	return o, nil
}

func (b *Bus) startEmbedded() (*server.Server, error) {
	e := b.opts.Embedded
	lock, err := lockStore(e.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := b.runEmbedded()
	if err != nil {
		lock.release()
		return nil, err
	}
	b.lock = lock
	if e.Listen != "" {
		if err := lock.announce(srv.ClientURL()); err != nil {
			b.log.Warn("client URL not written to the store dir; tools will not find this server", "err", err)
		}
	}
	return srv, nil
}

// runEmbedded starts the embedded server on the locked store dir.
func (b *Bus) runEmbedded() (*server.Server, error) {
	e := b.opts.Embedded
	sopts := &server.Options{
		ServerName: e.ServerName,
		JetStream:  true,
		StoreDir:   e.StoreDir,
		NoSigs:     true,
		DontListen: e.Listen == "",
	}
	if e.Listen != "" {
		host, port, _ := net.SplitHostPort(e.Listen) // validated
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("bus: embedded.listen %q: port: %w", e.Listen, err)
		}
		sopts.Host, sopts.Port = host, p
		if p == 0 {
			sopts.Port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
		}
		if host == "" {
			sopts.Host = "0.0.0.0"
		}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{log: b.log.With("component", "nats-server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server not ready within 30s (store dir %s: is another omnigate using it?)", e.StoreDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server started without JetStream (store dir %s)", e.StoreDir)
	}
	return srv, nil
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.release()
		b.lock = nil
	}
}

// streamConfigs are omnigate's streams with the limits of the options.
func (b *Bus) streamConfigs() []jetstream.StreamConfig {
	s := b.opts.Streams
	mk := func(name, root string, maxAge time.Duration, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{root + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    s.Replicas,
			MaxAge:      maxAge,
			MaxBytes:    s.MaxBytes,
			Duplicates:  s.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
			AllowDirect: true,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamIn, RootIn, s.MaxAge, "omnigate: inbound from customers and desks"),
		mk(StreamConv, RootConv, s.TranscriptMaxAge, "omnigate: conversation transcripts"),
		mk(StreamDesk, RootDesk, s.MaxAge, "omnigate: what agent desks show"),
		mk(StreamOut, RootOut, s.MaxAge, "omnigate: replies to send to customers"),
		mk(StreamEvt, RootEvt, s.MaxAge, "omnigate: lifecycle and delivery events"),
		mk(StreamDLQ, RootDLQ, s.DLQMaxAge, "omnigate: dead letters"),
	}
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, cfg := range b.streamConfigs() {
		for attempt := 1; ; attempt++ {
			// One request at a time, each bounded: after a whole cluster
			// restarted, a request may go unanswered while the stream elects
			// its leader, and the next one succeeds.
			actx, cancel := context.WithTimeout(ctx, streamRequestTimeout)
			_, err := b.js.CreateOrUpdateStream(actx, cfg)
			cancel()
			if err == nil {
				break
			}
			if !IsUnavailable(err) || ctx.Err() != nil {
				return fmt.Errorf("bus: create or update stream %s: %w", cfg.Name, err)
			}
			b.log.Warn("stream not ready yet, trying again", "stream", cfg.Name, "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("bus: create or update stream %s: %w (%w)", cfg.Name, ctx.Err(), err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// streamRequestTimeout bounds one stream create or update at start.
const streamRequestTimeout = 5 * time.Second

// JetStream is the underlying JetStream context, for the store and for tools.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn is the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// RunningURL returns the client URL of the embedded server that holds store
// dir dir, when it listens for clients (Options.Embedded.Listen); ok is false
// when none does or it listens for none. Tools use it to reach a running
// omnigate serve instead of opening its store.
func RunningURL(dir string) (url string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, storeLockFile))
	if err != nil {
		return "", false
	}
	url = strings.TrimSpace(string(b))
	return url, url != ""
}

// Embedded reports whether the bus runs its own in-process server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ClientURL is where other processes reach the embedded server, or "" when it
// exposes no client port or the bus is connected to an external NATS.
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.opts.Embedded.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// Options returns the options after defaults were applied.
func (b *Bus) Options() Options { return b.opts }

// Ready checks that JetStream answers; /readyz calls it.
func (b *Bus) Ready(ctx context.Context) error {
	if b.nc.IsClosed() {
		return ErrClosed
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("bus: jetstream not ready: %w", err)
	}
	return nil
}

// Close stops every consumer (letting in-flight handlers finish until ctx is
// done), drains the connection so pending publishes complete, and shuts the
// embedded server down.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	cs := make([]*Consumer, 0, len(b.consumers))
	for c := range b.consumers {
		cs = append(cs, c)
	}
	b.mu.Unlock()

	var errs []error
	for _, c := range cs {
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	drained := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(drained) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	} else {
		select {
		case <-drained:
		case <-ctx.Done():
			b.nc.Close()
			errs = append(errs, fmt.Errorf("bus: drain: %w", ctx.Err()))
		}
	}
	b.shutdownServer()
	return errors.Join(errs...)
}

// redactURL hides user info in a comma-separated list of NATS URLs.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("****")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// serverLogger sends the embedded nats-server's logs to slog.
type serverLogger struct{ log *slog.Logger }

// Notices are the server banner and lifecycle lines: debug detail for omnigate.
func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

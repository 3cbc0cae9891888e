package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/bus"
)

// ServeConfig is what a benchmark sets in the config of one "omnigate serve"
// replica; Serve writes the file.
type ServeConfig struct {
	// Dir holds the config file, the data directory and the log.
	Dir string
	// Port is the HTTP port on 127.0.0.1; http.public_url points at it, so
	// webhooks are signed for http://127.0.0.1:<Port>.
	Port int
	// NATSURL is nats.url, the servers' URLs comma-separated; empty runs serve's
	// embedded server on a free port.
	NATSURL string
	// StreamReplicas is nats.streams.replicas; 0 keeps the default.
	StreamReplicas int
	// MaxDeliver and Backoff are nats.consumer.max_deliver and backoff; zero and
	// nil keep the defaults.
	MaxDeliver int
	Backoff    []time.Duration
	// RedisURL, when set, selects store.backend redis at this URL, with keys
	// under RedisPrefix.
	RedisURL, RedisPrefix string
	// TwilioURL is the SMS channel's api_base_url.
	TwilioURL string
	// LogLevel is log.level; default warn.
	LogLevel string
}

// YAML renders the config file.
func (c ServeConfig) YAML() string {
	base := "http://127.0.0.1:" + strconv.Itoa(c.Port)
	var y strings.Builder
	fmt.Fprintf(&y, "http:\n  addr: 127.0.0.1:%d\n  public_url: %s\ndata_dir: %s\nlog:\n  level: %s\n",
		c.Port, base, filepath.Join(c.Dir, "data"), cmp.Or(c.LogLevel, "warn"))
	y.WriteString("nats:\n")
	if c.NATSURL != "" {
		fmt.Fprintf(&y, "  url: %s\n", c.NATSURL)
	} else {
		y.WriteString("  embedded:\n    listen: 127.0.0.1:0\n")
	}
	if c.StreamReplicas > 0 {
		fmt.Fprintf(&y, "  streams:\n    replicas: %d\n", c.StreamReplicas)
	}
	if c.MaxDeliver > 0 || c.Backoff != nil {
		y.WriteString("  consumer:\n")
		if c.MaxDeliver > 0 {
			fmt.Fprintf(&y, "    max_deliver: %d\n", c.MaxDeliver)
		}
		if c.Backoff != nil {
			var b []string
			for _, d := range c.Backoff {
				b = append(b, d.String())
			}
			fmt.Fprintf(&y, "    backoff: [%s]\n", strings.Join(b, ", "))
		}
	}
	if c.RedisURL != "" {
		fmt.Fprintf(&y, "store:\n  backend: redis\n  redis:\n    url: %s\n    prefix: %q\n", c.RedisURL, c.RedisPrefix)
	}
	fmt.Fprintf(&y, "channels:\n  sms:\n    account_sid: %s\n    auth_token: %s\n    from: \"%s\"\n    api_base_url: %s\n",
		AccountSID, AuthToken, FromNumber, c.TwilioURL)
	return y.String()
}

// Serve is one "omnigate serve" replica that can be started again after it
// stopped, on the same port, config and data directory.
type Serve struct {
	// Name names the replica in reports.
	Name string
	// Base is http://127.0.0.1:<port>, where its webhooks are.
	Base string
	// Proc is the running process, nil before the first Start.
	Proc *Proc
	// NATSURL is where its embedded server listens (embedded only), known
	// once it is ready.
	NATSURL string

	bin, file, logFile string
	embedded           bool
}

// NewServe writes c's config file and returns the replica, not started; bin is
// the omnigate binary.
func NewServe(name, bin string, c ServeConfig) (*Serve, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(c.Dir, "omnigate.yaml")
	if err := os.WriteFile(file, []byte(c.YAML()), 0o600); err != nil {
		return nil, err
	}
	return &Serve{
		Name: name, Base: "http://127.0.0.1:" + strconv.Itoa(c.Port),
		bin: bin, file: file, logFile: filepath.Join(c.Dir, "serve.log"), embedded: c.NATSURL == "",
	}, nil
}

// LogFile is where the replica's output goes, every run appended.
func (s *Serve) LogFile() string { return s.logFile }

// Start runs serve and waits up to timeout for /readyz to answer 200. On
// failure the process is killed and the error quotes the end of its output.
func (s *Serve) Start(ctx context.Context, timeout time.Duration) error {
	p, err := Start(s.Name, StartOptions{LogFile: s.logFile}, s.bin, "serve", "--config", s.file)
	if err != nil {
		return err
	}
	s.Proc = p
	if err := WaitHTTP(ctx, s.Base+"/readyz", timeout, p.Done()); err != nil {
		p.Kill()
		return fmt.Errorf("%s not ready: %w\n%s", s.Name, err, p.Tail())
	}
	if s.embedded {
		u, ok := bus.RunningURL(filepath.Join(filepath.Dir(s.file), "data", "nats"))
		if !ok {
			p.Kill()
			return fmt.Errorf("%s: the embedded server does not say where it listens", s.Name)
		}
		s.NATSURL = u
	}
	return nil
}

// WaitHTTP polls url until it answers 200, for at most timeout. It gives up
// early when exited is closed (the server's process died) or ctx is done.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	last := errors.New("no answer")
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s answered %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited (last: %v)", last)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s: %v", timeout, last)
		}
	}
}

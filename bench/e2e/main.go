// Command e2e measures omnigate end to end against raw JetStream on the same
// nats-server, in one run, side by side (A B A B):
//
//   - raw: async publishes of -size byte messages with deduplication ids and
//     one durable pull consumer that acks each, on the server omnigate uses;
//   - omnigate: a real "omnigate serve" process, signed Twilio SMS webhooks
//     over HTTP, the adapter, JetStream, the pipeline, and the desk subject,
//     where this program listens.
//
// Throughput is closed loop (-conc webhooks in flight at once); latency is
// open loop (-rate webhooks a second for -duration, each sent at its scheduled
// time, timed from that time to the desk publish, so a stalled server cannot
// hide its queue). CPU per message comes from each process's own accounting
// (/proc/<pid>/stat): for raw, this program plus the server; for omnigate, the
// serve process plus the server (the embedded server lives in serve). The
// webhook client's own CPU is not counted.
//
//	go run ./bench/e2e                        # embedded server, KV store
//	go run ./bench/e2e -server external       # a nats-server process built from go.mod
//	go run ./bench/e2e -store redis           # Redis store (OMNIGATE_TEST_REDIS_URL)
//
// See docs/performance.md for the method and the results.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/bench/internal/harness"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

type config struct {
	n, size, conc, senders, rounds, rate, replicas int
	duration                                       time.Duration
	server, store, redisURL, omnigate              string
	skipOpen                                       bool
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 20000, "messages per closed-loop run (raw and omnigate)")
	flag.IntVar(&c.size, "size", 1024, "message size in bytes (the SMS body for omnigate)")
	flag.IntVar(&c.conc, "conc", 64, "webhooks in flight at once in the closed loop")
	flag.IntVar(&c.senders, "senders", 1000, "distinct customer phone numbers")
	flag.IntVar(&c.rounds, "rounds", 2, "A B rounds of the closed loop; medians are reported")
	flag.IntVar(&c.rate, "rate", 1000, "offered webhooks per second in the open loop")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "length of the open loop")
	flag.BoolVar(&c.skipOpen, "no-open", false, "skip the open loop")
	flag.IntVar(&c.replicas, "replicas", 1, "omnigate serve processes sharing the work (external server only)")
	flag.StringVar(&c.server, "server", "embedded", "embedded (serve's own) or external (a nats-server process)")
	flag.StringVar(&c.store, "store", "kv", "store backend: kv or redis")
	flag.StringVar(&c.redisURL, "redis", envOr("OMNIGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for -store redis")
	flag.StringVar(&c.omnigate, "omnigate", "", "omnigate binary to run (default: built from this module)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/e2e:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, c config) error {
	if c.replicas > 1 && c.server != "external" {
		return errors.New("-replicas > 1 needs -server external: replicas share one server")
	}
	dir, err := os.MkdirTemp("", "omnigate-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := c.omnigate
	if bin == "" {
		bin = filepath.Join(dir, "omnigate")
		if err := harness.GoBuild(ctx, bin, "./cmd/omnigate"); err != nil {
			return err
		}
	}
	var srv *harness.Proc
	natsURL := ""
	if c.server == "external" {
		nbin := filepath.Join(dir, "nats-server")
		if err := harness.GoBuild(ctx, nbin, "github.com/nats-io/nats-server/v2"); err != nil {
			return err
		}
		port, err := harness.FreePort()
		if err != nil {
			return err
		}
		natsURL = "nats://127.0.0.1:" + strconv.Itoa(port)
		srv, err = harness.Start("nats-server", harness.StartOptions{}, nbin, "-js", "-sd", filepath.Join(dir, "ns"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		if err != nil {
			return err
		}
		defer srv.Stop(20 * time.Second)
	} else if c.server != "embedded" {
		return fmt.Errorf("-server %q: want embedded or external", c.server)
	}

	twilio := harness.NewTwilio(false)
	defer twilio.Close()
	var serves []*harness.Serve
	for i := range c.replicas {
		s, err := startServe(ctx, bin, filepath.Join(dir, "r"+strconv.Itoa(i)), natsURL, twilio.URL, c)
		if err != nil {
			return err
		}
		defer s.Proc.Stop(20 * time.Second)
		serves = append(serves, s)
	}
	if natsURL == "" {
		natsURL = serves[0].NATSURL
	}
	nc, err := nats.Connect(natsURL, nats.Name("bench-e2e"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	desk, err := newDeskWatch(nc)
	if err != nil {
		return err
	}
	defer desk.close()

	// Everything this run's numbers are charged to.
	self := os.Getpid()
	var omniProcs []int
	for _, s := range serves {
		omniProcs = append(omniProcs, s.Proc.Pid)
	}
	rawProcs := []int{self}
	if srv != nil {
		omniProcs = append(omniProcs, srv.Pid)
		rawProcs = append(rawProcs, srv.Pid)
	} else {
		rawProcs = append(rawProcs, serves[0].Proc.Pid) // the embedded server is in serve
	}

	fmt.Printf("omnigate e2e: server %s, store %s, %d B messages, %d senders, %d replica(s), GOMAXPROCS %d, %d CPUs\n",
		c.server, c.store, c.size, c.senders, c.replicas, runtime.GOMAXPROCS(0), runtime.NumCPU())
	load := &webhooks{bases: baseURLs(serves), size: c.size, senders: c.senders, client: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: c.conc * 2, MaxConnsPerHost: 0},
		Timeout:   30 * time.Second,
	}}
	// Warm up: first messages create contacts and conversations; the closed loop
	// measures the steady state of known senders, like a busy desk.
	if _, err := load.closedLoop(ctx, desk, c.senders, c.conc); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	// What the warm-up left to routing, tickets and analytics is done before
	// anything is measured.
	if _, err := settle(ctx, js); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	omniSettle := func() (time.Duration, error) { return settle(ctx, js) }
	var rawRates, omniRates, rawCPU, omniCPU []float64
	for round := range c.rounds {
		r, err := measure(rawProcs, c.n, func() error { return rawRun(ctx, js, c.n, c.size, round) }, nil)
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		o, err := measure(omniProcs, c.n, func() error {
			_, err := load.closedLoop(ctx, desk, c.n, c.conc)
			return err
		}, omniSettle)
		if err != nil {
			return fmt.Errorf("omnigate: %w", err)
		}
		fmt.Printf("round %d: raw %8.0f msg/s %6.1f us/msg CPU | omnigate %7.0f msg/s %6.1f us/msg CPU (consumers caught up %s after the last desk message) | ratio %.3f\n",
			round+1, r.rate, r.cpuPerMsg*1e6, o.rate, o.cpuPerMsg*1e6, o.catchUp.Round(time.Millisecond), o.rate/r.rate)
		rawRates, omniRates = append(rawRates, r.rate), append(omniRates, o.rate)
		rawCPU, omniCPU = append(rawCPU, r.cpuPerMsg), append(omniCPU, o.cpuPerMsg)
	}
	fmt.Printf("closed loop, median of %d: raw %.0f msg/s, omnigate %.0f msg/s, ratio %.3f; CPU per message raw %.1f us, omnigate %.1f us\n",
		c.rounds, median(rawRates), median(omniRates), median(omniRates)/median(rawRates), median(rawCPU)*1e6, median(omniCPU)*1e6)

	if !c.skipOpen {
		res, err := measure(omniProcs, c.rate*int(c.duration.Seconds()), func() error {
			lat, err := load.openLoop(ctx, desk, c.rate, c.duration)
			if err != nil {
				return err
			}
			fmt.Printf("open loop %d webhooks/s for %s: %d sent, %d reached the desk, %d failed; webhook->desk p50 %s p90 %s p99 %s max %s\n",
				c.rate, c.duration, lat.sent, lat.delivered, lat.failed,
				pct(lat.d, 50), pct(lat.d, 90), pct(lat.d, 99), pct(lat.d, 100))
			return nil
		}, omniSettle)
		if err != nil {
			return fmt.Errorf("open loop: %w", err)
		}
		fmt.Printf("open loop CPU per message (omnigate + server): %.1f us\n", res.cpuPerMsg*1e6)
	}
	for _, s := range serves {
		st := s.Proc.Sample()
		fmt.Printf("%s: RSS %.0f MiB (peak %.0f MiB), CPU %.1f s\n", s.Name, st.RSS/(1<<20), st.HWM/(1<<20), st.CPU)
	}
	if srv != nil {
		st := srv.Sample()
		fmt.Printf("nats-server: RSS %.0f MiB (peak %.0f MiB), CPU %.1f s\n", st.RSS/(1<<20), st.HWM/(1<<20), st.CPU)
	}
	return nil
}

// result is one measured run.
type result struct {
	rate      float64 // messages per second
	cpuPerMsg float64 // CPU seconds per message, summed over the charged processes
	// catchUp is how long the consumers behind the desk (routing, tickets,
	// analytics...) took to finish their backlog after fn returned.
	catchUp time.Duration
}

// measure runs fn and charges the CPU the processes used meanwhile to n
// messages. The rate is fn's; when settle is not nil, the CPU also counts
// what the processes did until settle returned, so that work left behind
// (consumers that lag the desk) is charged to the run that caused it and not
// to the next one.
func measure(procs []int, n int, fn func() error, settle func() (time.Duration, error)) (result, error) {
	before := cpuOf(procs)
	t0 := time.Now()
	if err := fn(); err != nil {
		return result{}, err
	}
	took := time.Since(t0)
	var catchUp time.Duration
	if settle != nil {
		var err error
		if catchUp, err = settle(); err != nil {
			return result{}, err
		}
	}
	return result{rate: float64(n) / took.Seconds(), cpuPerMsg: (cpuOf(procs) - before) / float64(n), catchUp: catchUp}, nil
}

// settle waits until every consumer of omnigate's streams has nothing
// pending and nothing unacknowledged, twice in a row 200 ms apart, and says
// how long that took. It gives up after two minutes.
func settle(ctx context.Context, js jetstream.JetStream) (time.Duration, error) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	quiet := 0
	for {
		busy, err := backlog(ctx, js)
		if err != nil {
			return 0, fmt.Errorf("settle: %w", err)
		}
		if busy == 0 {
			if quiet++; quiet == 2 {
				return time.Since(t0), nil
			}
		} else {
			quiet = 0
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("settle: consumers still had %d messages to handle after %s", busy, time.Since(t0).Round(time.Second))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// backlog is the number of messages omnigate's consumers have yet to handle
// or acknowledge, over every stream but the raw runs' own.
func backlog(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	var n uint64
	streams := js.StreamNames(ctx)
	for name := range streams.Name() {
		if strings.HasPrefix(name, "BENCH_RAW_") || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_") {
			continue
		}
		s, err := js.Stream(ctx, name)
		if err != nil {
			return 0, err
		}
		infos := s.ListConsumers(ctx)
		for ci := range infos.Info() {
			n += ci.NumPending + uint64(ci.NumAckPending)
		}
		if err := infos.Err(); err != nil {
			return 0, err
		}
	}
	return n, streams.Err()
}

func cpuOf(pids []int) float64 {
	var s float64
	for _, pid := range pids {
		s += harness.SamplePid(pid).CPU
	}
	return s
}

// rawRun publishes n messages asynchronously with dedup ids to a stream of its
// own and consumes them with a durable pull consumer that acks each.
func rawRun(ctx context.Context, js jetstream.JetStream, n, size, round int) error {
	name := "BENCH_RAW_" + strconv.Itoa(round)
	subj := "bench.raw." + strconv.Itoa(round)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return err
	}
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	payload := bytes.Repeat([]byte("x"), size)
	for i := range n {
		m := nats.NewMsg(subj)
		m.Data = payload
		m.Header.Set(jetstream.MsgIDHeader, name+":"+strconv.Itoa(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("consumed %d of %d", got.Load(), n)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deskWatch sees every message the pipeline publishes to a desk, on a plain
// NATS subscription (the desk stream's subjects), and matches it to the
// webhook that carried it by the sequence number at the start of its text.
type deskWatch struct {
	sub *nats.Subscription
	mu  sync.Mutex
	// waiting maps a sequence number to the time its webhook was due and the
	// channel closed when it arrives.
	waiting map[uint64]*pending
	seen    atomic.Int64
}

type pending struct {
	due  time.Time
	took time.Duration
	done chan struct{}
}

func newDeskWatch(nc *nats.Conn) (*deskWatch, error) {
	w := &deskWatch{waiting: map[uint64]*pending{}}
	sub, err := nc.Subscribe(bus.RootDesk+".>", w.onDesk)
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	w.sub = sub
	return w, nc.Flush()
}

func (w *deskWatch) close() { _ = w.sub.Unsubscribe() }

func (w *deskWatch) onDesk(msg *nats.Msg) {
	at := time.Now()
	var m core.Message
	if err := json.Unmarshal(msg.Data, &m); err != nil {
		return
	}
	head, _, _ := strings.Cut(m.Text, " ")
	seq, err := strconv.ParseUint(head, 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	p := w.waiting[seq]
	delete(w.waiting, seq)
	w.mu.Unlock()
	if p != nil {
		p.took = at.Sub(p.due)
		w.seen.Add(1)
		close(p.done)
	}
}

func (w *deskWatch) expect(seq uint64, due time.Time) *pending {
	p := &pending{due: due, done: make(chan struct{})}
	w.mu.Lock()
	w.waiting[seq] = p
	w.mu.Unlock()
	return p
}

// webhooks sends signed Twilio SMS webhooks to the serve processes in turn.
type webhooks struct {
	bases   []string
	size    int
	senders int
	client  *http.Client
	seq     atomic.Uint64
}

// send posts one webhook whose text starts with seq, from sender i.
func (l *webhooks) send(ctx context.Context, seq uint64) error {
	sender := int(seq % uint64(l.senders))
	base := l.bases[int(seq)%len(l.bases)]
	text := strconv.FormatUint(seq, 10) + " "
	if pad := l.size - len(text); pad > 0 {
		text += strings.Repeat("m", pad)
	}
	wh := harness.SMSWebhook{SID: harness.MessageSID(seq), From: fmt.Sprintf("+1555%07d", sender), Body: text}
	code, err := wh.Post(ctx, l.client, base)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("webhook answered %d %s", code, http.StatusText(code))
	}
	return nil
}

// closedLoop sends n webhooks, conc at a time, and returns once every one of
// them reached the desk.
func (l *webhooks) closedLoop(ctx context.Context, desk *deskWatch, n, conc int) ([]time.Duration, error) {
	work := make(chan uint64)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	waits := make([]*pending, 0, n)
	var wmu sync.Mutex
	for range conc {
		wg.Go(func() {
			for seq := range work {
				p := desk.expect(seq, time.Now())
				wmu.Lock()
				waits = append(waits, p)
				wmu.Unlock()
				if err := l.send(ctx, seq); err != nil {
					errMu.Lock()
					firstErr = cmpErr(firstErr, err)
					errMu.Unlock()
				}
			}
		})
	}
	for range n {
		work <- l.seq.Add(1)
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	out := make([]time.Duration, 0, n)
	deadline := time.After(5 * time.Minute)
	for _, p := range waits {
		select {
		case <-p.done:
			out = append(out, p.took)
		case <-deadline:
			return nil, fmt.Errorf("%d of %d messages reached the desk within 5 minutes", len(out), n)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// latencies is the outcome of an open loop.
type latencies struct {
	sent, delivered, failed int
	d                       []time.Duration
}

// openLoop offers rate webhooks a second for d, each sent at its scheduled time
// by its own goroutine, and waits for every accepted one to reach the desk.
func (l *webhooks) openLoop(ctx context.Context, desk *deskWatch, rate int, d time.Duration) (latencies, error) {
	total := rate * int(d.Seconds())
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	var failed atomic.Int64
	waits := make([]*pending, total)
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		seq := l.seq.Add(1)
		waits[i] = desk.expect(seq, due)
		wg.Go(func() {
			if err := l.send(ctx, seq); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	res := latencies{sent: total, failed: int(failed.Load())}
	deadline := time.After(2 * time.Minute)
	for _, p := range waits {
		select {
		case <-p.done:
			res.d = append(res.d, p.took)
		case <-deadline:
			res.delivered = len(res.d)
			return res, nil
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.delivered = len(res.d)
	return res, nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(10 * time.Microsecond)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func baseURLs(s []*harness.Serve) []string {
	var out []string
	for _, p := range s {
		out = append(out, p.Base)
	}
	return out
}

// startServe runs omnigate serve from a config for this benchmark and waits for
// /readyz.
func startServe(ctx context.Context, bin, dir, natsURL, twilioURL string, c config) (*harness.Serve, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	sc := harness.ServeConfig{Dir: dir, Port: port, NATSURL: natsURL, TwilioURL: twilioURL}
	if c.store == "redis" {
		sc.RedisURL, sc.RedisPrefix = c.redisURL, fmt.Sprintf("bench%d", time.Now().UnixNano())
	}
	s, err := harness.NewServe("omnigate "+filepath.Base(dir), bin, sc)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/bench/internal/harness"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// env is the running deployment and everything watching it.
type env struct {
	c       config
	dir     string
	backoff []time.Duration

	// externalRedis is the -redis URL when the Redis is not ours, and prefix the
	// run's key prefix in it, dropped at the end.
	externalRedis, prefix string

	procs  harness.Group
	nats   *cluster
	redis  *redisServer // nil when -redis names an external one
	proxy  *proxy
	serves []*harness.Serve
	twilio *harness.Twilio

	nc       *nats.Conn
	js       jetstream.JetStream
	ledger   *ledger
	gen      *generator
	desk     *tail
	dlq      *dlqWatch
	otherSMS atomic.Int64
	stopTw   context.CancelFunc

	// Per phase: when it started, and what happened, for the report.
	started []time.Time
	notes   [][]string
	logPos  map[string]int64
}

// setUp builds the binaries and starts the deployment and its observers. Redis
// comes first: a missing redis-server fails before minutes of building.
func (e *env) setUp(ctx context.Context) error {
	redisURL := e.c.redisURL
	if redisURL == "" {
		r, err := newRedisServer(e.dir, &e.procs)
		switch {
		case err == nil:
			if err := r.start(ctx); err != nil {
				return err
			}
			e.redis, redisURL = r, "redis://"+r.addr()+"/0"
		case errors.Is(err, errNoRedis) && os.Getenv("OMNIGATE_TEST_REDIS_URL") != "":
			redisURL = os.Getenv("OMNIGATE_TEST_REDIS_URL")
		default:
			return err
		}
	}
	if e.redis == nil {
		e.externalRedis = redisURL
	}
	natsBin, bin := e.c.natsServer, e.c.omnigate
	if natsBin == "" {
		natsBin = filepath.Join(e.dir, "nats-server")
		if err := harness.GoBuild(ctx, natsBin, "github.com/nats-io/nats-server/v2"); err != nil {
			return fmt.Errorf("build nats-server from go.mod (run from the module, with its dependencies downloaded): %w", err)
		}
	}
	if bin == "" {
		bin = filepath.Join(e.dir, "omnigate")
		if err := harness.GoBuild(ctx, bin, "./cmd/omnigate"); err != nil {
			return fmt.Errorf("build omnigate (run from the module's root): %w", err)
		}
	}

	target, via, err := redisTarget(redisURL)
	if err != nil {
		return err
	}
	if err := redisPing(target); err != nil {
		return fmt.Errorf("redis at %s: %w", target, err)
	}
	if e.proxy, err = newProxy("127.0.0.1:0", target); err != nil {
		return err
	}

	if e.nats, err = newCluster(natsBin, e.dir, 3, &e.procs); err != nil {
		return err
	}
	if err := e.nats.start(ctx); err != nil {
		return err
	}
	e.twilio = harness.NewTwilio(true)

	ports, err := harness.FreePorts(2)
	if err != nil {
		return err
	}
	e.prefix = fmt.Sprintf("faults%d:", time.Now().UnixNano())
	for i, port := range ports {
		name := "omnigate-" + strconv.Itoa(i+1)
		s, err := harness.NewServe(name, bin, harness.ServeConfig{
			Dir: filepath.Join(e.dir, name), Port: port,
			NATSURL: e.nats.urls(), StreamReplicas: 3,
			MaxDeliver: e.c.maxDeliver, Backoff: e.backoff,
			RedisURL: via(e.proxy.Addr()), RedisPrefix: e.prefix,
			TwilioURL: e.twilio.URL, LogLevel: e.c.logLvl,
		})
		if err != nil {
			return err
		}
		// One after the other: the first creates the streams.
		if err := e.startServe(ctx, s); err != nil {
			return err
		}
		e.serves = append(e.serves, s)
	}

	e.nc, err = nats.Connect(e.nats.urls(), nats.Name("bench-faults"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return err
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return err
	}
	e.ledger = newLedger(partitionOf)
	e.desk = watchDesk(ctx, e.js, e.ledger)
	e.dlq = watchDLQ(ctx, e.js, e.ledger)
	twCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopTw = cancel
	go watchTwilio(twCtx, e.twilio, e.ledger, &e.otherSMS)

	var bases []string
	for _, s := range e.serves {
		bases = append(bases, s.Base)
	}
	e.gen = &generator{
		senders: e.c.senders, rate: e.c.rate, replyRate: e.c.replyRate, bases: bases,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		js:     e.js, ledger: e.ledger,
	}
	e.logPos = map[string]int64{}
	return nil
}

// startServe starts s and adds its process to the group. Like a supervisor
// (systemd, Kubernetes) it starts a replica that exits during its start again,
// for up to 2 minutes, and notes each failed attempt.
func (e *env) startServe(ctx context.Context, s *harness.Serve) error {
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; ; attempt++ {
		err := s.Start(ctx, 90*time.Second)
		if s.Proc != nil {
			e.procs.Add(s.Proc)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		e.note("%s start attempt %d failed: %s", s.Name, attempt, lastLine(err.Error()))
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// lastLine is the last non-empty line of s: the error a failed serve printed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return oneLine(lines[len(lines)-1], 300)
}

func (e *env) tearDown() {
	if e.stopTw != nil {
		e.stopTw()
	}
	if e.desk != nil {
		e.desk.stop()
	}
	if e.dlq != nil {
		e.dlq.stop()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.twilio != nil {
		e.twilio.Close()
	}
	if e.proxy != nil {
		e.proxy.Close()
	}
}

// dropRedisKeys removes the run's keys from an external Redis, once the
// replicas are gone, also after Ctrl-C (ctx's cancellation is ignored).
func (e *env) dropRedisKeys(ctx context.Context) {
	if e.externalRedis == "" || e.prefix == "" {
		return
	}
	if _, err := dropKeys(context.WithoutCancel(ctx), e.externalRedis, e.prefix); err != nil {
		fmt.Fprintf(os.Stderr, "bench/faults: keys %s* left in %s: %v\n", e.prefix, e.externalRedis, err)
	}
}

// note records a line of what happened in the current phase, also printed at
// once with its time since the phase started.
func (e *env) note(format string, args ...any) {
	i := len(e.notes) - 1
	if i < 0 { // setting up
		fmt.Println("  " + fmt.Sprintf(format, args...))
		return
	}
	line := fmt.Sprintf("+%5.1fs ", time.Since(e.started[i]).Seconds()) + fmt.Sprintf(format, args...)
	e.notes[i] = append(e.notes[i], line)
	fmt.Println("  " + line)
}

// begin starts a phase.
func (e *env) begin(name string) int {
	ph := e.ledger.newPhase(name)
	e.started = append(e.started, time.Now())
	e.notes = append(e.notes, nil)
	fmt.Printf("%s: %s\n", time.Now().Format("15:04:05"), name)
	return ph
}

// warmUp has every customer send one message and waits until all reached the
// desk: contacts and conversations exist before the faults, and replies know
// where to go. It is the control row of the report: no fault.
func (e *env) warmUp(ctx context.Context) error {
	ph := e.begin("warm-up (no fault)")
	stop := make(chan struct{})
	// Customer s sends at s/senders of the interval: stopping half a slot
	// before the interval ends lets each send exactly once.
	interval := time.Duration((float64(e.c.senders) - 0.5) / e.c.rate * float64(time.Second))
	time.AfterFunc(interval, func() { close(stop) })
	e.gen.run(ctx, ph, stop, false)
	e.drain(ctx, ph)
	if err := ctx.Err(); err != nil {
		return err
	}
	missing := 0
	for s := range e.c.senders {
		if _, ok := e.ledger.conversationOf(s); !ok {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("warm-up: %d of %d customers' first message did not reach the desk within -drain %s; omnigate is not working without faults (logs: -keep)",
			missing, e.c.senders, e.c.drain)
	}
	e.summarize(ph)
	return nil
}

// phase runs one fault under load: load for -before, the fault, load for
// -after its end, then the drain.
func (e *env) phase(ctx context.Context, fault string) error {
	ph := e.begin(faultTitle(fault, e.c))
	stop := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		e.gen.run(ctx, ph, stop, true)
		close(loaded)
	}()
	err := func() error {
		if err := sleep(ctx, e.c.before); err != nil {
			return err
		}
		if err := e.inject(ctx, ph, fault); err != nil {
			return err
		}
		return sleep(ctx, e.c.after)
	}()
	close(stop)
	<-loaded
	if err != nil {
		return err
	}
	e.note("load stopped")
	e.drain(ctx, ph)
	e.summarize(ph)
	return ctx.Err()
}

func faultTitle(fault string, c config) string {
	switch fault {
	case "replica":
		return "kill -9 replica"
	case "nats":
		return "kill -9 NATS node"
	case "redis":
		return "Redis outage " + c.redisOutage.String()
	case "sigterm":
		return "SIGTERM everything"
	}
	return "no fault"
}

// inject breaks something and repairs it, and records when the fault ended:
// the kill itself for a kill -9 (the others must carry on without the dead
// process; its restart comes later), the proxy reopening for the Redis outage,
// the last replica ready again after a SIGTERM of everything.
func (e *env) inject(ctx context.Context, ph int, fault string) error {
	switch fault {
	case "replica":
		victim := e.serves[0]
		victim.Proc.Kill()
		e.ledger.recovering(ph, time.Now())
		e.note("kill -9 %s (pid %d)", victim.Name, victim.Proc.Pid)
		if err := sleep(ctx, e.c.down); err != nil {
			return err
		}
		t := time.Now()
		if err := e.startServe(ctx, victim); err != nil {
			return err
		}
		e.note("%s restarted, ready in %.1f s", victim.Name, time.Since(t).Seconds())
	case "nats":
		victim, conns, leader := e.nats.busiest(ctx)
		victim.proc.Kill()
		e.ledger.recovering(ph, time.Now())
		e.note("kill -9 %s (pid %d; %d of 2 replicas connected to it; meta leader %s)", victim.name, victim.proc.Pid, conns, leader)
		if err := sleep(ctx, e.c.down); err != nil {
			return err
		}
		t := time.Now()
		if err := e.nats.start(ctx); err != nil {
			return err
		}
		e.note("%s restarted, healthy in %.1f s", victim.name, time.Since(t).Seconds())
	case "redis":
		e.proxy.Down()
		e.note("Redis cut off (connections closed, new ones refused)")
		if err := sleep(ctx, e.c.redisOutage); err != nil {
			return err
		}
		if err := e.proxy.Up(); err != nil {
			return err
		}
		e.ledger.recovering(ph, time.Now())
		e.note("Redis reachable again")
	case "sigterm":
		return e.sigtermAll(ctx, ph)
	}
	return nil
}

// sigtermAll sends SIGTERM to every process at once, waits for them to exit
// (killing those that take longer than 30 s), and starts everything again.
func (e *env) sigtermAll(ctx context.Context, ph int) error {
	var all []*harness.Proc
	for _, s := range e.serves {
		all = append(all, s.Proc)
	}
	for _, n := range e.nats.nodes {
		all = append(all, n.proc)
	}
	if e.redis != nil {
		all = append(all, e.redis.proc)
	} else {
		e.proxy.Down() // an external Redis is not ours to stop
	}
	t := time.Now()
	e.note("SIGTERM to %d processes", len(all))
	took, killed := stopAll(30*time.Second, all...)
	var exits []string
	for _, p := range all {
		how := "exited"
		if slices.Contains(killed, p.Name) {
			how = "killed"
		} else if err := p.ExitErr(); err != nil {
			how = "exited (" + err.Error() + ")"
		}
		exits = append(exits, fmt.Sprintf("%s %s after %.1f s", p.Name, how, took[p.Name].Seconds()))
	}
	e.note("%s", strings.Join(exits, "; "))
	if len(killed) > 0 {
		e.note("did not exit within 30 s of SIGTERM, killed: %s", strings.Join(killed, ", "))
	}
	e.note("all stopped in %.1f s", time.Since(t).Seconds())
	t = time.Now()
	if e.redis != nil {
		if err := e.redis.start(ctx); err != nil {
			return err
		}
	} else if err := e.proxy.Up(); err != nil {
		return err
	}
	if err := e.nats.start(ctx); err != nil {
		return err
	}
	if err := e.streamsLed(ctx); err != nil {
		return err
	}
	e.note("Redis and NATS up in %.1f s", time.Since(t).Seconds())
	for _, s := range e.serves {
		if err := e.startServe(ctx, s); err != nil {
			return err
		}
	}
	e.ledger.recovering(ph, time.Now())
	e.note("everything restarted and ready in %.1f s", time.Since(t).Seconds())
	return nil
}

// streamsLed waits until every stream answers its info request, which takes a
// stream leader: after the whole cluster restarted, the meta leader (what the
// nodes' /healthz waits for) comes first and the streams' leaders seconds later,
// and an operator would wait for them before starting the replicas.
func (e *env) streamsLed(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			names := e.js.StreamNames(ctx)
			for name := range names.Name() {
				s, err := e.js.Stream(ctx, name)
				if err != nil {
					return fmt.Errorf("stream %s: %w", name, err)
				}
				if s.CachedInfo().Cluster == nil || s.CachedInfo().Cluster.Leader == "" {
					return fmt.Errorf("stream %s has no leader", name)
				}
			}
			return names.Err()
		}()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("streams not led after 60 s: %w", err)
		}
		_ = sleep(ctx, 200*time.Millisecond)
	}
}

// drain waits until every accepted message and reply of phase arrived or was
// dead-lettered, for at most -drain.
func (e *env) drain(ctx context.Context, ph int) {
	t := time.Now()
	for {
		msgs, replies := e.ledger.outstanding(ph)
		if msgs == 0 && replies == 0 {
			e.note("drained in %.1f s", time.Since(t).Seconds())
			return
		}
		if time.Since(t) > e.c.drain || ctx.Err() != nil {
			e.note("after %s of drain, still missing: %d messages, %d replies", e.c.drain, msgs, replies)
			return
		}
		_ = sleep(ctx, 200*time.Millisecond)
	}
}

// summarize prints the phase's row as it stands and notes why webhooks were
// refused, what was dead-lettered, and the replicas' warnings and errors.
func (e *env) summarize(ph int) {
	if f, w := e.gen.failuresOf(ph); len(f) > 0 {
		e.note("failed webhook attempts: %s, from +%.1fs to +%.1fs", countString(f),
			w[0].Sub(e.started[ph]).Seconds(), w[1].Sub(e.started[ph]).Seconds())
	}
	var dl map[string]int
	samples := map[string]string{}
	for _, d := range e.dlq.between(e.started[ph], time.Time{}) {
		if dl == nil {
			dl = map[string]int{}
		}
		dl[d.stage]++
		if _, ok := samples[d.stage]; !ok {
			samples[d.stage] = d.error
		}
	}
	if len(dl) > 0 {
		e.note("dead letters by stage: %s", countString(dl))
		for _, st := range sortedKeys(samples) {
			e.note("  %s: %s", st, oneLine(samples[st], 200))
		}
	}
	for _, s := range e.serves {
		counts, pos := digestLog(s.LogFile(), e.logPos[s.LogFile()])
		e.logPos[s.LogFile()] = pos
		if len(counts) > 0 {
			e.note("%s log: %s", s.Name, topCounts(counts, 6))
		}
	}
	r := e.ledger.rows()[ph]
	if slow := slowPartitions(r.in, e.c.maxRecovery); slow != "" {
		e.note("%s", slow)
	}
	for _, f := range []struct {
		what string
		s    stats
	}{{"messages", r.in}, {"replies", r.out}} {
		if f.s.dlq > f.s.dlqLost {
			e.note("%d accepted %s were dead-lettered and still arrived (%d dead-lettered, %d of them lost)", f.s.dlq-f.s.dlqLost, f.what, f.s.dlq, f.s.dlqLost)
		}
		if f.s.unaccepted > 0 {
			e.note("%d %s arrived although not accepted (an answer lost on its way back)", f.s.unaccepted, f.what)
		}
	}
	fmt.Printf("  so far: offered %d, accepted %d, desk %d, lost %d (dlq %d), dup %d, reordered %d, max %s, recovery %s; replies sent %d, delivered %d, lost %d",
		r.in.offered, r.in.accepted, r.in.delivered, r.in.lost, r.in.dlq, r.in.duplicated, r.in.reordered,
		r.in.max.Round(10*time.Millisecond), recoveryString(r.in), r.out.accepted, r.out.delivered, r.out.lost)
	fmt.Println()
}

// slowPartitions names the inbound partitions (consumers pipeline-<n>) whose
// messages still waited longer than limit after the fault, slowest first, at
// most eight.
func slowPartitions(s stats, limit time.Duration) string {
	type pr struct {
		p int
		d time.Duration
	}
	var slow []pr
	for p, d := range s.partitions {
		if d > limit {
			slow = append(slow, pr{p, d})
		}
	}
	if len(slow) == 0 {
		return ""
	}
	slices.SortFunc(slow, func(a, b pr) int { return cmp.Compare(b.d, a.d) })
	var parts []string
	for i, x := range slow {
		if i == 8 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", x.p, dur(x.d)))
	}
	return fmt.Sprintf("%d of %d partitions recovered in more than %s: %s", len(slow), bus.Partitions, limit, strings.Join(parts, ", "))
}

// checkTails compares what the stream readers saw with what the streams hold,
// so that a reader that missed messages cannot pass for lost messages.
func (e *env) checkTails(ctx context.Context) {
	for _, c := range []struct {
		name string
		t    *tail
	}{{bus.StreamDesk, e.desk}, {bus.StreamDLQ, e.dlq.tail}} {
		var last uint64
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := e.js.Stream(ctx, c.name)
			if err == nil {
				info, err := s.Info(ctx)
				if err == nil {
					last = info.State.LastSeq
				}
			}
			if c.t.read() >= last || time.Now().After(deadline) {
				break
			}
			_ = sleep(ctx, 200*time.Millisecond)
		}
		if got := c.t.read(); got < last {
			fmt.Printf("warning: the reader of %s reached sequence %d of %d: the numbers below may count unread messages as lost\n", c.name, got, last)
		}
	}
}

// digestLog counts the WARN and ERROR lines (slog text format) of a log file
// from byte offset from, by level and message, and returns the new offset.
func digestLog(path string, from int64) (map[string]int, int64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, from
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, from
	}
	counts := map[string]int{}
	r := bufio.NewReader(f)
	pos := from
	for {
		line, err := r.ReadString('\n')
		if err != nil { // a partial last line is read next time
			break
		}
		pos += int64(len(line))
		level := field(line, "level")
		if level != "WARN" && level != "ERROR" {
			continue
		}
		counts[level+" "+field(line, "msg")]++
	}
	return counts, pos
}

// field returns the value of key=value in a slog text line, unquoted.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		if !strings.HasPrefix(line, key+"=") {
			return ""
		}
		i = -1
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if s, err := strconv.QuotedPrefix(v); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return v
}

func countString(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// topCounts lists the n most frequent entries of m, most frequent first.
func topCounts(m map[string]int, n int) string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	var parts []string
	for i, k := range keys {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more kinds", len(keys)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%dx %q", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// oneLine joins s's lines and shortens it to n characters.
func oneLine(s string, n int) string {
	return core.Ellipsize(strings.Join(strings.Fields(s), " "), n)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Command faults runs omnigate the way it is deployed and breaks it on
// purpose: a 3-node NATS JetStream cluster (nats-server processes built from
// go.mod, R3 streams), Redis behind a TCP proxy that can cut it off, and two
// "omnigate serve" replicas, all on loopback. It offers a bounded load of
// signed Twilio SMS webhooks from many customers, each customer's messages
// numbered, alternating between the replicas, and agent replies that the
// pipeline sends back through a fake Twilio. Then it injects, one after the
// other with recovery in between:
//
//   - replica: kill -9 of a replica, restarted after -down;
//   - nats: kill -9 of the NATS node most replicas are connected to,
//     restarted after -down;
//   - redis: a Redis outage of -redis-outage (the proxy refuses connections);
//   - sigterm: SIGTERM of every process (replicas, NATS nodes, Redis) at
//     once, mid-load, then everything started again.
//
// For each fault it prints what was offered, accepted (answered 2xx),
// delivered to the desk stream, lost, dead-lettered, duplicated and
// reordered, the latencies and the recovery time, and the same for the
// replies; it exits with status 1 when a fault lost, duplicated or reordered
// anything or took longer than -max-recovery to recover (-report-only
// reports without failing).
//
//	go run ./bench/faults                # production retry schedule, 5 minute Redis outage
//	go run ./bench/faults -ci            # about 2 minutes after the builds: shorter phases, 20 s outage, compressed retries
//
// See docs/faults.md for the method, the flags and the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	senders                                int
	rate, replyRate                        float64
	before, down, redisOutage, after       time.Duration
	drain, maxRecovery                     time.Duration
	strictRecovery                         bool
	faults, backoff                        string
	maxDeliver                             int
	omnigate, natsServer, redisURL, logLvl string
	reportOnly, keep, ci                   bool
}

// ciPreset is what -ci sets, for the flags not given explicitly. The retry
// schedule is compressed with the outage: 3 deliveries 1 s apart run out in
// about 2 s, so a 20 s outage outlasts the retries as a 5 minute one outlasts
// the default schedule (1 s, 5 s, 30 s, 2 min: about 2.5 minutes).
var ciPreset = map[string]string{
	"senders": "200", "rate": "50", "reply-rate": "5",
	"before": "3s", "down": "3s", "redis-outage": "20s", "after": "6s", "drain": "40s",
	"max-deliver": "3", "backoff": "1s",
}

func main() {
	var c config
	flag.IntVar(&c.senders, "senders", 300, "distinct customers (phone numbers); each sends every senders/rate seconds")
	flag.Float64Var(&c.rate, "rate", 100, "webhooks offered per second, all customers together")
	flag.Float64Var(&c.replyRate, "reply-rate", 10, "agent replies published per second")
	flag.DurationVar(&c.before, "before", 10*time.Second, "load before each fault")
	flag.DurationVar(&c.down, "down", 10*time.Second, "how long a killed process stays down before it is restarted")
	flag.DurationVar(&c.redisOutage, "redis-outage", 5*time.Minute, "length of the Redis outage")
	flag.DurationVar(&c.after, "after", 15*time.Second, "load after each fault ended")
	flag.DurationVar(&c.drain, "drain", 90*time.Second, "how long to wait, once the load stopped, for what was accepted to arrive")
	flag.DurationVar(&c.maxRecovery, "max-recovery", 5*time.Second, "longest recovery that passes: from the fault's end to the arrival of the first message sent after it")
	flag.BoolVar(&c.strictRecovery, "strict-recovery", false, "fail as well when any partition takes longer than -max-recovery to recover (the recovery column)")
	flag.StringVar(&c.faults, "faults", "replica,nats,redis,sigterm", "faults to inject, in order (replica, nats, redis, sigterm, none)")
	flag.IntVar(&c.maxDeliver, "max-deliver", 0, "nats.consumer.max_deliver of the replicas (0: omnigate's default)")
	flag.StringVar(&c.backoff, "backoff", "", "nats.consumer.backoff of the replicas, comma-separated durations (empty: omnigate's default)")
	flag.StringVar(&c.omnigate, "omnigate", "", "omnigate binary (default: built from this module)")
	flag.StringVar(&c.natsServer, "nats-server", "", "nats-server binary (default: built from go.mod's github.com/nats-io/nats-server/v2)")
	flag.StringVar(&c.redisURL, "redis", "", "use this Redis (redis://host:port/db) instead of starting redis-server; default OMNIGATE_TEST_REDIS_URL when redis-server is not installed")
	flag.StringVar(&c.logLvl, "log-level", "warn", "log.level of the replicas (their logs are summarized per fault)")
	flag.BoolVar(&c.reportOnly, "report-only", false, "report, and exit 0 even when a fault lost messages or recovered late")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (configs, data, every process's log)")
	flag.BoolVar(&c.ci, "ci", false, "the CI preset: "+presetString())
	flag.Parse()
	if c.ci {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range ciPreset {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					panic(err) // the preset names flags defined above
				}
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	failed, err := run(ctx, c)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err != nil && interrupted:
		fmt.Fprintln(os.Stderr, "bench/faults: interrupted; every process it started is stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench/faults:", err)
		os.Exit(2)
	case failed && !c.reportOnly:
		os.Exit(1)
	}
}

func presetString() string {
	var b []string
	for _, k := range []string{"senders", "rate", "reply-rate", "before", "down", "redis-outage", "after", "drain", "max-deliver", "backoff"} {
		b = append(b, "-"+k+" "+ciPreset[k])
	}
	return strings.Join(b, " ")
}

// parseBackoff reads -backoff; empty is nil (omnigate's default).
func parseBackoff(s string) ([]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-backoff: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// faultNames are the faults -faults accepts.
var faultNames = []string{"replica", "nats", "redis", "sigterm", "none"}

func parseFaults(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, n := range faultNames {
			ok = ok || n == f
		}
		if !ok {
			return nil, fmt.Errorf("-faults: unknown fault %q (want %s)", f, strings.Join(faultNames, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

func run(ctx context.Context, c config) (failed bool, err error) {
	faults, err := parseFaults(c.faults)
	if err != nil {
		return false, err
	}
	backoff, err := parseBackoff(c.backoff)
	if err != nil {
		return false, err
	}
	if c.senders < 1 || c.rate <= 0 {
		return false, errors.New("-senders and -rate must be positive")
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "omnigate-faults-")
	if err != nil {
		return false, err
	}
	if c.keep {
		defer fmt.Printf("kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{c: c, dir: dir, backoff: backoff}
	// Registered after the directory's removal, so it runs first: nothing
	// writes into the directory while it is removed, nor into Redis while the
	// run's keys are dropped.
	defer e.dropRedisKeys(ctx)
	defer e.procs.KillAll()
	if err := e.setUp(ctx); err != nil {
		return false, err
	}
	defer e.tearDown()
	fmt.Printf("set up in %.1f s: 3 NATS nodes, Redis via proxy %s, 2 replicas; %d customers, %.0f webhooks/s, %.0f replies/s; max_deliver %s, backoff %s\n",
		time.Since(t0).Seconds(), e.proxy.Addr(), c.senders, c.rate, c.replyRate,
		cmpDefault(strconv.Itoa(c.maxDeliver), "0"), cmpDefault(c.backoff, ""))

	if err := e.warmUp(ctx); err != nil {
		return false, err
	}
	for _, f := range faults {
		if err := e.phase(ctx, f); err != nil {
			return false, fmt.Errorf("%s: %w", f, err)
		}
	}
	e.checkTails(ctx)
	fmt.Printf("\nfaults: %s in %s (%s)\n\n", strings.Join(faults, ", "), time.Since(t0).Round(time.Second), e.flagLine())
	rows := e.ledger.rows()
	fmt.Print(report(rows, c.maxRecovery))
	fmt.Println()
	for i, r := range rows {
		fmt.Printf("%s:\n", r.name)
		for _, n := range e.notes[i] {
			fmt.Printf("  %s\n", n)
		}
	}
	if o := e.otherSMS.Load(); o > 0 {
		fmt.Printf("\nother messages sent to Twilio (not replies of this run): %d\n", o)
	}
	bad := verdicts(rows, c.maxRecovery, c.strictRecovery)
	if len(bad) > 0 {
		fmt.Printf("\nFAIL: %s\n", strings.Join(bad, "; "))
		return true, nil
	}
	fmt.Println("\nPASS")
	return false, nil
}

// cmpDefault writes "default" for a flag left at its zero value.
func cmpDefault(v, zero string) string {
	if v == zero {
		return "default"
	}
	return v
}

// flagLine is the run's load and timing flags, for the report.
func (e *env) flagLine() string {
	c := e.c
	return fmt.Sprintf("-senders %d -rate %g -reply-rate %g -before %s -down %s -redis-outage %s -after %s -drain %s -max-deliver %d -backoff %q",
		c.senders, c.rate, c.replyRate, c.before, c.down, c.redisOutage, c.after, c.drain, c.maxDeliver, c.backoff)
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/omnigate/omnigate/bench/internal/harness"
)

// natsNode is one nats-server of the cluster, restartable on the same ports
// and store directory.
type natsNode struct {
	name                        string
	port, clusterPort, httpPort int
	dir, log                    string
	proc                        *harness.Proc
}

// url is the node's client URL.
func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// cluster is a JetStream cluster of nats-server processes on loopback.
type cluster struct {
	bin   string
	nodes []*natsNode
	procs *harness.Group
}

// newCluster picks the ports of size nodes under dir; start runs them.
func newCluster(bin, dir string, size int, procs *harness.Group) (*cluster, error) {
	ports, err := harness.FreePorts(3 * size)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, procs: procs}
	for i := range size {
		name := "nats-" + strconv.Itoa(i+1)
		c.nodes = append(c.nodes, &natsNode{
			name: name, port: ports[3*i], clusterPort: ports[3*i+1], httpPort: ports[3*i+2],
			dir: filepath.Join(dir, name), log: filepath.Join(dir, name+".log"),
		})
	}
	return c, nil
}

// urls is the comma-separated client URLs of every node: nats.url.
func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

// start runs every node that is not running and waits until all are healthy
// (JetStream up and current). The nodes start together: a JetStream cluster
// has no meta leader before a quorum is up.
func (c *cluster) start(ctx context.Context) error {
	var starting []*natsNode
	for _, n := range c.nodes {
		if n.proc != nil && !n.proc.Exited() {
			continue
		}
		if err := c.run(n); err != nil {
			return err
		}
		starting = append(starting, n)
	}
	for _, n := range starting {
		if err := c.healthy(ctx, n); err != nil {
			return err
		}
	}
	return c.hasLeader(ctx)
}

// hasLeader waits until every node names the same JetStream meta leader.
func (c *cluster) hasLeader(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader := metaLeader(ctx, c.nodes[0])
		agree := leader != ""
		for _, n := range c.nodes[1:] {
			agree = agree && metaLeader(ctx, n) == leader
		}
		if agree {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the NATS nodes agree on no JetStream meta leader after 60 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) run(n *natsNode) error {
	var routes []string
	for _, o := range c.nodes {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(o.clusterPort))
	}
	p, err := harness.Start(n.name, harness.StartOptions{LogFile: n.log}, c.bin,
		"--server_name", n.name, "-js", "-sd", n.dir,
		"-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-m", strconv.Itoa(n.httpPort),
		"--cluster_name", "omnigate-faults", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(n.clusterPort),
		"--routes", strings.Join(routes, ","))
	if err != nil {
		return err
	}
	n.proc = c.procs.Add(p)
	return nil
}

// healthy waits for the node's /healthz, which answers 200 once its JetStream
// is up and caught up with the cluster.
func (c *cluster) healthy(ctx context.Context, n *natsNode) error {
	u := "http://127.0.0.1:" + strconv.Itoa(n.httpPort) + "/healthz"
	if err := harness.WaitHTTP(ctx, u, 90*time.Second, n.proc.Done()); err != nil {
		return fmt.Errorf("%s not healthy: %w\n%s", n.name, err, n.proc.Tail())
	}
	return nil
}

// clientsOf counts the connections named name on node n, from its monitoring
// endpoint; -1 when the node does not answer.
func clientsOf(ctx context.Context, n *natsNode, name string) int {
	var connz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := getJSON(ctx, "http://127.0.0.1:"+strconv.Itoa(n.httpPort)+"/connz?limit=4096", &connz); err != nil {
		return -1
	}
	count := 0
	for _, c := range connz.Connections {
		if c.Name == name {
			count++
		}
	}
	return count
}

// metaLeader is the name of the JetStream meta leader, as node n sees it.
func metaLeader(ctx context.Context, n *natsNode) string {
	var jsz struct {
		Meta struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := getJSON(ctx, "http://127.0.0.1:"+strconv.Itoa(n.httpPort)+"/jsz", &jsz); err != nil {
		return ""
	}
	return jsz.Meta.Leader
}

// busiest returns the node most omnigate replicas are connected to; a tie goes
// to the JetStream meta leader, else to the first node. It also returns the
// connection count and the meta leader's name, for the report.
func (c *cluster) busiest(ctx context.Context) (*natsNode, int, string) {
	leader := metaLeader(ctx, c.nodes[0])
	var best *natsNode
	bestN := -1
	for _, n := range c.nodes {
		k := clientsOf(ctx, n, omnigateConnName)
		if k > bestN || k == bestN && n.name == leader {
			best, bestN = n, k
		}
	}
	return best, bestN, leader
}

// omnigateConnName is the NATS connection name serve uses (core/bus's
// default Options.Name).
const omnigateConnName = "omnigate"

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// redisServer is a redis-server this tool runs, persistent (append-only file)
// so that a SIGTERM and restart keeps the state, as in production.
type redisServer struct {
	bin, dir, log string
	port          int
	proc          *harness.Proc
	procs         *harness.Group
}

// errNoRedis says what to do when there is no redis-server to run.
var errNoRedis = errors.New("redis-server not found in PATH: install it (Debian: apt-get install redis-server), or point -redis (or OMNIGATE_TEST_REDIS_URL) at a running Redis")

func newRedisServer(dir string, procs *harness.Group) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, "redis")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	return &redisServer{bin: bin, dir: d, log: filepath.Join(dir, "redis.log"), port: port, procs: procs}, nil
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server and waits until it answers PING.
func (r *redisServer) start(ctx context.Context) error {
	p, err := harness.Start("redis-server", harness.StartOptions{LogFile: r.log}, r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no")
	if err != nil {
		return err
	}
	r.proc = r.procs.Add(p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := redisPing(r.addr()); err == nil {
			return nil
		} else if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("redis-server not answering: %v\n%s", err, p.Tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisPing sends PING on a new connection and expects PONG (a Redis still
// loading its file answers -LOADING).
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// redisTarget parses a Redis URL into the host:port it names and a function
// that returns the same URL with another host:port (the proxy's).
func redisTarget(u string) (target string, via func(addr string) string, err error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", nil, fmt.Errorf("redis URL: %w", err)
	}
	if p.Scheme != "redis" {
		return "", nil, fmt.Errorf("redis URL %s: want redis:// (the proxy does not speak TLS)", p.Redacted())
	}
	target = p.Host
	if p.Port() == "" {
		target = net.JoinHostPort(p.Hostname(), "6379")
	}
	return target, func(addr string) string {
		q := *p
		q.Host = addr
		return q.String()
	}, nil
}

// stopAll sends SIGTERM to every process at once and waits up to grace for
// each. It returns how long each took to exit, by name, and the names of
// those that had to be killed.
func stopAll(grace time.Duration, procs ...*harness.Proc) (took map[string]time.Duration, killed []string) {
	var mu sync.Mutex
	took = map[string]time.Duration{}
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, p := range procs {
		if p == nil {
			continue
		}
		wg.Go(func() {
			ok := p.Stop(grace)
			mu.Lock()
			defer mu.Unlock()
			took[p.Name] = time.Since(t0)
			if !ok {
				killed = append(killed, p.Name)
			}
		})
	}
	wg.Wait()
	slices.Sort(killed)
	return took, killed
}

// dropKeys deletes the keys under prefix from the Redis at u: a run on a
// shared Redis leaves nothing behind.
func dropKeys(ctx context.Context, u, prefix string) (int, error) {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return 0, err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Del(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for it.Next(ctx) {
		if batch = append(batch, it.Val()); len(batch) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

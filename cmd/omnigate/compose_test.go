package main

// These tests are the check for docker-compose.yml, the Dockerfile,
// deploy/nats/*.conf and deploy/caddy/Caddyfile: there is no Docker engine in
// CI, so they verify what a
// `docker compose up` would trip over (missing files, undeclared volumes, unknown
// dependencies, NATS configs the server rejects) and the settings the scaled-out
// shape depends on (JetStream on every node, full mesh of routes, 3 replicas,
// one proxy address in front of every replica).
// Package-level names start with compose so they cannot clash with main.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

const composeFileName = "docker-compose.yml"

// composeNATSNodes are the NATS servers of the compose file; each routes to the others.
var composeNATSNodes = []string{"nats-1", "nats-2", "nats-3"}

// composeReplicas are the omnigate services and the host port each publishes.
var composeReplicas = []struct {
	service string
	port    string
}{
	{"omnigate-1", "8081"},
	{"omnigate-2", "8082"},
}

func TestCompose_Services(t *testing.T) {
	c := loadCompose(t)
	tests := []struct {
		service string
		image   string // image name without tag; empty when the service is built
		build   bool
	}{
		{service: "nats-1", image: "nats"},
		{service: "nats-2", image: "nats"},
		{service: "nats-3", image: "nats"},
		{service: "redis", image: "redis"},
		{service: "omnigate-1", build: true},
		{service: "omnigate-2", build: true},
		{service: "proxy", image: "caddy"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s, ok := c.Services[tt.service]
			if !ok {
				t.Fatalf("%s: services.%s: missing (have %s)", composeFileName, tt.service, strings.Join(c.serviceNames(), ", "))
			}
			if tt.image != "" {
				if name, _, _ := strings.Cut(s.Image, ":"); name != tt.image {
					t.Errorf("%s: services.%s.image = %q, want a %s image", composeFileName, tt.service, s.Image, tt.image)
				}
			}
			if tt.build && s.Build == nil {
				t.Errorf("%s: services.%s.build: missing, want the repository's Dockerfile", composeFileName, tt.service)
			}
			if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
				t.Errorf("%s: services.%s.healthcheck: missing", composeFileName, tt.service)
			}
			if s.Restart != "unless-stopped" {
				t.Errorf("%s: services.%s.restart = %q, want unless-stopped", composeFileName, tt.service, s.Restart)
			}
		})
	}
}

func TestCompose_Volumes(t *testing.T) {
	c, root := loadCompose(t), composeRepoRoot(t)
	usedBy := map[string]string{} // named volume -> the service that mounts it
	for _, name := range c.serviceNames() {
		for i, m := range c.Services[name].Volumes {
			t.Run(fmt.Sprintf("%s/%d", name, i), func(t *testing.T) {
				where := fmt.Sprintf("%s: services.%s.volumes[%d] (%s)", composeFileName, name, i, m.raw)
				if m.Target == "" || !path.IsAbs(m.Target) {
					t.Errorf("%s: target %q is not an absolute container path", where, m.Target)
				}
				switch m.Type {
				case "bind":
					p := filepath.Join(root, filepath.FromSlash(m.Source))
					if _, err := os.Stat(p); err != nil {
						t.Errorf("%s: bind-mounted path does not exist: %v", where, err)
					}
				case "volume":
					if m.Source == "" {
						t.Errorf("%s: anonymous volume; give it a name declared under volumes", where)
						return
					}
					if _, ok := c.Volumes[m.Source]; !ok {
						t.Errorf("%s: named volume %q is not declared under top-level volumes", where, m.Source)
					}
					// Each store (a NATS node's JetStream, Redis) owns its volume: two
					// servers writing one store directory corrupt it.
					if other, ok := usedBy[m.Source]; ok && other != name {
						t.Errorf("%s: named volume %q is also mounted by %s", where, m.Source, other)
					}
					usedBy[m.Source] = name
				}
			})
		}
	}
	for v := range c.Volumes {
		if _, ok := usedBy[v]; !ok {
			t.Errorf("%s: volumes.%s: declared but mounted by no service", composeFileName, v)
		}
	}
}

func TestCompose_DependsOn(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.serviceNames() {
		t.Run(name, func(t *testing.T) {
			for _, dep := range composeSortedKeys(c.Services[name].DependsOn) {
				cond := c.Services[name].DependsOn[dep]
				target, ok := c.Services[dep]
				switch {
				case dep == name:
					t.Errorf("%s: services.%s.depends_on: depends on itself", composeFileName, name)
				case !ok:
					t.Errorf("%s: services.%s.depends_on.%s: no such service (have %s)", composeFileName, name, dep, strings.Join(c.serviceNames(), ", "))
				case cond == "service_healthy" && (target.Healthcheck == nil || len(target.Healthcheck.Test) == 0):
					t.Errorf("%s: services.%s.depends_on.%s: condition service_healthy, but %s has no healthcheck", composeFileName, name, dep, dep)
				case !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, cond):
					t.Errorf("%s: services.%s.depends_on.%s.condition = %q: not a compose condition", composeFileName, name, dep, cond)
				}
			}
		})
	}
}

func TestCompose_Build(t *testing.T) {
	c, root := loadCompose(t), composeRepoRoot(t)
	built := 0
	for _, name := range c.serviceNames() {
		s := c.Services[name]
		if s.Build == nil {
			continue
		}
		built++
		t.Run(name, func(t *testing.T) {
			dockerfile := filepath.Join(root, filepath.FromSlash(s.Build.Context), filepath.FromSlash(s.Build.Dockerfile))
			entrypoint, err := dockerfileEntrypoint(dockerfile)
			if err != nil {
				t.Fatalf("%s: services.%s.build (context %q, dockerfile %q): %v", composeFileName, name, s.Build.Context, s.Build.Dockerfile, err)
			}
			// The image is distroless: a healthcheck can only run the binary itself.
			if s.Healthcheck != nil && len(s.Healthcheck.Test) > 1 && s.Healthcheck.Test[0] == "CMD" {
				if len(entrypoint) == 0 || s.Healthcheck.Test[1] != entrypoint[0] {
					t.Errorf("%s: services.%s.healthcheck.test runs %q, but the image's ENTRYPOINT is %q", composeFileName, name, s.Healthcheck.Test[1], entrypoint)
				}
			}
		})
	}
	if built == 0 {
		t.Errorf("%s: no service is built from the repository", composeFileName)
	}
}

// TestCompose_ReleaseImage checks that the image GoReleaser builds from its
// binaries (deploy/release/Dockerfile) runs like the one the Dockerfile builds
// from source: the compose file, the Helm chart and operators rely on its
// entrypoint, user, data directory and port.
func TestCompose_ReleaseImage(t *testing.T) {
	root := composeRepoRoot(t)
	source, err := dockerfileFinalStage(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	release, err := dockerfileFinalStage(filepath.Join(root, "deploy", "release", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, instr := range []string{"FROM", "USER", "WORKDIR", "ENV", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD"} {
		if !slices.Equal(source[instr], release[instr]) {
			t.Errorf("%s: deploy/release/Dockerfile has %q, the Dockerfile %q", instr, release[instr], source[instr])
		}
	}
}

// dockerfileFinalStage returns the instructions of the last stage of the
// Dockerfile at p, each with its arguments in order (FROM without --platform).
func dockerfileFinalStage(p string) (map[string][]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var stage map[string][]string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, arg, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			stage = map[string][]string{}
			f := slices.DeleteFunc(strings.Fields(arg), func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			arg = strings.Join(f, " ")
		}
		if stage != nil {
			stage[instr] = append(stage[instr], arg)
		}
	}
	if stage == nil {
		return nil, errors.New(p + ": no FROM")
	}
	return stage, nil
}

func TestCompose_NATSConfig(t *testing.T) {
	c, root := loadCompose(t), composeRepoRoot(t)
	clusters := map[string]string{} // node -> cluster name
	for _, node := range composeNATSNodes {
		t.Run(node, func(t *testing.T) {
			s, ok := c.Services[node]
			if !ok {
				t.Fatalf("%s: services.%s: missing", composeFileName, node)
			}
			wantConf := "./deploy/nats/" + node + ".conf"
			conf, ok := s.mount(wantConf)
			if !ok {
				t.Fatalf("%s: services.%s.volumes: %s is not mounted", composeFileName, node, wantConf)
			}
			if !conf.ReadOnly {
				t.Errorf("%s: services.%s.volumes: %s is mounted read-write, want :ro", composeFileName, node, wantConf)
			}
			if !slices.Contains(s.Command, conf.Target) {
				t.Errorf("%s: services.%s.command = %q does not load the mounted config %s", composeFileName, node, s.Command, conf.Target)
			}

			file := filepath.Join(root, filepath.FromSlash(wantConf))
			opts, err := server.ProcessConfigFile(file)
			if err != nil {
				t.Fatalf("nats-server rejects %s:\n%v", wantConf, err)
			}
			checkComposeNATSOptions(t, wantConf, node, opts)
			clusters[node] = opts.Cluster.Name

			// JetStream must write to the node's named volume, not the container.
			if !s.hasVolumeUnder(opts.StoreDir) {
				t.Errorf("%s: jetstream.store_dir %q is not on a named volume of services.%s", wantConf, opts.StoreDir, node)
			}

			// Parsing is not all: the server also validates the options as a whole.
			run := opts.Clone()
			run.StoreDir, run.NoLog, run.NoSigs = t.TempDir(), true, true
			srv, err := server.NewServer(run)
			if err != nil {
				t.Fatalf("nats-server rejects the options of %s: %v", wantConf, err)
			}
			srv.Shutdown()
		})
	}
	names := slices.Compact(slices.Sorted(maps.Values(clusters)))
	if len(names) > 1 {
		t.Errorf("cluster.name differs between the NATS configs (%v): they would not form one cluster", clusters)
	}
}

// checkComposeNATSOptions checks the parsed config of one NATS node.
func checkComposeNATSOptions(t *testing.T, file, node string, opts *server.Options) {
	t.Helper()
	if opts.ServerName != node {
		t.Errorf("%s: server_name = %q, want %q (JetStream clustering needs a stable, unique name)", file, opts.ServerName, node)
	}
	if opts.Port != 4222 {
		t.Errorf("%s: listen port = %d, want 4222 (OMNIGATE_NATS_URL uses it)", file, opts.Port)
	}
	if opts.HTTPPort != 8222 {
		t.Errorf("%s: http port = %d, want 8222 (the healthcheck uses it)", file, opts.HTTPPort)
	}
	if !opts.JetStream {
		t.Errorf("%s: jetstream is not enabled", file)
	}
	if opts.StoreDir == "" {
		t.Errorf("%s: jetstream.store_dir is not set", file)
	}
	if opts.JetStreamMaxStore <= 0 {
		t.Errorf("%s: jetstream.max_file_store is not set: JetStream would claim most of the disk", file)
	}
	if opts.Cluster.Name == "" {
		t.Errorf("%s: cluster.name is not set", file)
	}
	if opts.Cluster.Port != 6222 {
		t.Errorf("%s: cluster listen port = %d, want 6222 (the routes use it)", file, opts.Cluster.Port)
	}

	var want, got []string
	for _, peer := range composeNATSNodes {
		if peer != node {
			want = append(want, net.JoinHostPort(peer, "6222"))
		}
	}
	for _, r := range opts.Routes {
		got = append(got, r.Host)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: cluster.routes = %v, want one route to each other node: %v", file, got, want)
	}
}

func TestCompose_Omnigate(t *testing.T) {
	c := loadCompose(t)
	for _, tt := range composeReplicas {
		t.Run(tt.service, func(t *testing.T) {
			s, ok := c.Services[tt.service]
			if !ok {
				t.Fatalf("%s: services.%s: missing", composeFileName, tt.service)
			}
			where := fmt.Sprintf("%s: services.%s", composeFileName, tt.service)

			env := map[string]string{
				"OMNIGATE_NATS_STREAMS_REPLICAS": strconv.Itoa(len(composeNATSNodes)),
				"OMNIGATE_STORE_BACKEND":         "redis",
				"OMNIGATE_HTTP_ADDR":             ":8080",
				"OMNIGATE_LOG_FORMAT":            "json",
			}
			for _, k := range composeSortedKeys(env) {
				if got, ok := s.Environment[k]; !ok || got != env[k] {
					t.Errorf("%s.environment.%s = %q, want %q", where, k, got, env[k])
				}
			}
			checkComposeNATSURL(t, where, s.Environment["OMNIGATE_NATS_URL"])
			checkComposeRedisURL(t, where, c, s.Environment["OMNIGATE_STORE_REDIS_URL"])

			for _, dep := range append(slices.Clone(composeNATSNodes), "redis") {
				if cond := s.DependsOn[dep]; cond != "service_healthy" {
					t.Errorf("%s.depends_on.%s: condition = %q, want service_healthy", where, dep, cond)
				}
			}

			if !slices.Contains(s.Ports, tt.port+":8080") {
				t.Errorf("%s.ports = %q, want %s:8080", where, s.Ports, tt.port)
			}

			wantCheck := []string{"CMD", "/omnigate", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"}
			if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, wantCheck) {
				var got []string
				if s.Healthcheck != nil {
					got = s.Healthcheck.Test
				}
				t.Errorf("%s.healthcheck.test = %q, want %q", where, got, wantCheck)
			}
		})
	}
}

// checkComposeNATSURL checks that url lists every NATS node once, on its client port.
func checkComposeNATSURL(t *testing.T, where, list string) {
	t.Helper()
	var got []string
	for u := range strings.SplitSeq(list, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Scheme != "nats" {
			t.Errorf("%s.environment.OMNIGATE_NATS_URL: %q is not a nats:// URL", where, u)
			continue
		}
		got = append(got, p.Host)
	}
	var want []string
	for _, n := range composeNATSNodes {
		want = append(want, net.JoinHostPort(n, "4222"))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s.environment.OMNIGATE_NATS_URL = %q, want every node once: %v", where, list, want)
	}
}

// checkComposeRedisURL checks that raw points at the redis service.
func checkComposeRedisURL(t *testing.T, where string, c *composeFile, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" {
		t.Errorf("%s.environment.OMNIGATE_STORE_REDIS_URL = %q, want a redis:// URL", where, raw)
		return
	}
	if _, ok := c.Services[u.Hostname()]; !ok || u.Port() != "6379" {
		t.Errorf("%s.environment.OMNIGATE_STORE_REDIS_URL = %q, want a compose service on port 6379", where, raw)
	}
}

// composeProxy is the reverse proxy service, the host port it publishes and
// its Caddyfile.
const (
	composeProxy     = "proxy"
	composeProxyPort = "8080"
	composeCaddyfile = "./deploy/caddy/Caddyfile"
)

func TestCompose_Proxy(t *testing.T) {
	c, root := loadCompose(t), composeRepoRoot(t)
	s, ok := c.Services[composeProxy]
	if !ok {
		t.Fatalf("%s: services.%s: missing: providers need one webhook address in front of the replicas", composeFileName, composeProxy)
	}
	where := fmt.Sprintf("%s: services.%s", composeFileName, composeProxy)
	conf, ok := s.mount(composeCaddyfile)
	if !ok {
		t.Fatalf("%s.volumes: %s is not mounted", where, composeCaddyfile)
	}
	if !conf.ReadOnly {
		t.Errorf("%s.volumes: %s is mounted read-write, want :ro", where, composeCaddyfile)
	}
	if !slices.Contains(s.Command, conf.Target) {
		t.Errorf("%s.command = %q does not load the mounted %s", where, s.Command, conf.Target)
	}
	cf := parseCaddyfile(t, filepath.Join(root, filepath.FromSlash(composeCaddyfile)))
	if !slices.Contains(s.Ports, composeProxyPort+":"+cf.port) {
		t.Errorf("%s.ports = %q, want %s:%s (the Caddyfile's site listens on :%s)", where, s.Ports, composeProxyPort, cf.port, cf.port)
	}

	// Every replica, on the port it listens on, is an upstream, and the
	// proxy starts after them.
	var want []string
	for _, r := range composeReplicas {
		_, port, err := net.SplitHostPort(c.Services[r.service].Environment["OMNIGATE_HTTP_ADDR"])
		if err != nil {
			t.Fatalf("%s: services.%s.environment.OMNIGATE_HTTP_ADDR: %v", composeFileName, r.service, err)
		}
		want = append(want, net.JoinHostPort(r.service, port))
		if _, ok := s.DependsOn[r.service]; !ok {
			t.Errorf("%s.depends_on: %s missing", where, r.service)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(cf.upstreams))
	if !slices.Equal(got, want) {
		t.Errorf("%s: reverse_proxy upstreams = %v, want every replica: %v", composeCaddyfile, got, want)
	}
	// A replica whose bus is down must leave the pool, as a load balancer
	// would take it out (docs/operations.md).
	if cf.sub["health_uri"] != "/readyz" {
		t.Errorf("%s: reverse_proxy health_uri = %q, want /readyz", composeCaddyfile, cf.sub["health_uri"])
	}
	if !slices.Contains(cf.blocked, "/metrics") {
		t.Errorf("%s: /metrics is proxied to the replicas; keep it inside (respond 404)", composeCaddyfile)
	}
}

// caddyfile is what TestCompose_Proxy reads of the Caddyfile: the port of its
// one site, the upstreams and subdirectives of its reverse_proxy, and the
// paths it answers itself (a named matcher on a path answered by respond).
// It reads only the directives used in deploy/caddy/Caddyfile; `caddy adapt`
// in .ci/run checks the rest.
type caddyfile struct {
	port      string
	upstreams []string
	sub       map[string]string
	blocked   []string
}

func parseCaddyfile(t *testing.T, file string) caddyfile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cf := caddyfile{sub: map[string]string{}}
	matchers := map[string]string{} // @name -> path
	depth, inProxy := 0, false
	for i, line := range strings.Split(string(b), "\n") {
		if j := strings.Index(line, "#"); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", file, i+1)
		switch {
		case depth == 0 && f[0] == "{":
		case depth == 0 && strings.HasPrefix(f[0], ":"):
			cf.port = strings.TrimPrefix(f[0], ":")
		case depth == 1 && f[0] == "reverse_proxy":
			cf.upstreams = slices.DeleteFunc(slices.Clone(f[1:]), func(s string) bool { return s == "{" })
			inProxy = true
		case depth == 1 && strings.HasPrefix(f[0], "@") && len(f) == 3 && f[1] == "path":
			matchers[f[0]] = f[2]
		case depth == 1 && f[0] == "respond" && len(f) >= 2:
			if p, ok := matchers[f[1]]; ok {
				cf.blocked = append(cf.blocked, p)
			}
		case depth == 2 && inProxy && len(f) >= 2:
			cf.sub[f[0]] = strings.Join(f[1:], " ")
		}
		for _, tok := range f {
			switch tok {
			case "{":
				depth++
			case "}":
				depth--
				if depth == 1 {
					inProxy = false
				}
			}
		}
		if depth < 0 {
			t.Fatalf("%s: unbalanced }", at)
		}
	}
	if depth != 0 {
		t.Fatalf("%s: unbalanced braces (depth %d at the end)", file, depth)
	}
	if cf.port == "" || len(cf.upstreams) == 0 {
		t.Fatalf("%s: no :PORT site with a reverse_proxy found", file)
	}
	return cf
}

func TestCompose_PublishedPorts(t *testing.T) {
	c := loadCompose(t)
	seen := map[string]string{}
	for _, name := range c.serviceNames() {
		for _, p := range c.Services[name].Ports {
			parts := strings.Split(p, ":")
			if len(parts) < 2 {
				continue // container port only: Docker picks the host port
			}
			host := strings.Join(parts[:len(parts)-1], ":")
			if other, ok := seen[host]; ok {
				t.Errorf("%s: services.%s.ports: host port %s is also published by %s", composeFileName, name, host, other)
			}
			seen[host] = name
		}
	}
}

// composeFile is the part of a compose file these tests read. Decoding goes
// through yaml.v3, which resolves the anchors and merge keys (<<) the file uses.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func (c *composeFile) serviceNames() []string { return composeSortedKeys(c.Services) }

type composeService struct {
	Image       string             `yaml:"image"`
	Build       *composeBuild      `yaml:"build"`
	Command     composeCommand     `yaml:"command"`
	Environment composeEnvironment `yaml:"environment"`
	DependsOn   composeDependsOn   `yaml:"depends_on"`
	Volumes     []composeMount     `yaml:"volumes"`
	Ports       []string           `yaml:"ports"`
	Healthcheck *composeHealth     `yaml:"healthcheck"`
	Restart     string             `yaml:"restart"`
}

// mount returns the bind mount of source.
func (s composeService) mount(source string) (composeMount, bool) {
	for _, m := range s.Volumes {
		if m.Type == "bind" && path.Clean(m.Source) == path.Clean(source) {
			return m, true
		}
	}
	return composeMount{}, false
}

// hasVolumeUnder reports whether dir is on a named volume of s.
func (s composeService) hasVolumeUnder(dir string) bool {
	for _, m := range s.Volumes {
		if m.Type == "volume" && m.Source != "" && (dir == m.Target || strings.HasPrefix(dir, strings.TrimSuffix(m.Target, "/")+"/")) {
			return true
		}
	}
	return false
}

// composeBuild is build: either a context path or a mapping.
type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
	} else {
		type plain composeBuild
		if err := n.Decode((*plain)(b)); err != nil {
			return err
		}
	}
	if b.Context == "" {
		b.Context = "."
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	return nil
}

// composeCommand is command: a list, or a string split on spaces.
type composeCommand []string

func (c *composeCommand) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*c = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(c))
}

// composeEnvironment is environment: a mapping, or a list of KEY=VALUE.
type composeEnvironment map[string]string

func (e *composeEnvironment) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnvironment{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	return n.Decode((*map[string]string)(e))
}

// composeDependsOn maps each dependency to its condition; the short list form
// means service_started.
type composeDependsOn map[string]string

func (d *composeDependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	for s, v := range long {
		if v.Condition == "" {
			v.Condition = "service_started"
		}
		(*d)[s] = v.Condition
	}
	return nil
}

// composeMount is one entry of a service's volumes, short or long syntax.
type composeMount struct {
	Type     string `yaml:"type"` // bind or volume (tmpfs and others are not checked)
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
	raw      string
}

func (m *composeMount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		type plain composeMount
		if err := n.Decode((*plain)(m)); err != nil {
			return err
		}
		m.raw = fmt.Sprintf("line %d", n.Line)
		return nil
	}
	m.raw = n.Value
	parts := strings.Split(n.Value, ":")
	switch len(parts) {
	case 1:
		m.Type, m.Target = "volume", parts[0]
		return nil
	case 2, 3:
		m.Source, m.Target = parts[0], parts[1]
		if len(parts) == 3 {
			m.ReadOnly = slices.Contains(strings.Split(parts[2], ","), "ro")
		}
	default:
		return fmt.Errorf("line %d: volume %q: want [source:]target[:mode]", n.Line, n.Value)
	}
	m.Type = "volume"
	if strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, "~") {
		m.Type = "bind"
	}
	return nil
}

// composeHealth is healthcheck; a string test means CMD-SHELL.
type composeHealth struct {
	Test composeHealthTest `yaml:"test"`
}

type composeHealthTest []string

func (h *composeHealthTest) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*h = []string{"CMD-SHELL", n.Value}
		return nil
	}
	return n.Decode((*[]string)(h))
}

// loadCompose parses docker-compose.yml at the repository root.
func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeRepoRoot(t), composeFileName))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", composeFileName, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composeFileName)
	}
	return &c
}

// composeRepoRoot returns the directory of go.mod above the test's working directory.
func composeRepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// dockerfileEntrypoint returns the exec-form ENTRYPOINT of the last stage of the
// Dockerfile at p.
func dockerfileEntrypoint(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var entry []string
	for i, line := range strings.Split(string(b), "\n") {
		instr, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			entry = nil // a new stage starts with the base image's entrypoint
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(arg), &entry); err != nil {
				return nil, fmt.Errorf("%s:%d: ENTRYPOINT is not in exec form: %v", p, i+1, err)
			}
		}
	}
	if entry == nil {
		return nil, errors.New(p + ": the final stage has no ENTRYPOINT")
	}
	return entry, nil
}

func composeSortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

package main

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

var testSettings = Settings{Chart: "../helm/omnigate", Release: "omnigate", Namespace: "omnigate", KubeVersion: defaultKubeVersion}

// checked renders and checks an installation once per test binary: helm's
// render is the slow part.
var checked = map[string]*Result{}

func check(t *testing.T, in Install) *Result {
	t.Helper()
	if r, ok := checked[in.Name]; ok {
		return r
	}
	r, err := Check(testSettings, in)
	if err != nil {
		t.Fatal(err)
	}
	checked[in.Name] = r
	return r
}

var (
	installDefault  = Install{Name: "default"}
	installHA       = Install{Name: "ha", ValueFiles: []string{"../helm/omnigate/values-ha.yaml"}}
	installChannels = Install{Name: "channels", ValueFiles: []string{"testdata/channels.yaml"}}
)

func objectNames(r *Result) []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, o.String())
	}
	return out
}

func find[T any](t *testing.T, r *Result, kind, name string) T {
	t.Helper()
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o.Value.(T)
		}
	}
	t.Fatalf("%s/%s not rendered; have %v", kind, name, objectNames(r))
	var zero T
	return zero
}

func TestChart_Default(t *testing.T) {
	r := check(t, installDefault)
	for _, want := range []string{
		"Deployment/omnigate", "Service/omnigate", "ConfigMap/omnigate", "ServiceAccount/omnigate",
		"PodDisruptionBudget/omnigate", "StatefulSet/omnigate-nats", "Service/omnigate-nats",
		"Service/omnigate-nats-headless", "PodDisruptionBudget/omnigate-nats",
		"StatefulSet/omnigate-redis", "Service/omnigate-redis", "Secret/omnigate-redis", "Pod/omnigate-test-readyz",
	} {
		if !slices.Contains(objectNames(r), want) {
			t.Errorf("%s not rendered; have %v", want, objectNames(r))
		}
	}
	for _, absent := range []string{"HorizontalPodAutoscaler/omnigate", "Ingress/omnigate", "Secret/omnigate"} {
		if slices.Contains(objectNames(r), absent) {
			t.Errorf("%s rendered by default", absent)
		}
	}
	d := find[*appsv1.Deployment](t, r, "Deployment", "omnigate")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas = %v, want 2", d.Spec.Replicas)
	}
	nats := find[*appsv1.StatefulSet](t, r, "StatefulSet", "omnigate-nats")
	if *nats.Spec.Replicas != 3 {
		t.Errorf("NATS servers = %d, want 3", *nats.Spec.Replicas)
	}
	for _, want := range []string{"url: nats://omnigate-nats:4222", "replicas: 3", "backend: redis", "url: ${file:/etc/omnigate/secrets/store_redis_url}"} {
		if !strings.Contains(r.Config, want) {
			t.Errorf("omnigate.yaml has no %q:\n%s", want, r.Config)
		}
	}
	if url := string(r.SecretFiles["store_redis_url"]); !strings.HasPrefix(url, "redis://:") || !strings.HasSuffix(url, "@omnigate-redis:6379/0") {
		t.Errorf("store_redis_url = %q, want redis://:<password>@omnigate-redis:6379/0", url)
	}
}

func TestChart_HA(t *testing.T) {
	r := check(t, installHA)
	d := find[*appsv1.Deployment](t, r, "Deployment", "omnigate")
	if d.Spec.Replicas != nil {
		t.Errorf("Deployment sets replicas %d although the HPA scales it", *d.Spec.Replicas)
	}
	if len(d.Spec.Template.Spec.TopologySpreadConstraints) != 2 {
		t.Errorf("topologySpreadConstraints = %v, want host and zone", d.Spec.Template.Spec.TopologySpreadConstraints)
	}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if c.LabelSelector == nil || c.LabelSelector.MatchLabels["app.kubernetes.io/component"] != "omnigate" {
			t.Errorf("topology spread %s counts %v, want omnigate's pods", c.TopologyKey, c.LabelSelector)
		}
	}
	for _, want := range []string{"HorizontalPodAutoscaler/omnigate", "Ingress/omnigate", "NetworkPolicy/omnigate-nats", "NetworkPolicy/omnigate-redis"} {
		if !slices.Contains(objectNames(r), want) {
			t.Errorf("%s not rendered; have %v", want, objectNames(r))
		}
	}
	nats := find[*appsv1.StatefulSet](t, r, "StatefulSet", "omnigate-nats")
	if a := nats.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("NATS servers may share a node: no required pod anti-affinity")
	}
	if !strings.Contains(r.Config, "public_url: https://support.example.com") {
		t.Errorf("omnigate.yaml has no http.public_url:\n%s", r.Config)
	}
}

func TestChart_ChannelSecrets(t *testing.T) {
	r := check(t, installChannels)
	for name, want := range map[string]string{
		"twilio_auth_token": "0123456789abcdef0123456789abcdef",
		"slack_bot_token":   "xoxb-0000-0000-test",
		"store_redis_url":   "",
	} {
		got, ok := r.SecretFiles[name]
		if !ok {
			t.Errorf("secret file %s is not mounted; have %v", name, slices.Sorted(maps.Keys(r.SecretFiles)))
		} else if want != "" && string(got) != want {
			t.Errorf("secret file %s = %q, want %q", name, got, want)
		}
	}
	s := find[*corev1.Secret](t, r, "Secret", "omnigate")
	if len(s.Data) != 4 {
		t.Errorf("Secret/omnigate has keys %v, want the 4 given", dataKeys(&Object{Value: s}))
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "omnigate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "/etc/omnigate/secrets") {
		t.Errorf("written omnigate.yaml still points at the pods' mount:\n%s", cfg)
	}
	b, err := os.ReadFile(filepath.Join(dir, "secrets", "telegram_token"))
	if err != nil || string(b) != "123456:ABCdefGhIJKlmNoPQRsTUVwxyZ" {
		t.Errorf("secrets/telegram_token = %q, %v", b, err)
	}
}

// TestChart_RefusesBrokenValues checks that values which would deploy
// something broken fail the render or the check, with a message that says
// what to change.
func TestChart_RefusesBrokenValues(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"more stream copies than servers", []string{"nats.replicas=1", "nats.streamReplicas=3"}, "nats.streamReplicas is 3: want 1 to nats.replicas (1)"},
		{"external NATS without a URL", []string{"nats.enabled=false"}, "set config.nats.url"},
		{"a misspelt value", []string{"replicaCont=3"}, "replicaCont"},
		{"a misspelt nested value", []string{"nats.streamReplica=3"}, "streamReplica"},
		{"a value of the wrong type", []string{"ingress.paths[0].pathType=prefix"}, "pathType"},
		{"secret key that is no file name", []string{"secrets.a/b=x"}, "a key becomes a file name"},
		{"config secret not mounted", []string{`config.channels.telegram.token=${file:/etc/omnigate/secrets/missing}`}, "no Secret mounted at /etc/omnigate/secrets has a file missing"},
		{"secret outside the mount", []string{`config.nats.token=${file:/run/other/token}`}, "nothing is mounted at /run/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(testSettings, Install{Name: tt.name, Set: tt.set})
			if err == nil {
				t.Fatalf("Check passed with --set %v", tt.set)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
		})
	}
}

// TestDecodeStrict_CatchesMistakes runs rendered objects with one mistake
// each through the decoder: each must fail, naming the mistake.
func TestDecodeStrict_CatchesMistakes(t *testing.T) {
	r := check(t, installDefault)
	var deploy string
	for _, m := range r.Manifests {
		if strings.Contains(m.Doc, "kind: Deployment") {
			deploy = m.Doc
		}
	}
	if _, err := DecodeStrict("deployment", []byte(deploy)); err != nil {
		t.Fatalf("the rendered Deployment does not decode: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown field", "  strategy:\n", "  strategy:\n    maxUnavailble: 1\n", `unknown field "spec.strategy.maxUnavailble"`},
		{"field of another type", "  strategy:\n", "  progressDeadlineSecond: 60\n  strategy:\n", `unknown field "spec.progressDeadlineSecond"`},
		{"wrong case", "  replicas: 2\n", "  Replicas: 2\n", `unknown field "spec.Replicas"`},
		{"duplicate key", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "replicas"},
		{"wrong type", "  replicas: 2\n", "  replicas: two\n", "replicas"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnet", "unknown apiVersion/kind"},
		{"old apiVersion", "apiVersion: apps/v1", "apiVersion: extensions/v1beta1", "unknown apiVersion/kind"},
		{"bad name", "name: omnigate\n", "name: Omnigate_Gateway\n", "metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(deploy, tt.old) {
				t.Fatalf("the rendered Deployment has no %q to change", tt.old)
			}
			doc := strings.Replace(deploy, tt.old, tt.new, 1)
			_, err := DecodeStrict("deployment", []byte(doc))
			if err == nil {
				t.Fatalf("decoded with %s", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q: %v", tt.want, err)
			}
			if tt.name == "unknown kind" && !errors.Is(err, ErrUnknownKind) {
				t.Errorf("error is not ErrUnknownKind: %v", err)
			}
		})
	}
}

// FuzzDecodeStrict feeds the decoder arbitrary documents: it must return an
// object or an error, never panic, and an object it returns has a known kind
// and a valid name.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1, selector: {matchLabels: {a: b}}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}]}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: \"not base64\"}\n",
		"kind: [\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, resources: {limits: {memory: 1Zi}}}]}\n",
		"a: &a [*a]\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		o, err := DecodeStrict("fuzz", doc)
		if err != nil {
			return
		}
		if _, ok := kinds[o.APIVersion+" "+o.Kind]; !ok || o.Name == "" || o.Value == nil {
			t.Fatalf("decoded %+v", o)
		}
	})
}

func TestRun_Installs(t *testing.T) {
	got, err := parseInstalls("chart", nil)
	if err != nil || len(got) != 2 || got[1].ValueFiles[0] != filepath.Join("chart", "values-ha.yaml") {
		t.Errorf("parseInstalls(nil) = %v, %v", got, err)
	}
	got, err = parseInstalls("chart", []string{"a=x.yaml,y.yaml"})
	if err != nil || got[0].Name != "a" || !slices.Equal(got[0].ValueFiles, []string{"x.yaml", "y.yaml"}) {
		t.Errorf("parseInstalls(a=x.yaml,y.yaml) = %v, %v", got, err)
	}
	got, err = parseInstalls("chart", []string{"plain="})
	if err != nil || got[0].Name != "plain" || got[0].ValueFiles != nil {
		t.Errorf("parseInstalls(plain=) = %v, %v", got, err)
	}
	for _, bad := range []string{"novalues", "=x.yaml"} {
		if _, err := parseInstalls("chart", []string{bad}); err == nil {
			t.Errorf("parseInstalls(%s) passed", bad)
		}
	}
}

// TestDocs_DeployExample checks the values file docs/deploy.md tells an
// operator to write, with a secret for each file it references, as the
// checker would check the operator's own.
func TestDocs_DeployExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n# my-values.yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/deploy.md: no ```yaml block starting with # my-values.yaml")
	}
	var secrets strings.Builder
	secrets.WriteString("secrets:\n")
	for _, m := range fileRef.FindAllStringSubmatch(example, -1) {
		secrets.WriteString("  " + filepath.Base(m[1]) + ": test\n")
	}
	file := filepath.Join(t.TempDir(), "my-values.yaml")
	if err := os.WriteFile(file, []byte(example+secrets.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := check(t, Install{Name: "docs", ValueFiles: []string{installHA.ValueFiles[0], file}})
	if n := len(fileRef.FindAllString(r.Config, -1)); n < 6 {
		t.Errorf("the example's config references %d secret files, want the 6 channels' and Redis's:\n%s", n, r.Config)
	}
}

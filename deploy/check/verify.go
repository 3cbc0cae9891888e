package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// verifier checks what the API server cannot: that the objects of one
// render refer to each other correctly. It collects every problem in errs.
type verifier struct {
	objs     []*Object
	byKey    map[string]*Object // "Kind/name"
	external string             // a Secret the operator provides (existingSecret)
	errs     []error
}

func newVerifier(objs []*Object, external string) *verifier {
	v := &verifier{objs: objs, byKey: map[string]*Object{}, external: external}
	for _, o := range objs {
		if _, dup := v.byKey[o.String()]; dup {
			v.errorf(o, "rendered twice")
		}
		v.byKey[o.String()] = o
	}
	return v
}

func (v *verifier) errorf(o *Object, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s: %s", o.Source, o, fmt.Sprintf(format, args...)))
}

func (v *verifier) get(kind, name string) *Object { return v.byKey[kind+"/"+name] }

func deployment(o *Object) *appsv1.Deployment   { return o.Value.(*appsv1.Deployment) }
func statefulSet(o *Object) *appsv1.StatefulSet { return o.Value.(*appsv1.StatefulSet) }

// workloadsSelecting returns the workloads whose pods sel selects.
func (v *verifier) workloadsSelecting(sel labels.Selector) []*Object {
	var out []*Object
	for _, o := range v.objs {
		if o.Kind == "Pod" {
			continue // helm test pods are not behind Services or budgets
		}
		if _, lbls, ok := podSpecOf(o); ok && !sel.Empty() && sel.Matches(labels.Set(lbls)) {
			out = append(out, o)
		}
	}
	return out
}

// references checks every name one object gives another.
func (v *verifier) references() {
	for _, o := range v.objs {
		for k, val := range objectLabels(o) {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				v.errorf(o, "label %q: %s", k, strings.Join(errs, "; "))
			}
			if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
				v.errorf(o, "label %s=%q: %s", k, val, strings.Join(errs, "; "))
			}
		}
		if spec, lbls, ok := podSpecOf(o); ok {
			v.podSpec(o, spec, lbls)
		}
		switch x := o.Value.(type) {
		case *appsv1.Deployment:
			v.selector(o, x.Spec.Selector.MatchLabels, x.Spec.Template.Labels)
		case *appsv1.StatefulSet:
			v.selector(o, x.Spec.Selector.MatchLabels, x.Spec.Template.Labels)
			if svc := v.get("Service", x.Spec.ServiceName); svc == nil {
				v.errorf(o, "serviceName %q: no such Service", x.Spec.ServiceName)
			} else if svc.Value.(*corev1.Service).Spec.ClusterIP != corev1.ClusterIPNone {
				v.errorf(o, "serviceName %q: not a headless Service (clusterIP: None)", x.Spec.ServiceName)
			}
		case *corev1.Service:
			v.service(o, x)
		case *networkingv1.Ingress:
			v.ingress(o, x)
		case *policyv1.PodDisruptionBudget:
			if len(v.workloadsSelecting(labels.SelectorFromSet(x.Spec.Selector.MatchLabels))) == 0 {
				v.errorf(o, "selector %v matches no workload's pods", x.Spec.Selector.MatchLabels)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			t := x.Spec.ScaleTargetRef
			target := v.get(t.Kind, t.Name)
			switch {
			case target == nil:
				v.errorf(o, "scaleTargetRef %s/%s: not rendered", t.Kind, t.Name)
			case target.APIVersion != t.APIVersion:
				v.errorf(o, "scaleTargetRef apiVersion %s, but %s is %s", t.APIVersion, target, target.APIVersion)
			case t.Kind == "Deployment" && deployment(target).Spec.Replicas != nil:
				v.errorf(o, "%s also sets spec.replicas: every upgrade would undo the autoscaler", target)
			}
		}
	}
}

func objectLabels(o *Object) map[string]string {
	if m, ok := o.Value.(interface{ GetLabels() map[string]string }); ok {
		return m.GetLabels()
	}
	return nil
}

func (v *verifier) selector(o *Object, sel, podLabels map[string]string) {
	if len(sel) == 0 {
		v.errorf(o, "empty selector")
	}
	if !labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
		v.errorf(o, "selector %v does not match its pod template's labels %v", sel, podLabels)
	}
}

// podSpec checks the volumes, mounts, env references, ports and probes of
// one pod spec.
func (v *verifier) podSpec(o *Object, spec *corev1.PodSpec, _ map[string]string) {
	vols := map[string]bool{}
	for _, vol := range spec.Volumes {
		vols[vol.Name] = true
		switch {
		case vol.ConfigMap != nil:
			v.mustExist(o, "ConfigMap", vol.ConfigMap.Name, keysOf(vol.ConfigMap.Items))
		case vol.Secret != nil:
			v.mustExist(o, "Secret", vol.Secret.SecretName, keysOf(vol.Secret.Items))
		case vol.Projected != nil:
			for _, src := range vol.Projected.Sources {
				if src.Secret != nil {
					v.mustExist(o, "Secret", src.Secret.Name, keysOf(src.Secret.Items))
				}
				if src.ConfigMap != nil {
					v.mustExist(o, "ConfigMap", src.ConfigMap.Name, keysOf(src.ConfigMap.Items))
				}
			}
		}
	}
	if o.Kind == "StatefulSet" {
		for _, c := range statefulSet(o).Spec.VolumeClaimTemplates {
			vols[c.Name] = true
		}
	}
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" && v.get("ServiceAccount", sa) == nil {
		v.errorf(o, "serviceAccountName %q: not rendered", sa)
	}
	for _, c := range spec.Containers {
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.Name != "" {
				if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
					v.errorf(o, "container %s: port name %q: %s", c.Name, p.Name, strings.Join(errs, "; "))
				}
				ports[p.Name] = p.ContainerPort
			}
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				v.errorf(o, "container %s mounts %q: no such volume", c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				v.mustExist(o, "Secret", r.Name, []string{r.Key})
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				v.mustExist(o, "ConfigMap", r.Name, []string{r.Key})
			}
		}
		for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			if port := p.HTTPGet.Port; port.Type == intstr.String {
				if _, ok := ports[port.StrVal]; !ok {
					v.errorf(o, "container %s: %s port %q: the container has no such port", c.Name, name, port.StrVal)
				}
			}
		}
	}
}

func keysOf(items []corev1.KeyToPath) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

// mustExist checks that kind/name is rendered with the keys, unless it is the
// operator's own Secret.
func (v *verifier) mustExist(o *Object, kind, name string, keys []string) {
	if kind == "Secret" && name != "" && name == v.external {
		return
	}
	t := v.get(kind, name)
	if t == nil {
		v.errorf(o, "refers to %s %q, which is not rendered", kind, name)
		return
	}
	have := dataKeys(t)
	for _, k := range keys {
		if !slices.Contains(have, k) {
			v.errorf(o, "refers to key %q of %s, which has %v", k, t, have)
		}
	}
}

func dataKeys(o *Object) []string {
	var out []string
	switch x := o.Value.(type) {
	case *corev1.Secret:
		for k := range x.Data {
			out = append(out, k)
		}
		for k := range x.StringData {
			out = append(out, k)
		}
	case *corev1.ConfigMap:
		for k := range x.Data {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (v *verifier) service(o *Object, svc *corev1.Service) {
	if len(svc.Spec.Selector) == 0 {
		return
	}
	ws := v.workloadsSelecting(labels.SelectorFromSet(svc.Spec.Selector))
	if len(ws) == 0 {
		v.errorf(o, "selector %v matches no workload's pods", svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		for _, w := range ws {
			spec, _, _ := podSpecOf(w)
			if !podHasPort(spec, p.TargetPort, p.Port) {
				v.errorf(o, "port %s: targetPort %s is not a port of %s", p.Name, p.TargetPort.String(), w)
			}
		}
	}
}

// podHasPort reports whether a container of spec exposes target (a name or a
// number; unset means the Service port).
func podHasPort(spec *corev1.PodSpec, target intstr.IntOrString, port int32) bool {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			switch {
			case target.Type == intstr.String && target.StrVal != "" && cp.Name == target.StrVal:
				return true
			case target.Type == intstr.Int && target.IntVal != 0 && cp.ContainerPort == target.IntVal:
				return true
			case target.Type == intstr.Int && target.IntVal == 0 && cp.ContainerPort == port:
				return true
			}
		}
	}
	return false
}

func (v *verifier) ingress(o *Object, ing *networkingv1.Ingress) {
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			b := p.Backend.Service
			if b == nil {
				v.errorf(o, "path %s: no service backend", p.Path)
				continue
			}
			t := v.get("Service", b.Name)
			if t == nil {
				v.errorf(o, "path %s: Service %q is not rendered", p.Path, b.Name)
				continue
			}
			ok := false
			for _, sp := range t.Value.(*corev1.Service).Spec.Ports {
				ok = ok || (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number)
			}
			if !ok {
				v.errorf(o, "path %s: %s has no port %v", p.Path, t, b.Port)
			}
			if p.PathType == nil {
				v.errorf(o, "path %s: no pathType", p.Path)
			}
		}
	}
}

// fileRef matches the ${file:/path} secret references of omnigate's config.
var fileRef = regexp.MustCompile(`\$\{file:([^}]*)\}`)

// omnigate checks the omnigate Deployment against its configuration: the
// config file it loads is the ConfigMap's, every ${file:} secret is a key of
// a mounted Secret, the probes hit /healthz and /readyz on the port
// http.addr listens on, and nats.url reaches the rendered NATS Service.
func (v *verifier) omnigate(res *Result) {
	var d *Object
	for _, o := range v.objs {
		if o.Kind == "Deployment" && objectLabels(o)["app.kubernetes.io/component"] == "omnigate" {
			d = o
		}
	}
	if d == nil {
		v.errs = append(v.errs, fmt.Errorf("no omnigate Deployment (label app.kubernetes.io/component=omnigate) rendered"))
		return
	}
	spec := &deployment(d).Spec.Template.Spec
	if len(spec.Containers) != 1 {
		v.errorf(d, "want one container, have %d", len(spec.Containers))
		return
	}
	c := spec.Containers[0]
	i := slices.Index(c.Args, "--config")
	if len(c.Args) == 0 || c.Args[0] != "serve" || i < 0 || i+1 >= len(c.Args) {
		v.errorf(d, "args %q: want serve --config FILE", c.Args)
		return
	}
	cfgPath := c.Args[i+1]
	cm, key := v.mountedConfigMap(spec, c, cfgPath)
	if cm == nil {
		v.errorf(d, "--config %s is not a file of a mounted ConfigMap", cfgPath)
		return
	}
	res.Config = cm.Value.(*corev1.ConfigMap).Data[key]
	var cfg struct {
		HTTP struct {
			Addr string `json:"addr"`
		} `json:"http"`
		NATS struct {
			URL     string `json:"url"`
			Streams struct {
				Replicas int `json:"replicas"`
			} `json:"streams"`
		} `json:"nats"`
	}
	if err := yaml.Unmarshal([]byte(res.Config), &cfg); err != nil {
		v.errorf(cm, "%s: not YAML: %v", key, err)
		return
	}
	_, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		v.errorf(cm, "http.addr %q: want host:port", cfg.HTTP.Addr)
	}
	var httpPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if strconv.Itoa(int(httpPort)) != port {
		v.errorf(d, "container port http is %d, but http.addr listens on %q", httpPort, cfg.HTTP.Addr)
	}
	for name, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"livenessProbe": {c.LivenessProbe, "/healthz"}, "readinessProbe": {c.ReadinessProbe, "/readyz"}, "startupProbe": {c.StartupProbe, "/healthz"}} {
		switch {
		case want.p == nil || want.p.HTTPGet == nil:
			v.errorf(d, "%s: want an httpGet of %s", name, want.path)
		case want.p.HTTPGet.Path != want.path || want.p.HTTPGet.Port.StrVal != "http":
			v.errorf(d, "%s: GET %s on port %s, want %s on http", name, want.p.HTTPGet.Path, want.p.HTTPGet.Port.String(), want.path)
		case name == "livenessProbe" && want.p.TimeoutSeconds <= 2:
			v.errorf(d, "livenessProbe: timeoutSeconds %d: each check of /healthz may take 2 s, allow more", want.p.TimeoutSeconds)
		}
	}
	v.secretRefs(d, spec, c, res)
	v.natsURL(cm, cfg.NATS.URL, cfg.NATS.Streams.Replicas)
}

// mountedConfigMap returns the ConfigMap and key that container c sees at file.
func (v *verifier) mountedConfigMap(spec *corev1.PodSpec, c corev1.Container, file string) (*Object, string) {
	for _, m := range c.VolumeMounts {
		var key string
		switch {
		case m.SubPath != "" && m.MountPath == file:
			key = m.SubPath
		case m.SubPath == "" && path.Dir(file) == path.Clean(m.MountPath):
			key = path.Base(file)
		default:
			continue
		}
		for _, vol := range spec.Volumes {
			if vol.Name == m.Name && vol.ConfigMap != nil {
				if cm := v.get("ConfigMap", vol.ConfigMap.Name); cm != nil {
					if _, ok := cm.Value.(*corev1.ConfigMap).Data[key]; ok {
						return cm, key
					}
				}
			}
		}
	}
	return nil, ""
}

// secretRefs resolves every ${file:} of the config as the kubelet would lay
// out the mounted Secrets, and keeps the files for Result.Write.
func (v *verifier) secretRefs(d *Object, spec *corev1.PodSpec, c corev1.Container, res *Result) {
	res.SecretFiles = map[string][]byte{}
	for _, m := range fileRef.FindAllStringSubmatch(res.Config, -1) {
		file := m[1]
		var mount *corev1.VolumeMount
		for i, vm := range c.VolumeMounts {
			if path.Dir(file) == path.Clean(vm.MountPath) {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil {
			v.errorf(d, "config references ${file:%s}, but nothing is mounted at %s", file, path.Dir(file))
			continue
		}
		res.MountPath = path.Clean(mount.MountPath)
		name := path.Base(file)
		found, external := false, false
		for _, vol := range spec.Volumes {
			if vol.Name != mount.Name {
				continue
			}
			var sources []*corev1.SecretProjection
			switch {
			case vol.Secret != nil:
				sources = append(sources, &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: vol.Secret.SecretName}, Items: vol.Secret.Items})
			case vol.Projected != nil:
				for _, s := range vol.Projected.Sources {
					if s.Secret != nil {
						sources = append(sources, s.Secret)
					}
				}
			}
			for _, s := range sources {
				if s.Name == v.external {
					external = true
					continue
				}
				o := v.get("Secret", s.Name)
				if o == nil {
					continue // reported by references
				}
				if b, ok := secretFile(o.Value.(*corev1.Secret), s.Items, name); ok {
					found = true
					res.SecretFiles[name] = b
				}
			}
		}
		if !found && !external {
			v.errorf(d, "config references ${file:%s}, but no Secret mounted at %s has a file %s", file, mount.MountPath, name)
		}
	}
}

// secretFile returns the contents of the file name that secret s projects,
// with items (nil: every key under its own name).
func secretFile(s *corev1.Secret, items []corev1.KeyToPath, name string) ([]byte, bool) {
	if len(items) == 0 {
		b, ok := s.Data[name]
		if !ok {
			if str, ok2 := s.StringData[name]; ok2 {
				return []byte(str), true
			}
		}
		return b, ok
	}
	for _, it := range items {
		if it.Path == name {
			b, ok := s.Data[it.Key]
			return b, ok
		}
	}
	return nil, false
}

// natsURL checks that every server of nats.url in the rendered namespace is
// a rendered Service port, and that streams have no more copies than the
// cluster has servers. Hosts that are not rendered Services are the
// operator's own cluster.
func (v *verifier) natsURL(cm *Object, list string, replicas int) {
	for raw := range strings.SplitSeq(list, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			v.errorf(cm, "nats.url %q: not a URL", raw)
			continue
		}
		svc := v.get("Service", u.Hostname())
		if svc == nil {
			continue
		}
		p, _ := strconv.Atoi(cmpOr(u.Port(), "4222"))
		var ok bool
		for _, sp := range svc.Value.(*corev1.Service).Spec.Ports {
			ok = ok || int(sp.Port) == p
		}
		if !ok {
			v.errorf(cm, "nats.url %s: %s has no port %d", raw, svc, p)
		}
		ws := v.workloadsSelecting(labels.SelectorFromSet(svc.Value.(*corev1.Service).Spec.Selector))
		for _, w := range ws {
			if w.Kind == "StatefulSet" {
				n := int(ptrOr(statefulSet(w).Spec.Replicas, 1))
				if replicas > n {
					v.errorf(cm, "nats.streams.replicas is %d, but %s has %d servers", replicas, w, n)
				}
			}
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// nats checks each NATS StatefulSet's configuration with nats-server's own
// parser, as the first pod would read it ($POD_NAME set): JetStream on and
// stored on the pod's volume claim, and, for a cluster, one route to every
// pod's stable name.
func (v *verifier) nats() {
	for _, o := range v.objs {
		if o.Kind != "StatefulSet" || objectLabels(o)["app.kubernetes.io/component"] != "nats" {
			continue
		}
		st := statefulSet(o)
		spec := &st.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			v.errorf(o, "want one container, have %d", len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		i := slices.Index(c.Args, "--config")
		if i < 0 || i+1 >= len(c.Args) {
			v.errorf(o, "args %q: want --config FILE", c.Args)
			continue
		}
		cm, key := v.mountedConfigMap(spec, c, c.Args[i+1])
		if cm == nil {
			v.errorf(o, "--config %s is not a file of a mounted ConfigMap", c.Args[i+1])
			continue
		}
		pod := st.Name + "-0"
		opts, err := parseNATSConfig(cm.Value.(*corev1.ConfigMap).Data[key], pod)
		if err != nil {
			v.errorf(cm, "nats-server rejects %s: %v", key, err)
			continue
		}
		if opts.ServerName != pod {
			v.errorf(cm, "server_name is %q for pod %s: want the pod's name", opts.ServerName, pod)
		}
		if !opts.JetStream {
			v.errorf(cm, "jetstream is off")
		}
		onClaim := false
		for _, m := range c.VolumeMounts {
			for _, t := range st.Spec.VolumeClaimTemplates {
				if m.Name == t.Name && (opts.StoreDir == m.MountPath || strings.HasPrefix(opts.StoreDir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
					onClaim = true
				}
			}
		}
		if !onClaim {
			v.errorf(o, "jetstream store_dir %s is not on a volumeClaimTemplate: it would be lost with the pod", opts.StoreDir)
		}
		n := int(ptrOr(st.Spec.Replicas, 1))
		if n == 1 {
			continue
		}
		var want, got []string
		for i := range n {
			want = append(want, fmt.Sprintf("%s-%d.%s:%d", st.Name, i, st.Spec.ServiceName, opts.Cluster.Port))
		}
		for _, r := range opts.Routes {
			got = append(got, r.Host)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			v.errorf(cm, "cluster routes %v: want one to each of the %d pods: %v", got, n, want)
		}
		if opts.Cluster.Name == "" {
			v.errorf(cm, "cluster.name is empty")
		}
		if st.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			v.errorf(o, "podManagementPolicy %q: the servers must start together to form the cluster (Parallel)", st.Spec.PodManagementPolicy)
		}
	}
}

// parseNATSConfig parses a nats.conf as the pod named pod would.
func parseNATSConfig(conf, pod string) (*server.Options, error) {
	dir, err := os.MkdirTemp("", "omnigate-nats-conf")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	prev, had := os.LookupEnv("POD_NAME")
	os.Setenv("POD_NAME", pod)
	defer func() {
		if had {
			os.Setenv("POD_NAME", prev)
		} else {
			os.Unsetenv("POD_NAME")
		}
	}()
	return server.ProcessConfigFile(file)
}

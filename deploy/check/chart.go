package main

import (
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// Install is one way of installing the chart: what `helm install -f ... --set
// ...` would be given.
type Install struct {
	// Name names it in messages, e.g. "ha".
	Name string
	// ValueFiles are applied in order over the chart's values.yaml.
	ValueFiles []string
	// Set are --set assignments (key=value), applied last.
	Set []string
}

// Settings are what every check of one chart shares.
type Settings struct {
	// Chart is the chart's directory.
	Chart string
	// Release and Namespace are the release name and namespace rendered with.
	Release, Namespace string
	// KubeVersion is the cluster version rendered for, e.g. v1.31.0.
	KubeVersion string
}

// Values merges the install's value files and --set assignments as helm does.
func (in Install) Values() (map[string]any, error) {
	vals, err := (&values.Options{ValueFiles: in.ValueFiles, Values: in.Set}).MergeValues(nil)
	if err != nil {
		return nil, fmt.Errorf("%s: values: %w", in.Name, err)
	}
	return vals, nil
}

// Lint runs helm lint on the chart with the install's values; every
// message of warning severity or worse is an error.
func Lint(s Settings, in Install) error {
	vals, err := in.Values()
	if err != nil {
		return err
	}
	kv, err := chartutil.ParseKubeVersion(s.KubeVersion)
	if err != nil {
		return fmt.Errorf("kube version %q: %w", s.KubeVersion, err)
	}
	l := action.NewLint()
	l.Strict, l.Namespace, l.KubeVersion = true, s.Namespace, kv
	res := l.Run([]string{s.Chart}, vals)
	var msgs []string
	for _, e := range res.Errors {
		msgs = append(msgs, e.Error())
	}
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			continue // already in Errors
		}
		if m.Severity > support.InfoSev {
			msgs = append(msgs, m.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s: helm lint:\n  %s", in.Name, strings.Join(msgs, "\n  "))
	}
	return nil
}

// Manifest is one rendered YAML document.
type Manifest struct {
	// Source is the template that rendered it.
	Source string
	// Doc is the YAML document.
	Doc string
}

// Render renders the chart with the install's values as `helm template`
// does (hooks such as the test pod included, NOTES.txt left out) and returns
// the documents in helm's install order.
func Render(s Settings, in Install) ([]Manifest, error) {
	vals, err := in.Values()
	if err != nil {
		return nil, err
	}
	chrt, err := loader.Load(s.Chart)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", s.Chart, err)
	}
	kv, err := chartutil.ParseKubeVersion(s.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", s.KubeVersion, err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace, inst.KubeVersion = s.Release, s.Namespace, kv
	inst.DisableOpenAPIValidation = true
	rel, err := inst.Run(chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("%s: helm template: %w", in.Name, err)
	}
	var out []Manifest
	add := func(all string) {
		docs := releaseutil.SplitManifests(all)
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		// SplitManifests names them manifest-0, manifest-1...: keep that order.
		sort.Slice(keys, func(i, j int) bool { return manifestIndex(keys[i]) < manifestIndex(keys[j]) })
		for _, k := range keys {
			doc := docs[k]
			src := "?"
			if line, _, ok := strings.Cut(doc, "\n"); ok && strings.HasPrefix(line, "# Source: ") {
				src = strings.TrimPrefix(line, "# Source: ")
			}
			out = append(out, Manifest{Source: src, Doc: doc})
		}
	}
	add(rel.Manifest)
	for _, h := range rel.Hooks {
		out = append(out, Manifest{Source: h.Path, Doc: h.Manifest})
	}
	return out, nil
}

func manifestIndex(key string) int {
	var n int
	_, _ = fmt.Sscanf(key, "manifest-%d", &n)
	return n
}

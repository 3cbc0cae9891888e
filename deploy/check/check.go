package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Result is what Check found in one installation.
type Result struct {
	// Manifests are the rendered documents, Objects the same decoded.
	Manifests []Manifest
	Objects   []*Object
	// Config is the omnigate configuration of the ConfigMap the Deployment mounts.
	Config string
	// MountPath is where the pods see the secret files Config references, and
	// SecretFiles are those files' contents by name (those the chart renders).
	MountPath   string
	SecretFiles map[string][]byte
}

// Summary counts the objects by kind, e.g. "Deployment 1, Service 4".
func (r *Result) Summary() string {
	n := map[string]int{}
	for _, o := range r.Objects {
		n[o.Kind]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}

// Check lints the chart with the install's values, renders it, decodes every
// object strictly and checks the references between them. The error lists
// every problem found, one per line.
func Check(s Settings, in Install) (*Result, error) {
	vals, err := in.Values()
	if err != nil {
		return nil, err
	}
	if err := Lint(s, in); err != nil {
		return nil, err
	}
	manifests, err := Render(s, in)
	if err != nil {
		return nil, err
	}
	res := &Result{Manifests: manifests}
	var errs []error
	for _, m := range manifests {
		o, err := DecodeStrict(m.Source, []byte(m.Doc))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Objects = append(res.Objects, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	external, _ := vals["existingSecret"].(string)
	v := newVerifier(res.Objects, external)
	v.references()
	v.omnigate(res)
	v.nats()
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return res, nil
}

// Write puts the manifests in dir/manifests.yaml and the omnigate
// configuration in dir/omnigate.yaml, with its ${file:} references moved from
// the pods' mount to dir/secrets, where it writes the secret files.
func (r *Result) Write(dir string) error {
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	var all strings.Builder
	for _, m := range r.Manifests {
		all.WriteString("---\n")
		all.WriteString(m.Doc)
		all.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "manifests.yaml"), []byte(all.String()), 0o600); err != nil {
		return err
	}
	for name, b := range r.SecretFiles {
		if err := os.WriteFile(filepath.Join(secrets, name), b, 0o600); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(secrets)
	if err != nil {
		return err
	}
	cfg := strings.ReplaceAll(r.Config, "${file:"+r.MountPath+"/", "${file:"+abs+"/")
	return os.WriteFile(filepath.Join(dir, "omnigate.yaml"), []byte(cfg), 0o600)
}

// podSpecOf returns the pod spec and pod labels of a workload (Deployment,
// StatefulSet, Pod), or false.
func podSpecOf(o *Object) (*corev1.PodSpec, map[string]string, bool) {
	switch o.Kind {
	case "Deployment":
		d := deployment(o)
		return &d.Spec.Template.Spec, d.Spec.Template.Labels, true
	case "StatefulSet":
		st := statefulSet(o)
		return &st.Spec.Template.Spec, st.Spec.Template.Labels, true
	case "Pod":
		p := o.Value.(*corev1.Pod)
		return &p.Spec, p.Labels, true
	}
	return nil, nil, false
}

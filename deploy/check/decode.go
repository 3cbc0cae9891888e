package main

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one rendered manifest decoded into its k8s.io/api type.
type Object struct {
	// Source is the template it came from, e.g. omnigate/templates/nats.yaml.
	Source string
	// APIVersion and Kind say which type Value has.
	APIVersion, Kind string
	// Name is metadata.name.
	Name string
	// Value is a pointer to the typed object, e.g. *appsv1.Deployment.
	Value any
}

// String names the object as kubectl does: Kind/name.
func (o *Object) String() string { return o.Kind + "/" + o.Name }

// kinds are the types the chart may render, by "apiVersion kind". A kind not
// listed here fails the check: add it when a template starts rendering it.
var kinds = map[string]func() any{
	"v1 ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                              func() any { return new(corev1.Secret) },
	"v1 Service":                             func() any { return new(corev1.Service) },
	"v1 ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1 Pod":                                 func() any { return new(corev1.Pod) },
	"apps/v1 Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1 StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"policy/v1 PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1 Ingress":           func() any { return new(networkingv1.Ingress) },
	"networking.k8s.io/v1 NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
}

// ErrUnknownKind is returned by DecodeStrict for an apiVersion and kind
// missing from the table of known types.
var ErrUnknownKind = errors.New("unknown apiVersion/kind")

// typeMeta is what DecodeStrict reads first to choose the type.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// DecodeStrict decodes one YAML document of a rendered chart into the
// k8s.io/api type its apiVersion and kind name. It fails, naming source, on
// what the API server's strict field validation refuses: a field the type does
// not have (matched case-sensitively, unlike encoding/json), a key given twice,
// a value of the wrong type; and on an apiVersion/kind it does not know
// (ErrUnknownKind), a missing or invalid metadata.name.
func DecodeStrict(source string, doc []byte) (*Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", source, err)
	}
	var tm typeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, fmt.Errorf("%s: not a Kubernetes object: %w", source, err)
	}
	newValue, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: %w %q %q: add its k8s.io/api type to kinds in deploy/check/decode.go", source, ErrUnknownKind, tm.APIVersion, tm.Kind)
	}
	o := &Object{Source: source, APIVersion: tm.APIVersion, Kind: tm.Kind, Name: tm.Metadata.Name, Value: newValue()}
	strict, err := kjson.UnmarshalStrict(js, o.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", source, o, err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%s: %s: %s", source, o, strings.Join(msgs, "; "))
	}
	if o.Name == "" {
		return nil, fmt.Errorf("%s: %s has no metadata.name", source, tm.Kind)
	}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %s: metadata.name: %s", source, o, strings.Join(errs, "; "))
	}
	return o, nil
}

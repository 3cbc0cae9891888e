// Command check validates the omnigate Helm chart offline, as .ci/run does:
// helm lint, helm template for each installation (the default values and
// values-ha.yaml), every rendered object decoded strictly into its k8s.io/api
// type, and the references between the objects (selectors, Services, Secrets,
// probes, the omnigate and NATS configurations).
//
//	cd deploy/check && go run . [-out DIR] [NAME=[VALUES[,VALUES...]]]...
//
// With no NAME=VALUES it checks "default" (values.yaml alone) and "ha"
// (values-ha.yaml over it). With -out it writes, per installation, the
// rendered manifests and the omnigate configuration with its secret files,
// for `omnigate check-config DIR/NAME/omnigate.yaml`.
//
// It is its own Go module so that helm and k8s.io/api stay out of omnigate's.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	chart := fs.String("chart", "../helm/omnigate", "chart `DIR`")
	out := fs.String("out", "", "write each installation's manifests and omnigate config under `DIR`/NAME")
	kube := fs.String("kube-version", defaultKubeVersion, "Kubernetes `VERSION` to render for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := Settings{Chart: *chart, Release: "omnigate", Namespace: "omnigate", KubeVersion: *kube}
	installs, err := parseInstalls(s.Chart, fs.Args())
	if err != nil {
		return err
	}
	var failed []string
	for _, in := range installs {
		res, err := Check(s, in)
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL %s:\n%v\n", in.Name, err)
			failed = append(failed, in.Name)
			continue
		}
		fmt.Printf("ok   %s: %d objects (%s)\n", in.Name, len(res.Objects), res.Summary())
		if *out != "" {
			if err := res.Write(filepath.Join(*out, in.Name)); err != nil {
				return err
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d installations failed: %s", len(failed), len(installs), strings.Join(failed, ", "))
	}
	return nil
}

// defaultKubeVersion is the oldest Kubernetes the chart supports (Chart.yaml's
// kubeVersion).
const defaultKubeVersion = "v1.30.0"

// parseInstalls reads NAME=[FILE[,FILE...]] arguments; none means the
// chart's own two: default and ha.
func parseInstalls(chart string, args []string) ([]Install, error) {
	if len(args) == 0 {
		return []Install{
			{Name: "default"},
			{Name: "ha", ValueFiles: []string{filepath.Join(chart, "values-ha.yaml")}},
		}, nil
	}
	var out []Install
	for _, a := range args {
		name, files, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME=VALUES[,VALUES...] (NAME= for the chart's values.yaml alone)", a)
		}
		in := Install{Name: name}
		if files != "" {
			in.ValueFiles = strings.Split(files, ",")
		}
		out = append(out, in)
	}
	return out, nil
}

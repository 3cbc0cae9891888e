package config

import (
	"net/url"
	"strings"
)

// Telemetry configures what omnigate reports about its own work besides
// /metrics, which is always on.
type Telemetry struct {
	Tracing Tracing `yaml:"tracing" doc:"OpenTelemetry traces, off by default: one trace per customer message from the webhook through the bus, pipeline and routing to the desk, and per reply to the provider's send; see docs/operations.md."`
}

// SetDefaults fills the tracing defaults.
func (t *Telemetry) SetDefaults() { t.Tracing.SetDefaults() }

// Validate checks the tracing settings.
func (t *Telemetry) Validate() error {
	var p Problems
	p.Merge("tracing", t.Tracing.Validate())
	return p.Err()
}

// Tracing configures the OTLP trace exporter.
type Tracing struct {
	Endpoint    string  `yaml:"endpoint" doc:"OTLP collector URL: http://host:4318 for OTLP/HTTP (spans go to /v1/traces unless the URL has a path), http://host:4317 with protocol grpc; https:// for TLS. Empty turns tracing off."`
	Protocol    string  `yaml:"protocol" doc:"http/protobuf or grpc."`
	SampleRatio float64 `yaml:"sample_ratio" doc:"Share of the traces that start here that are recorded, above 0 and at most 1; a message that arrives with a sampled W3C traceparent is followed as its sender decided."`
	ServiceName string  `yaml:"service_name" doc:"service.name of the spans. Headers a collector needs (an API key) go in the environment as OTEL_EXPORTER_OTLP_HEADERS=key=value,..., which the exporter reads, so they never sit in this file."`
}

// SetDefaults sets protocol http/protobuf, sample_ratio 1 and service_name
// omnigate.
func (t *Tracing) SetDefaults() {
	if t.Protocol == "" {
		t.Protocol = "http/protobuf"
	}
	if t.SampleRatio == 0 {
		t.SampleRatio = 1
	}
	if t.ServiceName == "" {
		t.ServiceName = "omnigate"
	}
}

// Validate checks the endpoint, protocol and ratio.
func (t *Tracing) Validate() error {
	var p Problems
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("endpoint", "want http://host:port or https://host:port, e.g. http://otel-collector:4318")
		}
	}
	checkEnum(&p, "protocol", t.Protocol, "http/protobuf", "grpc")
	if t.SampleRatio <= 0 || t.SampleRatio > 1 {
		p.Add("sample_ratio", "want a share above 0 and at most 1, e.g. 0.1 for one trace in ten")
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		p.Add("service_name", "required")
	}
	return p.Err()
}

package config_test

import (
	"strings"
	"testing"

	"github.com/omnigate/omnigate/config"
)

func TestTelemetry_Tracing(t *testing.T) {
	c, err := config.Parse("omnigate.yaml", []byte("telemetry:\n  tracing:\n    endpoint: https://otel.example.com:4318\n    sample_ratio: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Telemetry.Tracing
	if tr.Endpoint != "https://otel.example.com:4318" || tr.SampleRatio != 0.1 || tr.Protocol != "http/protobuf" || tr.ServiceName != "omnigate" {
		t.Errorf("tracing = %+v", tr)
	}
	if d := config.Default().Telemetry.Tracing; d.Endpoint != "" {
		t.Errorf("tracing on by default: %+v", d)
	}
	_, err = config.Parse("omnigate.yaml", []byte("telemetry:\n  tracing:\n    endpoint: otel:4318\n    protocol: thrift\n    sample_ratio: 2\n"))
	for _, want := range []string{
		"omnigate.yaml:3:5: telemetry.tracing.endpoint: want http://host:port",
		"telemetry.tracing.protocol",
		"telemetry.tracing.sample_ratio: want a share above 0 and at most 1",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}

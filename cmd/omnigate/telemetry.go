package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/telemetry"
)

// startTracing turns tracing on when telemetry.tracing.endpoint is set and
// returns what flushes the spans still buffered and turns it off again.
func startTracing(ctx context.Context, cfg config.Tracing, log *slog.Logger) (stop func(), err error) {
	shutdown, err := telemetry.Setup(ctx, telemetry.Options{
		Endpoint:       cfg.Endpoint,
		Protocol:       cfg.Protocol,
		SampleRatio:    cfg.SampleRatio,
		ServiceName:    cfg.ServiceName,
		ServiceVersion: version,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Endpoint != "" {
		log.Info("tracing on", "endpoint", cfg.Endpoint, "protocol", cfg.Protocol, "sample_ratio", cfg.SampleRatio)
	}
	return func() {
		// The spans of the last seconds: a collector that does not take them
		// within this is given up on.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}, nil
}

package pipeline_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/pipeline"
)

// BenchmarkPipeline_Messages measures customer messages per second through the
// inbound stage (resolve, link, conversation update, transcript and desk
// publishes, processed marker) of one pipeline, from 1,000 known senders, on the
// JetStream KV store and on Redis. The bus is a local nats-server over TCP.
func BenchmarkPipeline_Messages(b *testing.B) {
	b.Run("kv", func(b *testing.B) { benchMessages(b, kvBackend()) })
	b.Run("redis", func(b *testing.B) { benchMessages(b, redisBackend(b)) })
}

func benchMessages(b *testing.B, be backend) {
	const senders = 1000
	srv := bustest.RunServer(b)
	bb := openBus(b, srv)
	e := &env{t: b, ctx: testCtx(b), srv: srv, bus: bb, st: be.Open(b, bb), js: bb.JetStream()}
	e.run(bb, e.st, pipeline.Config{})
	pub, err := jetstream.New(srv.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	// Every sender writes once first, so the measured messages take the path of
	// a known customer with an open conversation.
	publishAsync(b, pub, senders, senders)
	waitDesk(e.ctx, b, e.js, senders, time.Minute)

	b.ResetTimer()
	start := time.Now()
	publishAsync(b, pub, senders, b.N)
	waitDesk(e.ctx, b, e.js, uint64(senders+b.N), time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

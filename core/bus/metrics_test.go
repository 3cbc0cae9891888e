package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// TestBus_Metrics drives a consumer that fails one message for good and
// another once, and checks what the registry shows: the dead letter in its
// stage's depth, the redelivery, the lag of a consumer with messages
// waiting, and a lint-clean exposition.
func TestBus_Metrics(t *testing.T) {
	s := bustest.RunServer(t)
	b := openExternal(t, s)
	reg := prometheus.NewPedanticRegistry()
	if err := b.RegisterMetrics(reg, bus.MetricsOptions{Cache: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var failedOnce atomic.Bool
	_, err := b.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "send-metrics", Filters: []string{bus.SubjectOut("metrics")}, Stage: "send-metrics"},
		func(_ context.Context, d *bus.Delivery) error {
			switch string(d.Data) {
			case "poison":
				return bus.Permanent(errors.New("cannot be sent"))
			case "flaky":
				if failedOnce.CompareAndSwap(false, true) {
					return errors.New("provider hiccup")
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// A consumer stuck on its first message: the others wait, its lag.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the bus closes
	_, err = b.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "slow", Filters: []string{bus.SubjectEvt("metrics.test")}},
		func(context.Context, *bus.Delivery) error { <-release; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"poison", "flaky", "fine"} {
		if _, err := b.Publish(ctx, bus.SubjectOut("metrics"), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := b.Publish(ctx, bus.SubjectEvt("metrics.test"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		want := `
# HELP omnigate_bus_dlq_messages Dead letters kept on omni.dlq.<stage>, per stage ('omnigate dlq list' shows them, 'omnigate dlq replay' sends them back).
# TYPE omnigate_bus_dlq_messages gauge
omnigate_bus_dlq_messages{stage="send-metrics"} 1
omnigate_bus_dlq_messages{stage="slow"} 0
# HELP omnigate_bus_redeliveries_total Messages JetStream delivered again to this process's consumer (an earlier delivery failed, timed out or was never answered).
# TYPE omnigate_bus_redeliveries_total counter
omnigate_bus_redeliveries_total{consumer="send-metrics"} 1
omnigate_bus_redeliveries_total{consumer="slow"} 0
`
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "omnigate_bus_dlq_messages", "omnigate_bus_redeliveries_total")
	})
	bustest.Eventually(t, 10*time.Second, func() error {
		// One message is in the slow handler (ack pending), two wait (pending).
		pending, err := gauge(reg, "omnigate_bus_consumer_pending", "slow")
		if err != nil {
			return err
		}
		ackPending, err := gauge(reg, "omnigate_bus_consumer_ack_pending", "slow")
		if err != nil {
			return err
		}
		if pending+ackPending != 3 || ackPending < 1 {
			return fmt.Errorf("slow consumer: pending %v, ack pending %v; want 3 in all, at least 1 being handled", pending, ackPending)
		}
		if p, err := gauge(reg, "omnigate_bus_consumer_pending", "send-metrics"); err != nil || p != 0 {
			return fmt.Errorf("send-metrics pending %v (%v), want 0", p, err)
		}
		return nil
	})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// gauge is the value of the series of metric name whose consumer label is
// consumer.
func gauge(g prometheus.Gatherer, name, consumer string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == consumer {
					return m.GetGauge().GetValue(), nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no %s{consumer=%q}", name, consumer)
}

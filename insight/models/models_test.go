package models_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omnigate/omnigate/insight/intent"
	"github.com/omnigate/omnigate/insight/models"
)

// Messages like those customers write, none of them from Banking77.
var messages = []string{
	"hi, I ordered a new card two weeks ago and it still hasn't come, can you check?",
	"Why was I charged a fee when I took money out of the ATM abroad?",
	"I think someone stole my card, please block it right now",
	"how long does a transfer to a German bank account take",
	"The app says my top up failed but the money left my bank",
	"can I change my PIN in the app?",
	"我的卡丢了，怎么冻结？",
}

func TestShipped_Intent(t *testing.T) {
	m, err := models.Intent()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Labels()); n != 77 {
		t.Fatalf("%d intents, want Banking77's 77", n)
	}
	want := map[int][]string{
		0: {"card_arrival", "card_delivery_estimate"},
		1: {"cash_withdrawal_charge", "card_payment_fee_charged"},
		2: {"lost_or_stolen_card", "card_swallowed", "compromised_card"},
		4: {"top_up_failed", "pending_top_up", "top_up_reverted", "balance_not_updated_after_bank_transfer"},
		5: {"change_pin", "get_physical_card"},
	}
	for i, options := range want {
		p := m.Predict(messages[i], 3)
		if !slices.Contains(options, p.Top[0].Intent) {
			t.Errorf("%q: %+v, want one of %v", messages[i], p.Top, options)
		}
	}
	// Nothing about banking: low confidence.
	if p := m.Predict("what a lovely weather for a picnic", 1); p.Confidence > 0.9 {
		t.Errorf("off-topic text: %+v", p)
	}
	h := m.Classifier().Header
	if h.Data == "" || h.Kind != "intent" || h.Format != 1 {
		t.Errorf("header %+v", h)
	}
}

func TestShipped_Sentiment(t *testing.T) {
	for _, tc := range []struct {
		lang, angry, calm string
	}{
		{"en", "This is the third time I'm asking, your service is terrible and I'm fed up", "Could you tell me how to update my address?"},
		{"zh", "太差了，客服态度恶劣，再也不买了", "请问怎么修改收货地址？"},
	} {
		m, err := models.Sentiment(tc.lang)
		if err != nil {
			t.Fatal(err)
		}
		if m.Language() != tc.lang {
			t.Errorf("%s model says %s", tc.lang, m.Language())
		}
		a, c := m.Negative(tc.angry), m.Negative(tc.calm)
		if a < m.Threshold() || c >= m.Threshold() || a <= c {
			t.Errorf("%s: angry %.2f, calm %.2f (threshold %.2f)", tc.lang, a, c, m.Threshold())
		}
	}
	if _, err := models.Sentiment("fr"); err == nil {
		t.Error("fr: no error")
	}
}

// threadCPU is the CPU time of the calling OS thread: unlike the wall clock,
// it leaves out the time the thread waited for a core on a busy machine.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkIntent_Predict measures one prediction of the shipped intent
// model on one core, and reports the 99th percentile of the wall time
// (p99-ms) and of the CPU time (p99-cpu-ms, what a message costs when the
// machine is shared).
func BenchmarkIntent_Predict(b *testing.B) {
	m, err := models.Intent()
	if err != nil {
		b.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start, c0 := time.Now(), threadCPU()
		p := m.Predict(messages[i%len(messages)], 3)
		cpu = append(cpu, threadCPU()-c0)
		lat = append(lat, time.Since(start))
		if p.Intent == "" {
			b.Fatal("no intent")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(cpu)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu[len(cpu)*99/100].Microseconds())/1000, "p99-cpu-ms")
}

// BenchmarkSentiment_Negative is the same for the shipped sentiment models.
func BenchmarkSentiment_Negative(b *testing.B) {
	en, _ := models.Sentiment("en")
	zh, _ := models.Sentiment("zh")
	if en == nil || zh == nil {
		b.Fatal("shipped sentiment models missing")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if t := messages[i%len(messages)]; i%len(messages) == 6 {
			zh.Negative(t)
		} else {
			en.Negative(t)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

var _ = intent.Unknown

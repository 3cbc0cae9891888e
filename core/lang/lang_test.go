package lang_test

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/omnigate/omnigate/core/lang"
)

// sample is one message of testdata/support.tsv.
type sample struct{ lang, text string }

func readSamples(t testing.TB) []sample {
	t.Helper()
	f, err := os.Open("testdata/support.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		l, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("testdata/support.tsv: %q has no tab", line)
		}
		out = append(out, sample{l, text})
	}
	return out
}

// TestDetector_SupportMessages measures the default detector on short
// support messages: per language at least 17 of 20 right, at most two wrong
// answer (an unsure "" is not wrong), and at least 95% right over all.
func TestDetector_SupportMessages(t *testing.T) {
	d := lang.Default()
	samples := readSamples(t)
	right, wrong, unsure := map[string]int{}, map[string]int{}, map[string]int{}
	for _, s := range samples {
		switch got := d.Detect(s.text); got {
		case s.lang:
			right[s.lang]++
		case "":
			unsure[s.lang]++
		default:
			wrong[s.lang]++
			t.Logf("%s detected as %s: %q", s.lang, got, s.text)
		}
	}
	total := 0
	for _, l := range lang.DefaultLanguages {
		if right[l] < 17 || wrong[l] > 2 {
			t.Errorf("%s: %d right, %d wrong, %d unsure of 20; want >= 17 right, <= 2 wrong", l, right[l], wrong[l], unsure[l])
		}
		total += right[l]
	}
	if pct := 100 * float64(total) / float64(len(samples)); pct < 95 {
		t.Errorf("%d of %d right (%.1f%%), want >= 95%%", total, len(samples), pct)
	} else {
		t.Logf("%d of %d right (%.1f%%)", total, len(samples), pct)
	}
}

func TestDetector_ShortOrUnsure(t *testing.T) {
	d := lang.Default()
	for _, text := range []string{"", "ok", "hi!", "123 456", "👍👍", "???", "+15551234567"} {
		if got := d.Detect(text); got != "" {
			t.Errorf("Detect(%q) = %q, want \"\"", text, got)
		}
	}
	// One CJK character is enough to tell the script's language.
	if got := d.Detect("谢谢"); got != "zh" {
		t.Errorf("Detect(谢谢) = %q, want zh", got)
	}
}

// TestDetector_Deterministic asks the same texts from many goroutines at once
// (a race under -race would show) and wants the same answer every time.
func TestDetector_Deterministic(t *testing.T) {
	d, err := lang.New(lang.Options{})
	if err != nil {
		t.Fatal(err)
	}
	samples := readSamples(t)[:40]
	want := make([]string, len(samples))
	for i, s := range samples {
		want[i] = d.Detect(s.text)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i, s := range samples {
				if got := d.Detect(s.text); got != want[i] {
					t.Errorf("Detect(%q) = %q, then %q", s.text, want[i], got)
				}
			}
		})
	}
	wg.Wait()
}

func TestNew_Options(t *testing.T) {
	d, err := lang.New(lang.Options{Languages: []string{"EN", "de", "en"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Languages(); !slices.Equal(got, []string{"en", "de"}) {
		t.Errorf("Languages() = %v, want [en de]", got)
	}
	// French is not among the choices: the answer is one of them or "".
	if got := d.Detect("Bonjour, ma commande n'est toujours pas arrivée"); got != "" && got != "en" && got != "de" {
		t.Errorf("Detect = %q, want en, de or \"\"", got)
	}
	if got := d.Detect("Meine Bestellung ist noch nicht angekommen"); got != "de" {
		t.Errorf("Detect(German) = %q, want de", got)
	}
	for _, codes := range [][]string{{"en"}, {"en", "xx"}, {"en", "en"}} {
		if _, err := lang.New(lang.Options{Languages: codes}); err == nil {
			t.Errorf("New(%v): no error", codes)
		}
	}
	if err := lang.Check([]string{"fr", "klingon"}); err == nil || !strings.Contains(err.Error(), `"klingon"`) {
		t.Errorf("Check: %v, want it to name \"klingon\"", err)
	}
}

// FuzzDetect checks that any text gets one of the configured languages or "".
func FuzzDetect(f *testing.F) {
	for _, s := range readSamples(f) {
		f.Add(s.text)
	}
	f.Add("\xff\xfe invalid utf-8")
	f.Add(strings.Repeat("a", 5000))
	d := lang.Default()
	f.Fuzz(func(t *testing.T, text string) {
		if got := d.Detect(text); got != "" && !slices.Contains(lang.DefaultLanguages, got) {
			t.Fatalf("Detect(%q) = %q, not a configured language", text, got)
		}
	})
}

func BenchmarkDetector_Detect(b *testing.B) {
	d := lang.Default()
	samples := readSamples(b)
	d.Preload()
	b.ResetTimer()
	for i := range b.N {
		d.Detect(samples[i%len(samples)].text)
	}
}

// TestHead: a long text is cut before n bytes, after its last space when
// that keeps at least half, never inside a character; Detect of a long text
// reads its head and still tells its language.
func TestHead(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"hello world again", 13, "hello world"},
		{"abcdefghijklmnop", 8, "abcdefgh"},
		{"我的卡还没到", 7, "我的"},
		{"a bcdefghijkl", 8, "a bcdefg"},
		{"anything", 0, ""},
	} {
		if got := lang.Head(c.in, c.n); got != c.want {
			t.Errorf("Head(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	long := strings.Repeat("Bonjour, ma carte bancaire n'est toujours pas arrivée et je voudrais savoir pourquoi. ", 20)
	if got := lang.Default().Detect(long); got != "fr" {
		t.Errorf("Detect of %d bytes of French = %q", len(long), got)
	}
}

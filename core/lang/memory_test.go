package lang_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/lang"
)

// TestMain runs the memory probe when the test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv("OMNIGATE_LANG_MEMORY_PROBE") == "1" {
		memoryProbe()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// memoryProbe loads the default detector's models in a fresh process and
// prints the heap they take and how long loading took.
func memoryProbe() {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	d := lang.Default()
	d.Preload()
	load := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(d)
	fmt.Printf("heap %d load_ms %d peak_rss_kb %d\n", after.HeapAlloc-before.HeapAlloc, load.Milliseconds(), peakRSS())
}

// peakRSS is the process's peak resident set in KiB (VmHWM), 0 where /proc
// does not say.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestDetector_Memory measures, in a fresh process, the memory the default
// languages' models take once loaded: it must stay small enough for every
// replica to hold them (under 64 MB).
func TestDetector_Memory(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OMNIGATE_LANG_MEMORY_PROBE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var heap, loadMS, rssKB int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "heap %d load_ms %d peak_rss_kb %d", &heap, &loadMS, &rssKB); err != nil {
		t.Fatalf("probe printed %q: %v", out, err)
	}
	t.Logf("models of %d languages: %s MB of heap once loaded, loaded in %d ms; the probe process peaked at %d MB resident",
		len(lang.DefaultLanguages), strconv.FormatFloat(float64(heap)/(1<<20), 'f', 1, 64), loadMS, rssKB>>10)
	if heap > 64<<20 {
		t.Errorf("the models take %d MB, want < 64 MB", heap>>20)
	}
}

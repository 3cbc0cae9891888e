package core_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/omnigate/omnigate/core"
)

func TestNewID_OrderedOverTime(t *testing.T) {
	start := time.Now()
	var got []string
	// Run across at least three millisecond boundaries, many IDs per millisecond.
	for time.Since(start) < 3*time.Millisecond || len(got) < 1000 {
		got = append(got, core.NewID())
	}
	end := time.Now()

	for i, id := range got {
		if !core.ValidID(id) {
			t.Fatalf("NewID() = %q, not a canonical ULID", id)
		}
		if i > 0 && got[i-1] >= id {
			t.Fatalf("NewID not increasing: %q then %q", got[i-1], id)
		}
	}
	first, last := ulid.MustParse(got[0]).Timestamp(), ulid.MustParse(got[len(got)-1]).Timestamp()
	if first.Before(start.Truncate(time.Millisecond)) || last.After(end) {
		t.Errorf("ID times %v..%v outside the run %v..%v", first, last, start, end)
	}
	if !last.After(first) {
		t.Errorf("all IDs in one millisecond %v; want the time part to advance", first)
	}
}

func TestNewID_UniqueConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 16, 5000
	results := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ids := make([]string, perGoroutine)
			for i := range ids {
				ids[i] = core.NewID()
			}
			results[g] = ids
		})
	}
	wg.Wait()

	seen := make(map[string]bool, goroutines*perGoroutine)
	for g, ids := range results {
		if !slices.IsSorted(ids) {
			t.Errorf("goroutine %d: IDs not increasing", g)
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate ID %q", id)
			}
			seen[id] = true
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"new", core.NewID(), true},
		{"zero", strings.Repeat("0", 26), true},
		{"max", "7" + strings.Repeat("Z", 25), true},
		{"empty", "", false},
		{"short", "01HZY3K8Q2XJ4V6M9N0P1R2S3", false},
		{"long", "01HZY3K8Q2XJ4V6M9N0P1R2S3TT", false},
		{"overflow", "8" + strings.Repeat("0", 25), false},
		{"lower case", "01hzy3k8q2xj4v6m9n0p1r2s3t", false},
		{"letter I", "01HZY3K8Q2XJ4V6M9N0P1R2S3I", false},
		{"letter L", "01HZY3K8Q2XJ4V6M9N0P1R2S3L", false},
		{"letter O", "01HZY3K8Q2XJ4V6M9N0P1R2S3O", false},
		{"letter U", "01HZY3K8Q2XJ4V6M9N0P1R2S3U", false},
		{"dash", "01HZY3K8Q2-J4V6M9N0P1R2S3T", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := core.ValidID(tt.in); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkNewID(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			core.NewID()
		}
	})
}

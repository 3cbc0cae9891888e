package core_test

import (
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "h"}, {"中文字", 4, "中"}, {"😀x", 3, ""}, {"ab", 0, ""}, {"ab", -1, ""},
	}
	for _, tt := range tests {
		if got := core.Truncate(tt.s, tt.n); got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestEllipsize(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 5, "hello"}, {"hello!", 5, "hell…"}, {"中文字符串", 3, "中文…"}, {"ab", 0, ""},
	}
	for _, tt := range tests {
		if got := core.Ellipsize(tt.s, tt.n); got != tt.want {
			t.Errorf("Ellipsize(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("héllo 中文 😀", 5)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := core.Truncate(s, n)
		if len(got) > max(n, 0) || (utf8.ValidString(s) && !utf8.ValidString(got)) {
			t.Fatalf("Truncate(%q, %d) = %q", s, n, got)
		}
	})
}

package api

import (
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/event"
)

func TestBody_EscapesAndRendersOnlyReplies(t *testing.T) {
	for _, tc := range []struct {
		e       Entry
		want    string
		mustNot string
	}{
		{Entry{Text: "<script>alert(1)</script> **hi**"}, "&lt;script&gt;alert(1)&lt;/script&gt; **hi**", "<script>"},
		{Entry{Text: "**hi** [x](https://example.com/a?b=1&c=2)", Format: event.FormatMarkdown}, `<strong>hi</strong> <a href="https://example.com/a?b=1&amp;c=2">x</a>`, ""},
		{Entry{Text: "[x](javascript:alert(1)) <img src=x>", Format: event.FormatMarkdown}, "&lt;img src=x&gt;", `href="javascript:`},
	} {
		got := string(body(tc.e))
		if !strings.Contains(got, tc.want) || (tc.mustNot != "" && strings.Contains(got, tc.mustNot)) {
			t.Errorf("body(%q, %q) = %q, want %q without %q", tc.e.Text, tc.e.Format, got, tc.want, tc.mustNot)
		}
	}
}

func TestHumanSizeAndDuration(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KB", 1536: "1.5 KB", 5 << 20: "5 MB", 3 << 30: "3 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{24 * time.Hour: "1 day", 7 * 24 * time.Hour: "7 days", 90 * time.Minute: "1h30m0s"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

package main

import (
	"strings"
	"testing"
)

func TestDemoWarning(t *testing.T) {
	if w := demoWarning(nil); !strings.Contains(w, "No agent desk is configured") || !strings.Contains(w, "channels.slack") {
		t.Errorf("no desk: %q", w)
	}
	if w := demoWarning([]string{"slack"}); w != "" {
		t.Errorf("with a desk: %q", w)
	}
}

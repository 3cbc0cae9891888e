package routing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/routing"
)

func TestHTTPClassifier(t *testing.T) {
	var (
		mu  sync.Mutex
		got struct{ Text, Language, Auth string }
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text     string `json:"text"`
			Language string `json:"language"`
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got.Text, got.Language, got.Auth = req.Text, req.Language, r.Header.Get("Authorization")
		mu.Unlock()
		switch req.Text {
		case "slow":
			time.Sleep(300 * time.Millisecond)
		case "broken":
			http.Error(w, "oops", http.StatusInternalServerError)
			return
		case "nonsense":
			w.Write([]byte(`{"score": 7}`))
			return
		case "missing":
			w.Write([]byte(`{"labels": ["x"]}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"score": 0.42, "labels": ["billing", "negative"]}`))
	}))
	defer srv.Close()
	c := &routing.HTTPClassifier{URL: srv.URL, Token: "s3cret", Timeout: 100 * time.Millisecond}
	ctx := context.Background()

	r, err := c.Classify(ctx, "where is my invoice", "en")
	if err != nil || r.Score != 0.42 || !slices.Equal(r.Labels, []string{"billing", "negative"}) || r.Source != "http" {
		t.Fatalf("Classify = %+v, %v", r, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Text != "where is my invoice" || got.Language != "en" || got.Auth != "Bearer s3cret" {
		t.Fatalf("hook got %+v", got)
	}
	// Every failure falls back to the built-in scorer.
	for _, text := range []string{"slow", "broken", "nonsense", "missing"} {
		r, err := c.Classify(ctx, text, "en")
		if err != nil || r.Source != "builtin" {
			t.Errorf("Classify(%q) = %+v, %v; want the built-in scorer's answer", text, r, err)
		}
	}
	dead := &routing.HTTPClassifier{URL: "http://127.0.0.1:1/score", Timeout: time.Second}
	if r, err := dead.Classify(ctx, "Cancel my account now!!!", "en"); err != nil || r.Source != "builtin" || r.Score < 0.6 {
		t.Fatalf("unreachable hook: %+v, %v", r, err)
	}
}

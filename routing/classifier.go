package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"
)

// HTTPClassifier is a Classifier behind an HTTP hook: it POSTs
// {"text": ..., "language": ...} as JSON to URL and reads {"score": 0..1,
// "labels": [...]}. Any failure (timeout, non-2xx answer, malformed body, a
// score outside [0, 1]) is logged and answered by Fallback, so a broken hook
// never stops routing. Safe for concurrent use.
type HTTPClassifier struct {
	// URL receives the POST.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds one call; default 2s.
	Timeout time.Duration
	// Client makes the calls; default a client without a timeout of its own.
	Client *http.Client
	// Fallback answers when the hook fails; default NewScorer().
	Fallback Classifier
	// Logger receives a warning per failure; default discard.
	Logger *slog.Logger
}

// classifyRequest and classifyResponse are the hook's wire format.
type classifyRequest struct {
	Text     string `json:"text"`
	Language string `json:"language"`
}

type classifyResponse struct {
	Score  *float64 `json:"score"`
	Labels []string `json:"labels"`
}

// maxClassifyBody bounds the hook's answer.
const maxClassifyBody = 64 << 10

// Classify implements Classifier. It returns an error only when the fallback
// does.
func (c *HTTPClassifier) Classify(ctx context.Context, text, language string) (Classification, error) {
	cl, err := c.call(ctx, text, language)
	if err == nil {
		return cl, nil
	}
	if c.Logger != nil {
		c.Logger.Warn("classifier hook failed, using the built-in scorer", "err", err)
	}
	fb := c.Fallback
	if fb == nil {
		fb = defaultScorer
	}
	return fb.Classify(ctx, text, language)
}

// defaultScorer is shared: a Scorer is read-only once built.
var defaultScorer = NewScorer()

func (c *HTTPClassifier) call(ctx context.Context, text, language string) (Classification, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(classifyRequest{Text: text, Language: language})
	if err != nil {
		return Classification{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return Classification{}, fmt.Errorf("routing: classifier: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Classification{}, fmt.Errorf("routing: classifier: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxClassifyBody+1))
	if err != nil {
		return Classification{}, fmt.Errorf("routing: classifier: read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Classification{}, fmt.Errorf("routing: classifier: status %d", resp.StatusCode)
	}
	if len(data) > maxClassifyBody {
		return Classification{}, fmt.Errorf("routing: classifier: answer longer than %d bytes", maxClassifyBody)
	}
	var out classifyResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return Classification{}, fmt.Errorf("routing: classifier: answer: %w", err)
	}
	switch {
	case out.Score == nil:
		return Classification{}, errors.New("routing: classifier: answer has no score")
	case math.IsNaN(*out.Score) || *out.Score < 0 || *out.Score > 1:
		return Classification{}, fmt.Errorf("routing: classifier: score %g outside [0, 1]", *out.Score)
	}
	return Classification{Score: *out.Score, Labels: out.Labels, Source: "http"}, nil
}

var _ Classifier = (*HTTPClassifier)(nil)

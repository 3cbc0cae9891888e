// Package models holds the default models shipped in the omnigate binary:
// intent (Banking77's 77 online-banking intents) and sentiment for English
// and Chinese. README.md beside this file gives their training data and its
// licences; `go run ./insight/models/build` trains them again.
package models

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/omnigate/omnigate/insight/intent"
	"github.com/omnigate/omnigate/insight/model"
	"github.com/omnigate/omnigate/insight/sentiment"
)

var (
	//go:embed intent.omm
	intentFile []byte
	//go:embed sentiment_en.omm
	sentimentEN []byte
	//go:embed sentiment_zh.omm
	sentimentZH []byte
)

// Each model is decoded once, on first use.
var (
	intentOnce = sync.OnceValues(func() (*intent.Model, error) {
		c, err := model.Decode(bytes.NewReader(intentFile))
		if err != nil {
			return nil, fmt.Errorf("models: shipped intent model: %w", err)
		}
		return intent.FromClassifier(c)
	})
	sentimentOnce = map[string]func() (*sentiment.Model, error){
		"en": sync.OnceValues(func() (*sentiment.Model, error) { return decodeSentiment(sentimentEN) }),
		"zh": sync.OnceValues(func() (*sentiment.Model, error) { return decodeSentiment(sentimentZH) }),
	}
)

func decodeSentiment(b []byte) (*sentiment.Model, error) {
	c, err := model.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("models: shipped sentiment model: %w", err)
	}
	return sentiment.FromClassifier(c)
}

// Intent returns the shipped intent model.
func Intent() (*intent.Model, error) { return intentOnce() }

// Sentiment returns the shipped sentiment model for language "en" or "zh".
func Sentiment(language string) (*sentiment.Model, error) {
	f, ok := sentimentOnce[language]
	if !ok {
		return nil, fmt.Errorf("models: no shipped sentiment model for %q: want en or zh", language)
	}
	return f()
}

// Languages are those Sentiment has a model for.
var Languages = []string{"en", "zh"}

package model_test

import (
	"bytes"
	"testing"

	"github.com/omnigate/omnigate/insight/model"
)

// FuzzDecode feeds Decode damaged and foreign files (seeds in
// testdata/fuzz/FuzzDecode, among them a valid model): it must return an
// error or a model that predicts, never panic or allocate without bound.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := model.Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		p := c.Probabilities("my card has not arrived 卡没到")
		if len(p) != len(c.Header.Labels) {
			t.Fatalf("%d probabilities for %d labels", len(p), len(c.Header.Labels))
		}
	})
}

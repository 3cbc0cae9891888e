package telegram

import (
	"context"
	"log/slog"

	"github.com/omnigate/omnigate/core"
)

// ErrMalformed is errMalformed, for tests.
var ErrMalformed = errMalformed

// Normalize parses a webhook body and turns it into the envelope to publish,
// as the webhook does, for an adapter without a store.
func Normalize(body []byte, allowGroups bool) (*core.Message, error) {
	u, err := parseUpdate(body)
	if err != nil {
		return nil, err
	}
	a := &Adapter{cfg: Config{AllowGroups: allowGroups}, log: slog.New(slog.DiscardHandler)}
	m, _, err := a.inbound(context.Background(), u)
	return m, err
}

// ChoiceData is the callback_data of quick reply i of envelope id.
func ChoiceData(id string, i int) string { return choiceData(id, i) }

// RenderLimit is Render with another limit.
func RenderLimit(text string, markdown bool, limit int) []string {
	var out []string
	for _, c := range render(text, markdown, limit) {
		out = append(out, c.text)
	}
	return out
}

// Visible is what the customer sees of text once rendered, unsplit.
func Visible(text string, markdown bool) string {
	if !markdown {
		return text
	}
	var s string
	for _, r := range parseMarkdown(text) {
		s += r.text
	}
	return s
}

package telegram

import "github.com/omnigate/omnigate/core"

// ErrMalformed is errMalformed, for tests.
var ErrMalformed = errMalformed

// Normalize parses a webhook body and normalizes it, as the webhook does
// before publishing.
func Normalize(body []byte, allowGroups bool) (*core.Message, error) {
	u, err := parseUpdate(body)
	if err != nil {
		return nil, err
	}
	m, _, err := normalize(u, allowGroups)
	return m, err
}

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

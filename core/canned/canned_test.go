package canned_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/core/canned"
)

func TestFill(t *testing.T) {
	vars := map[string]string{canned.ContactName: "Ann", canned.TicketNumber: "T-42", canned.QueueExpectedWait: " "}
	for _, tc := range []struct {
		name, text, want string
		unknown, missing []string
	}{
		{name: "none", text: "Hello there", want: "Hello there"},
		{name: "spaces", text: "Hi {{ contact.name }}, ticket {{ticket.number}}. Bye {{contact.name}}", want: "Hi Ann, ticket T-42. Bye Ann"},
		{name: "unknown", text: "Hi {{contact.nmae}} {{order.id}}", unknown: []string{"contact.nmae", "order.id"}},
		{name: "missing", text: "Wait {{queue.expected_wait}}", missing: []string{"queue.expected_wait"}},
		{name: "both", text: "{{x}} {{queue.expected_wait}}", unknown: []string{"x"}, missing: []string{"queue.expected_wait"}},
		{name: "not a variable", text: "a {b} {{ }} c", unknown: []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canned.Fill(tc.text, vars)
			var ce *canned.Error
			if tc.unknown == nil && tc.missing == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Fill = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.As(err, &ce) {
				t.Fatalf("Fill = %q, %v; want *canned.Error", got, err)
			}
			if !slices.Equal(ce.Unknown, tc.unknown) || !slices.Equal(ce.Missing, tc.missing) || got != tc.text {
				t.Errorf("unknown %q missing %q text %q", ce.Unknown, ce.Missing, got)
			}
			if len(tc.unknown) > 0 && !strings.Contains(err.Error(), "{{contact.name}}") {
				t.Errorf("error does not list the known variables: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	if err := canned.Check("Hi {{contact.name}}, {{queue.expected_wait}}"); err != nil {
		t.Errorf("Check of known variables: %v", err)
	}
	var ce *canned.Error
	if err := canned.Check("{{ticket.id}}"); !errors.As(err, &ce) || !slices.Equal(ce.Unknown, []string{"ticket.id"}) {
		t.Errorf("Check of an unknown variable: %v", err)
	}
}

func TestSuggestions_RoundTrip(t *testing.T) {
	long := strings.Repeat("好", canned.MaxSuggestionBytes)
	in := []canned.Suggestion{{Article: "a.md", Name: "a", Text: "Hi {{contact.name}}"}, {Article: "b", Text: " "}, {Article: "c", Text: long, Learned: true}, {Article: "d", Text: "d"}, {Article: "e", Text: "e"}}
	out, err := canned.DecodeSuggestions(canned.EncodeSuggestions(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0] != in[0] || !out[1].Learned || len(out[1].Text) > canned.MaxSuggestionBytes || !strings.HasPrefix(long, out[1].Text) {
		t.Errorf("round trip: %+v", out)
	}
	if _, err := canned.DecodeSuggestions("{"); err == nil {
		t.Error("decoded garbage")
	}
}

// Package canned fills the variables of canned answers: the knowledge base
// (insight/kb) holds answers with {{contact.name}}, {{ticket.number}} and
// {{queue.expected_wait}} in them, and the desk that sends one fills them
// with what it knows of the conversation. Both sides check a template with
// the same code, so an answer the knowledge base accepted is one a desk can
// fill.
package canned

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The variables an answer may use.
const (
	// ContactName is what the customer is called: the contact's name, else
	// the name their channel gave, else an address of theirs.
	ContactName = "contact.name"
	// TicketNumber is the number of the conversation's latest ticket.
	TicketNumber = "ticket.number"
	// QueueExpectedWait is the wait routing last announced to the customer
	// ("about 5 minutes").
	QueueExpectedWait = "queue.expected_wait"
)

// Variables lists every variable, in the order the docs show them.
var Variables = []string{ContactName, TicketNumber, QueueExpectedWait}

// variableRE is one {{ name }} in a template.
var variableRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// Error says why a template could not be filled: which variables it uses
// that do not exist, and which have no value for this conversation.
type Error struct {
	Unknown []string
	Missing []string
}

func (e *Error) Error() string {
	var parts []string
	if len(e.Unknown) > 0 {
		parts = append(parts, fmt.Sprintf("unknown variable %s (known: %s)", braces(e.Unknown), braces(Variables)))
	}
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("no value for %s in this conversation", braces(e.Missing)))
	}
	return "canned: " + strings.Join(parts, "; ")
}

func braces(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "{{" + n + "}}"
	}
	return strings.Join(out, ", ")
}

// Used returns the variables text uses, each once, in order of first use.
func Used(text string) []string {
	var out []string
	for _, m := range variableRE.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// Check returns an *Error naming the variables of text that do not exist,
// or nil.
func Check(text string) error {
	var unknown []string
	for _, v := range Used(text) {
		if !slices.Contains(Variables, v) {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		return &Error{Unknown: unknown}
	}
	return nil
}

// Fill replaces every variable of text with its value in vars. A variable
// that does not exist, or has no (or an empty) value, is an *Error naming
// them all, and text comes back unchanged.
func Fill(text string, vars map[string]string) (string, error) {
	e := &Error{}
	for _, v := range Used(text) {
		switch {
		case !slices.Contains(Variables, v):
			e.Unknown = append(e.Unknown, v)
		case strings.TrimSpace(vars[v]) == "":
			e.Missing = append(e.Missing, v)
		}
	}
	if len(e.Unknown)+len(e.Missing) > 0 {
		return text, e
	}
	return variableRE.ReplaceAllStringFunc(text, func(s string) string {
		return strings.TrimSpace(vars[variableRE.FindStringSubmatch(s)[1]])
	}), nil
}

// Package kb is omnigate's knowledge base: articles (a question and its
// answer, or a named canned answer) read from a folder of Markdown files or a
// CSV file, plus what agents answered in resolved conversations, indexed with
// BM25 over words and, for Chinese, character bigrams. insight/suggest uses it
// to suggest replies; the Slack desk reads its canned answers by name.
package kb

// Article is one entry of the knowledge base: an answer, and the questions
// it answers.
type Article struct {
	// ID names the article: its file (relative to the knowledge base),
	// "<file>:<line>" for a CSV row, "learned:<conversation>:<n>" for an
	// agent's answer learned from a resolved conversation.
	ID string `json:"id"`
	// Title is the article's title: the front matter's title, else its first
	// heading.
	Title string `json:"title,omitempty"`
	// Name makes the article a canned answer agents insert by name
	// (/omni answer <name>): lower-case letters, digits, '-' and '_'.
	Name string `json:"name,omitempty"`
	// Lang is the article's language (en, zh), if it says.
	Lang string `json:"lang,omitempty"`
	// Questions are what customers ask that the answer answers.
	Questions []string `json:"questions,omitempty"`
	// Answer is the reply, in CommonMark, with {{variables}} filled when it
	// is used (core/canned).
	Answer string `json:"answer"`
	// Learned marks an agent's answer from a resolved conversation.
	Learned bool `json:"learned,omitempty"`
}

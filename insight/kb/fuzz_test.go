package kb_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/insight/kb"
)

// FuzzParseMarkdown: any file parses or fails with a *ParseError, never
// panics, and what it accepts has an answer, valid UTF-8 and checked
// variables. The seeds run with every go test.
func FuzzParseMarkdown(f *testing.F) {
	for _, s := range []string{
		"---\ntitle: t\nname: n\nlang: zh\nquestions:\n  - q\n---\nanswer {{contact.name}}",
		"# Title\nbody",
		"---\n---\n",
		"---\nquestions: notalist\n---\nx",
		"---\ntitle: [a\n---\nx",
		"\uFEFF---\r\ntitle: x\r\n---",
		"{{ticket.number}}{{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := kb.ParseMarkdown("f.md", data)
		if err != nil {
			if _, ok := err.(*kb.ParseError); !ok {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			return
		}
		if strings.TrimSpace(a.Answer) == "" || !utf8.ValidString(a.Answer+a.Title+a.Name) {
			t.Fatalf("accepted %+v", a)
		}
		kb.NewIndex([]kb.Article{a}).Search(a.Answer, 3)
	})
}

// FuzzParseCSV: any input gives articles, skipped rows or an error, never a
// panic, and every article has a question and an answer.
func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"question,answer,name\nq,a,n\nq2,,n\n",
		"answer,question\n\"multi\nline\",q\n",
		"question,answer\n\"unterminated,x\n",
		"question\nq\n",
		"question,answer\nq,a,extra,fields\n,\n",
		"\uFEFFQuestion,Answer\n退款,{{contact.name}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		arts, _, err := kb.ParseCSV("f.csv", strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, a := range arts {
			if len(a.Questions) == 0 || a.Answer == "" {
				t.Fatalf("article without question or answer: %+v", a)
			}
		}
		kb.NewIndex(arts).Search(string(data), 3)
	})
}

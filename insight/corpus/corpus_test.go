package corpus_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/insight/corpus"
)

func TestRead_Columns(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		text, lab string
		rows      []corpus.Row
	}{
		{"banking77", "text,category\nI am still waiting on my card?,card_arrival\n", "text", "category",
			[]corpus.Row{{"I am still waiting on my card?", "card_arrival"}}},
		{"label first", "label,review\n1,\"很好, 不错\"\n", "review", "label", []corpus.Row{{"很好, 不错", "1"}}},
		{"three columns", "cat,label,review\n书籍,0,太差了\n", "review", "label", []corpus.Row{{"太差了", "0"}}},
		{"any names", "\ufeffquestion,answer_id\nhow do I pay?,pay\n", "question", "answer_id", []corpus.Row{{"how do I pay?", "pay"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := corpus.Read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if res.TextColumn != tc.text || res.LabelColumn != tc.lab || !slices.Equal(res.Rows, tc.rows) || res.Skipped != 0 {
				t.Errorf("got %+v", res)
			}
		})
	}
}

func TestRead_SkipsUnreadableRows(t *testing.T) {
	in := "text,intent\n" +
		"good row,a\n" +
		"no label\n" + // missing column
		",a\n" + // empty text
		"bad \xff utf8,a\n" +
		"\"unterminated,a\n" +
		"another,b\n"
	res, err := corpus.Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) < 1 || res.Rows[0] != (corpus.Row{"good row", "a"}) || res.Skipped < 3 {
		t.Errorf("rows %+v, skipped %d", res.Rows, res.Skipped)
	}
}

func TestRead_Errors(t *testing.T) {
	if _, err := corpus.Read(strings.NewReader("")); !errors.Is(err, corpus.ErrNoHeader) {
		t.Errorf("empty: %v", err)
	}
	if _, err := corpus.Read(strings.NewReader("text\nhello\n")); err == nil {
		t.Error("one column: no error")
	}
}

func TestLabels(t *testing.T) {
	got := corpus.Labels([]corpus.Row{{"x", "b"}, {"y", "a"}, {"z", "b"}})
	if !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Labels = %v", got)
	}
}

// FuzzRead reads arbitrary CSV (seeds in testdata/fuzz/FuzzRead): it never
// panics, and every row it returns has a text and a label of valid UTF-8
// within MaxText.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		res, err := corpus.Read(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range res.Rows {
			if r.Text == "" || r.Label == "" || len(r.Text) > corpus.MaxText {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}

// Package corpus reads labelled text for insight's models: CSV files of
// text and label with a header row (text,intent; text,label; Banking77's
// text,category), whatever the second column is called.
package corpus

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
)

// Row is one labelled text.
type Row struct {
	Text  string
	Label string
}

// Result is what Read found.
type Result struct {
	Rows []Row
	// Skipped counts the rows that could not be read: malformed CSV, a
	// missing column, an empty text or label, invalid UTF-8.
	Skipped int
	// TextColumn and LabelColumn are the header's names of the columns read.
	TextColumn, LabelColumn string
}

// MaxText bounds one row's text; longer texts are cut there.
const MaxText = 8 << 10

// ErrNoHeader is returned for input without a header row.
var ErrNoHeader = errors.New("corpus: no header row: want a first line such as text,intent")

// Read reads a CSV with a header. The text is the column named text (else the
// first), the label the column named label (else the first other column),
// so text,intent, text,category and label,review all read. Rows it cannot
// read are counted in Skipped, never fatal.
func Read(r io.Reader) (Result, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	var res Result
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return res, ErrNoHeader
		}
		return res, fmt.Errorf("corpus: header: %w", err)
	}
	ti, li := columns(head)
	if li < 0 {
		return res, fmt.Errorf("corpus: header %q has one column: want text and a label", strings.Join(head, ","))
	}
	res.TextColumn, res.LabelColumn = clean(head[ti]), clean(head[li])
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				res.Skipped++
				continue
			}
			return res, fmt.Errorf("corpus: %w", err)
		}
		if ti >= len(rec) || li >= len(rec) {
			res.Skipped++
			continue
		}
		text, label := strings.TrimSpace(rec[ti]), strings.TrimSpace(rec[li])
		if text == "" || label == "" || !utf8.ValidString(text) || !utf8.ValidString(label) {
			res.Skipped++
			continue
		}
		res.Rows = append(res.Rows, Row{Text: core.Truncate(text, MaxText), Label: label})
	}
	return res, nil
}

// ReadFile reads the CSV file at path.
func ReadFile(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	res, err := Read(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

func clean(s string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "\ufeff")))
}

// columns picks the text and label columns of a header.
func columns(head []string) (text, label int) {
	text, label = -1, -1
	for i, h := range head {
		switch clean(h) {
		case "text", "review", "sentence", "question":
			if text < 0 {
				text = i
			}
		case "label", "intent", "category":
			if label < 0 {
				label = i
			}
		}
	}
	if text < 0 {
		text = 0
		if label == 0 {
			text = 1
		}
	}
	if label < 0 {
		for i := range head {
			if i != text {
				label = i
				break
			}
		}
	}
	if text >= len(head) {
		return text, -1
	}
	return text, label
}

// Labels returns the distinct labels of rows, in order of first appearance.
func Labels(rows []Row) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.Label] {
			seen[r.Label] = true
			out = append(out, r.Label)
		}
	}
	return out
}

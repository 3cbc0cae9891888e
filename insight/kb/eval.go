package kb

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Labelled is one question and the name of the article that answers it.
type Labelled struct {
	Text, Label string
}

// ReadLabelled reads a CSV of questions and labels: a header naming a text
// column (text, question) and a label column (intent, category, label,
// name), as Banking77's text,category. Rows it cannot read are counted in
// skipped.
func ReadLabelled(r io.Reader) (rows []Labelled, skipped int, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("kb: labelled csv: no header: %w", err)
	}
	ti, li := -1, -1
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))) {
		case "text", "question":
			ti = cmpIdx(ti, i)
		case "intent", "category", "label", "name":
			li = cmpIdx(li, i)
		}
	}
	if ti < 0 || li < 0 {
		return nil, 0, fmt.Errorf("kb: labelled csv: header %q: want a text (or question) and an intent (or category, label, name) column", strings.Join(head, ","))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || max(ti, li) >= len(rec) || strings.TrimSpace(rec[ti]) == "" || strings.TrimSpace(rec[li]) == "" {
			var pe *csv.ParseError
			if err != nil && !errors.As(err, &pe) {
				return rows, skipped, fmt.Errorf("kb: labelled csv: %w", err)
			}
			skipped++
			continue
		}
		rows = append(rows, Labelled{Text: strings.TrimSpace(rec[ti]), Label: strings.TrimSpace(rec[li])})
	}
	return rows, skipped, nil
}

// cmpIdx keeps the first column found.
func cmpIdx(cur, i int) int {
	if cur >= 0 {
		return cur
	}
	return i
}

// Result is how well an index answers labelled questions.
type Result struct {
	// N questions; Top1 had the right article first, Top3 among the first
	// three.
	N, Top1, Top3 int
}

// String is the figure's line: "top1=0.NNN top3=0.NNN n=N".
func (r Result) String() string {
	rate := func(k int) float64 {
		if r.N == 0 {
			return 0
		}
		return float64(k) / float64(r.N)
	}
	return fmt.Sprintf("top1=%.3f top3=%.3f n=%d", rate(r.Top1), rate(r.Top3), r.N)
}

// Eval searches ix for each question and counts how often the article of
// its label comes first, or in the first three. An article is a label's
// when its name, its title or its file name (without extension) is the
// label.
func Eval(ix *Index, rows []Labelled) Result {
	var r Result
	for _, row := range rows {
		r.N++
		for i, h := range ix.Search(row.Text, 3) {
			if h.Article.answers(row.Label) {
				if i == 0 {
					r.Top1++
				}
				r.Top3++
				break
			}
		}
	}
	return r
}

// answers reports whether a is the article of label.
func (a *Article) answers(label string) bool {
	base := path.Base(a.ID)
	return a.Name == label || a.Title == label || strings.TrimSuffix(base, path.Ext(base)) == label
}

// Split makes a knowledge base of labelled questions: one article per label,
// named after it, indexed by all of its questions but every holdOut-th,
// which are held out to evaluate it. Labels keep the order they first
// appear in.
func Split(rows []Labelled, holdOut int, answer func(label string) string) (arts []Article, heldOut []Labelled) {
	byLabel := map[string]int{}
	seen := map[string]int{}
	for _, row := range rows {
		i, ok := byLabel[row.Label]
		if !ok {
			i = len(arts)
			byLabel[row.Label] = i
			name := strings.Map(func(r rune) rune {
				if r >= 'A' && r <= 'Z' {
					return r + 'a' - 'A'
				}
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
					return r
				}
				return '-'
			}, row.Label)
			arts = append(arts, Article{ID: name + ".md", Title: row.Label, Name: name, Answer: answer(row.Label)})
		}
		seen[row.Label]++
		if holdOut > 0 && seen[row.Label]%holdOut == 0 {
			heldOut = append(heldOut, row)
			continue
		}
		if len(arts[i].Questions) < MaxQuestions {
			arts[i].Questions = append(arts[i].Questions, row.Text)
		}
	}
	return arts, heldOut
}

// WriteMarkdown writes arts into dir as Markdown articles, one file per
// article named after its ID, which ParseMarkdown reads back.
func WriteMarkdown(dir string, arts []Article) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kb: %w", err)
	}
	for _, a := range arts {
		fm, err := yaml.Marshal(frontMatter{Title: a.Title, Name: a.Name, Lang: a.Lang, Questions: a.Questions})
		if err != nil {
			return fmt.Errorf("kb: %s: %w", a.ID, err)
		}
		text := "---\n" + string(fm) + "---\n" + a.Answer + "\n"
		name := filepath.Join(dir, filepath.FromSlash(a.ID))
		if !strings.HasSuffix(name, ".md") || slices.Contains(strings.Split(a.ID, "/"), "..") {
			return fmt.Errorf("kb: article id %q is not a Markdown file name", a.ID)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			return fmt.Errorf("kb: %w", err)
		}
	}
	return nil
}

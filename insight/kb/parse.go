package kb

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/core/canned"
)

// Limits on what one article may hold: a knowledge base is read at start
// and on every change, and a mistake in it must not cost memory or time.
const (
	// MaxArticleBytes is the largest Markdown file or CSV field read.
	MaxArticleBytes = 64 << 10
	// MaxQuestions is the most questions one article keeps.
	MaxQuestions = 500
)

// nameRE is a canned answer's name.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// langRE is a language tag.
var langRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// frontMatter is what a Markdown article may say before its answer.
type frontMatter struct {
	Title     string   `yaml:"title,omitempty"`
	Name      string   `yaml:"name,omitempty"`
	Lang      string   `yaml:"lang,omitempty"`
	Questions []string `yaml:"questions,omitempty"`
}

// ParseError is a problem with one article: the file, the line (0 when it is
// about the whole file) and what is wrong.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("kb: %s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("kb: %s: %s", e.File, e.Msg)
}

// ParseMarkdown reads one Markdown article named file:
//
//	---
//	title: My card has not arrived
//	name: card-arrival        # optional: a canned answer, /omni answer card-arrival
//	lang: en                  # optional
//	questions:
//	  - Where is my card?
//	  - 我的卡还没到
//	---
//	Hi {{contact.name}}, cards arrive within 5 working days...
//
// The front matter is optional; without a title the first "# heading"
// (taken out of the answer) is the title. The rest is the answer, in
// CommonMark. An unknown front matter key or {{variable}} is an error.
func ParseMarkdown(file string, data []byte) (Article, error) {
	fail := func(line int, format string, args ...any) (Article, error) {
		return Article{}, &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxArticleBytes {
		return fail(0, "larger than %d KB", MaxArticleBytes>>10)
	}
	if !utf8.Valid(data) {
		return fail(0, "not UTF-8 text")
	}
	text := strings.ReplaceAll(strings.TrimPrefix(string(data), "\uFEFF"), "\r\n", "\n")
	a := Article{ID: file}
	bodyLine := 1
	if rest, ok := strings.CutPrefix(text, "---\n"); ok {
		end := strings.Index(rest, "\n---\n")
		if end < 0 && strings.HasSuffix(rest, "\n---") {
			end = len(rest) - 4
		}
		if end < 0 {
			return fail(1, "front matter opened with --- is not closed by a --- line")
		}
		var fm frontMatter
		dec := yaml.NewDecoder(strings.NewReader(rest[:end]))
		dec.KnownFields(true)
		if err := dec.Decode(&fm); err != nil && !errors.Is(err, io.EOF) {
			line, msg := yamlMsg(err)
			return fail(line, "front matter: %s (keys: title, name, lang, questions)", msg)
		}
		a.Title, a.Name, a.Lang = strings.TrimSpace(fm.Title), strings.TrimSpace(fm.Name), strings.TrimSpace(fm.Lang)
		for _, q := range fm.Questions {
			if q = strings.TrimSpace(q); q != "" && len(a.Questions) < MaxQuestions {
				a.Questions = append(a.Questions, q)
			}
		}
		bodyLine = strings.Count(rest[:end], "\n") + 4
		text = strings.TrimPrefix(rest[end:], "\n---")
	}
	body := strings.TrimSpace(text)
	if a.Title == "" {
		if first, rest, _ := strings.Cut(body, "\n"); strings.HasPrefix(first, "# ") {
			a.Title = strings.TrimSpace(first[2:])
			body = strings.TrimSpace(rest)
		}
	}
	a.Answer = body
	if a.Answer == "" {
		return fail(bodyLine, "no answer: write it below the front matter")
	}
	if err := a.check(); err != nil {
		return fail(bodyLine, "%s", err)
	}
	return a, nil
}

// yamlLineRE is the line a YAML error names.
var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

// yamlMsg is a YAML error of the front matter: the line of the file it is
// on, and what is wrong without the library's prefix and Go types.
func yamlMsg(err error) (line int, msg string) {
	msg = strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "unmarshal errors:\n  ")
	msg, _, _ = strings.Cut(msg, "\n")
	msg = strings.ReplaceAll(msg, " in type kb.frontMatter", "")
	line = 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		line, msg = n+1, msg[len(m[0]):]
	}
	return line, msg
}

// check validates what every article must satisfy, wherever it came from.
func (a *Article) check() error {
	switch {
	case a.Name != "" && !nameRE.MatchString(a.Name):
		return fmt.Errorf("name %q: want lower-case letters, digits, '-' and '_', like card-arrival", a.Name)
	case a.Lang != "" && !langRE.MatchString(a.Lang):
		return fmt.Errorf("lang %q: want a language tag like en or zh", a.Lang)
	}
	if err := canned.Check(a.Answer); err != nil {
		return err
	}
	return nil
}

// ParseCSV reads a CSV knowledge base named file: a header row
// "question,answer" with an optional third column "name", then one row per
// question. Rows with the same name, or without one the same answer, are
// one article; a named article is a canned answer. It returns the articles
// and the rows it skipped (each a *ParseError: no question, no answer, an
// unknown variable...); only a file that is not CSV at all, or has no
// question and answer columns, is an error.
func ParseCSV(file string, r io.Reader) (arts []Article, skipped []error, err error) {
	cr := csv.NewReader(io.LimitReader(r, 64<<20))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, nil, &ParseError{File: file, Line: 1, Msg: "no header row: want question,answer[,name]"}
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))] = i
	}
	qi, okQ := col["question"]
	ai, okA := col["answer"]
	ni, okN := col["name"]
	if !okQ || !okA {
		return nil, nil, &ParseError{File: file, Line: 1, Msg: fmt.Sprintf("header %q: want question,answer[,name]", strings.Join(head, ","))}
	}
	byKey := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err == csv.ErrFieldCount {
				continue
			}
			if errors.As(err, &pe) {
				skipped = append(skipped, &ParseError{File: file, Line: pe.Line, Msg: pe.Err.Error()})
				if len(skipped) > 1000 {
					return arts, skipped, &ParseError{File: file, Line: pe.Line, Msg: "more than 1000 bad rows: is it CSV?"}
				}
				continue
			}
			return arts, skipped, &ParseError{File: file, Msg: err.Error()}
		}
		line, _ := cr.FieldPos(0)
		field := func(i int, ok bool) string {
			if !ok || i >= len(rec) || len(rec[i]) > MaxArticleBytes {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		q, ans, name := field(qi, true), field(ai, true), field(ni, okN)
		bad := func(msg string) { skipped = append(skipped, &ParseError{File: file, Line: line, Msg: msg}) }
		switch {
		case !utf8.ValidString(q) || !utf8.ValidString(ans) || !utf8.ValidString(name):
			bad("not UTF-8 text")
			continue
		case q == "":
			bad("no question")
			continue
		}
		key := "name:" + name
		if name == "" {
			key = "answer:" + ans
		}
		if i, ok := byKey[key]; ok {
			if ans != "" && arts[i].Answer != ans {
				bad(fmt.Sprintf("answer differs from the one of name %q on an earlier row: kept the first", name))
			}
			if len(arts[i].Questions) < MaxQuestions {
				arts[i].Questions = append(arts[i].Questions, q)
			}
			continue
		}
		a := Article{ID: file + ":" + strconv.Itoa(line), Name: name, Questions: []string{q}, Answer: ans}
		if ans == "" {
			bad("no answer")
			continue
		}
		if err := a.check(); err != nil {
			bad(err.Error())
			continue
		}
		byKey[key] = len(arts)
		arts = append(arts, a)
	}
	return arts, skipped, nil
}

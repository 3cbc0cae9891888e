package email

import (
	"io"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxHTMLDepth bounds the nesting HTMLToText tracks, against hostile input; deeper
// blockquotes are quoted as deeply as this.
const maxHTMLDepth = 32

// HTMLToText renders an HTML mail body as readable plain text: block elements
// (p, div, li, tr, headings, ...) end lines, br breaks one, links become
// "text (url)", list items start with "- ", blockquote content is prefixed with
// "> " per level (so StripQuoted recognizes quoted history), an image of the
// mail itself (src="cid:<id>") "[cid:<id>]" as Outlook writes it, and script, style,
// head and the like are dropped. Runs of white space collapse to one space
// except inside pre. The result has no trailing white space on any line and at
// most one blank line in a row.
func HTMLToText(s string) string {
	return htmlToText(strings.NewReader(s))
}

func htmlToText(r io.Reader) string {
	z := html.NewTokenizer(r)
	w := &textWriter{}
	var (
		skip  int     // depth inside elements whose content is dropped
		pre   int     // depth inside pre
		links []*link // open <a> elements
		msoP  []int   // open Outlook paragraphs: the word count at their start
	)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return w.String()
		case html.TextToken:
			if skip > 0 {
				continue
			}
			text := string(z.Text())
			if len(links) > 0 {
				links[len(links)-1].text.WriteString(text)
			}
			w.text(text, pre > 0)
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			end := tt == html.EndTagToken
			if dropped(a) {
				if tt == html.StartTagToken {
					skip++
				} else if end && skip > 0 {
					skip--
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch a {
			case atom.Br:
				w.newline(1)
			case atom.Hr:
				w.newline(1)
				if !end {
					w.text("----", true)
					w.newline(1)
				}
			case atom.Pre:
				w.newline(1)
				if end {
					pre = max(pre-1, 0)
				} else if tt == html.StartTagToken {
					pre++
				}
			case atom.Blockquote:
				w.newline(1)
				if end {
					w.depth = max(w.depth-1, 0)
				} else if tt == html.StartTagToken && w.depth < maxHTMLDepth {
					w.depth++
				}
			case atom.Li:
				w.newline(1)
				if !end {
					w.text("- ", true)
				}
			case atom.Img:
				// An image of the mail itself: Outlook's placeholder, which
				// Normalize names after the attachment.
				if src := strings.TrimSpace(attr(z, hasAttr, "src")); len(src) > 4 && strings.EqualFold(src[:4], "cid:") {
					w.text("[cid:"+src[4:]+"]", false)
				}
			case atom.Td, atom.Th:
				if !end {
					w.text(" ", false)
				}
			case atom.P:
				// Outlook writes every line as <p class=MsoNormal> without margins
				// and a blank line as <p>&nbsp;</p>; elsewhere a paragraph is
				// followed by a blank line.
				switch {
				case tt == html.StartTagToken && strings.Contains(attr(z, hasAttr, "class"), "MsoNormal"):
					msoP = append(msoP, w.words)
					w.newline(1)
				case end && len(msoP) > 0:
					if msoP[len(msoP)-1] == w.words {
						w.blankLine()
					} else {
						w.newline(1)
					}
					msoP = msoP[:len(msoP)-1]
				default:
					w.newline(2)
				}
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table, atom.Ul, atom.Ol, atom.Dl:
				w.newline(2)
			case atom.A:
				switch {
				case tt == html.StartTagToken:
					links = append(links, &link{href: attr(z, hasAttr, "href")})
				case end && len(links) > 0:
					l := links[len(links)-1]
					links = links[:len(links)-1]
					if u := l.target(); u != "" {
						w.text(" ("+u+")", false)
					}
					if len(links) > 0 {
						links[len(links)-1].text.WriteString(l.text.String())
					}
				}
			default:
				if block(a) {
					w.newline(1)
				}
			}
		}
	}
}

// link is an open <a> element: its href and the text seen inside it so far.
type link struct {
	href string
	text strings.Builder
}

// target returns what to print after the link's text: its URL when it is an
// http(s) or mailto link whose text does not already say it.
func (l *link) target() string {
	href := strings.TrimSpace(l.href)
	u, err := url.Parse(href)
	if err != nil || href == "" {
		return ""
	}
	text := strings.TrimSpace(collapse(l.text.String()))
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "mailto":
		addr := strings.TrimPrefix(href[len(u.Scheme)+1:], "//")
		if addr, _, _ = strings.Cut(addr, "?"); strings.EqualFold(addr, text) {
			return ""
		}
		return addr
	default:
		return ""
	}
	if text == "" || text == href || strings.TrimRight(text, "/") == strings.TrimRight(href, "/") ||
		strings.TrimPrefix(strings.TrimPrefix(href, "https://"), "http://") == strings.TrimRight(text, "/") {
		if text == "" {
			return href
		}
		return ""
	}
	return href
}

// attr returns the value of the current tag's attribute key.
func attr(z *html.Tokenizer, more bool, key string) string {
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		if string(k) == key {
			return string(v)
		}
	}
	return ""
}

// dropped reports whether an element's content is not text a reader sees.
func dropped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Noscript, atom.Template, atom.Svg, atom.Object, atom.Iframe, atom.Select, atom.Textarea:
		return true
	}
	return false
}

// block reports whether an element starts and ends a line.
func block(a atom.Atom) bool {
	switch a {
	case atom.Div, atom.Tr, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Nav, atom.Aside, atom.Main,
		atom.Address, atom.Center, atom.Form, atom.Fieldset, atom.Figure, atom.Figcaption, atom.Dt, atom.Dd,
		atom.Caption, atom.Thead, atom.Tbody, atom.Tfoot, atom.Body, atom.Html, atom.Details, atom.Summary, atom.Legend:
		return true
	}
	return false
}

// textWriter builds the text: it collapses white space, holds back newlines
// until text follows (so several block ends make one break) and prefixes
// quoted lines.
type textWriter struct {
	b       strings.Builder
	line    strings.Builder // the current line, without its quote prefix
	depth   int             // blockquote depth of the current line
	lineDep int             // depth the current line started at
	pending int             // newlines requested before the next text
	space   bool            // a collapsed space is due before the next word
	lines   int             // lines written so far
	blank   bool            // the last line written was blank
	words   int             // words written so far
}

// blankLine asks for an empty line, even after other line ends.
func (w *textWriter) blankLine() {
	if w.line.Len() == 0 && w.lines == 0 {
		return
	}
	if w.pending >= 1 && w.line.Len() == 0 {
		w.pending = 2
		return
	}
	w.pending = 2
	w.space = false
}

// newline asks for n line ends (1: end the line, 2: and a blank line) before
// whatever text comes next.
func (w *textWriter) newline(n int) {
	if w.line.Len() == 0 && w.lines == 0 {
		return
	}
	w.pending = max(w.pending, n)
	w.space = false
}

// text writes s; unless verbatim, white space runs collapse to one space.
func (w *textWriter) text(s string, verbatim bool) {
	if verbatim {
		for i, part := range strings.Split(s, "\n") {
			if i > 0 {
				w.flush(1)
			}
			if part != "" {
				w.word(strings.TrimRight(part, "\r"))
			}
		}
		return
	}
	for s != "" {
		if r, _ := utf8.DecodeRuneInString(s); isSpace(r) {
			i := strings.IndexFunc(s, func(r rune) bool { return !isSpace(r) })
			if i < 0 {
				i = len(s)
			}
			w.space = true
			s = s[i:]
			continue
		}
		i := strings.IndexFunc(s, isSpace)
		if i < 0 {
			i = len(s)
		}
		if w.space && w.line.Len() > 0 && w.pending == 0 {
			w.line.WriteByte(' ')
		}
		w.space = false
		w.word(s[:i])
		s = s[i:]
	}
}

// isSpace reports white space, the no-break space included (HTML mail is full
// of &nbsp; used as plain space).
func isSpace(r rune) bool { return unicode.IsSpace(r) || r == '\u00a0' }

// word appends text to the current line, first ending lines as pending.
func (w *textWriter) word(s string) {
	if w.pending > 0 {
		w.flush(w.pending)
		w.pending = 0
	}
	if w.line.Len() == 0 {
		w.lineDep = w.depth
	}
	w.words++
	w.line.WriteString(s)
}

// flush ends the current line and, for n == 2, adds a blank line.
func (w *textWriter) flush(n int) {
	w.emit()
	if n >= 2 {
		w.emitBlank()
	}
}

func (w *textWriter) emit() {
	line := strings.TrimRightFunc(w.line.String(), unicode.IsSpace)
	w.line.Reset()
	if line == "" {
		w.emitBlank()
		return
	}
	if w.lines > 0 {
		w.b.WriteByte('\n')
	}
	w.b.WriteString(strings.Repeat("> ", w.lineDep))
	w.b.WriteString(line)
	w.lines++
	w.blank = false
}

func (w *textWriter) emitBlank() {
	if w.blank || w.lines == 0 {
		return
	}
	w.b.WriteByte('\n')
	if w.lineDep > 0 && w.depth > 0 {
		w.b.WriteString(strings.TrimRight(strings.Repeat("> ", min(w.lineDep, w.depth)), " "))
	}
	w.lines++
	w.blank = true
}

// String returns the text written so far.
func (w *textWriter) String() string {
	if w.line.Len() > 0 {
		w.emit()
	}
	return strings.TrimSpace(w.b.String())
}

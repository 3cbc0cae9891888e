// Package markdown is the one rich-text format desks write replies in and
// channels render: a small, safe subset of CommonMark (with GitHub's
// ~~strikethrough~~), in which every line break is kept, as chat users expect.
//
// Blocks: paragraphs, fenced code blocks (```), block quotes (> ), bullet
// lists (- , * , + ) and ordered lists (1. ), headings (# ) shown as strong
// lines. Inlines: **strong** (and __strong__), *emphasis* (and _emphasis_),
// ~~strikethrough~~, `code`, [links](https://...) and <https://autolinks>;
// a backslash escapes the next punctuation character. Anything else is text.
// Raw HTML is text too: nothing a desk writes reaches a customer as markup
// it did not mean.
//
// Parse gives the tree a channel with its own format walks (Telegram's
// MarkdownV2); Plain, HTML and WhatsApp render the common ones.
package markdown

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what a Node is.
type Kind uint8

// The kinds of Node. Blocks hold blocks or inlines; inlines hold inlines,
// except Text, Code and Break.
const (
	// Paragraph is a block of inlines.
	Paragraph Kind = iota
	// Heading is a block of inlines shown as a title; Level is 1 to 6.
	Heading
	// CodeBlock is preformatted Text (a fenced block); Info is its language.
	CodeBlock
	// Quote holds blocks.
	Quote
	// List holds Items; Ordered says whether they are numbered, from Start.
	List
	// Item holds blocks.
	Item
	// Text is literal Text.
	Text
	// Strong, Emph and Strike hold inlines.
	Strong
	Emph
	Strike
	// Code is literal Text shown as code.
	Code
	// Link holds inlines shown as a link to URL.
	Link
	// Break is a line break inside a block.
	Break
)

// Node is one piece of a parsed text.
type Node struct {
	Kind     Kind
	Text     string
	URL      string
	Info     string
	Level    int
	Ordered  bool
	Start    int
	Children []Node
}

// maxDepth bounds nesting (quotes in quotes, emphasis in emphasis), and
// maxSpan how far a link or code span looks for its end, against hostile
// input.
const (
	maxDepth = 16
	maxSpan  = 2000
)

// Parse reads text as markdown. It never fails: what is not markup is text.
func Parse(text string) []Node {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	return parseBlocks(strings.Split(text, "\n"), 0)
}

// parseBlocks parses lines into blocks.
func parseBlocks(lines []string, depth int) []Node {
	var out []Node
	var para []string
	flush := func() {
		if len(para) > 0 {
			out = append(out, Node{Kind: Paragraph, Children: parseInlines(strings.Join(para, "\n"), depth)})
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case indent < 4 && strings.HasPrefix(trimmed, "```"):
			flush()
			info := strings.TrimSpace(strings.Trim(trimmed, "`"))
			var body []string
			j := i + 1
			for ; j < len(lines); j++ {
				if strings.HasPrefix(strings.TrimLeft(lines[j], " "), "```") {
					break
				}
				body = append(body, lines[j])
			}
			out = append(out, Node{Kind: CodeBlock, Info: info, Text: strings.Join(body, "\n")})
			i = j // the closing fence, or the end
		case indent < 4 && isQuote(trimmed) && depth < maxDepth:
			flush()
			var body []string
			j := i
			for ; j < len(lines) && isQuote(strings.TrimLeft(lines[j], " ")); j++ {
				q := strings.TrimPrefix(strings.TrimLeft(lines[j], " "), ">")
				body = append(body, strings.TrimPrefix(q, " "))
			}
			out = append(out, Node{Kind: Quote, Children: parseBlocks(body, depth+1)})
			i = j - 1
		case indent < 4 && heading(trimmed) > 0:
			flush()
			lvl := heading(trimmed)
			out = append(out, Node{Kind: Heading, Level: lvl, Children: parseInlines(strings.TrimSpace(trimmed[lvl:]), depth)})
		default:
			if _, _, _, ok := listMarker(trimmed); ok && indent < 4 && depth < maxDepth {
				flush()
				var list Node
				i, list = parseList(lines, i, depth)
				out = append(out, list)
				continue
			}
			para = append(para, strings.TrimSpace(line))
		}
	}
	flush()
	return out
}

func isQuote(s string) bool { return strings.HasPrefix(s, ">") }

// heading returns the level of an ATX heading line, 0 if it is none.
func heading(s string) int {
	n := 0
	for n < len(s) && s[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || (n < len(s) && s[n] != ' ') {
		return 0
	}
	return n
}

// listMarker reads a list item's marker at the start of s: ordered, the
// number of an ordered one, and the length of the marker with its space.
func listMarker(s string) (ordered bool, num, width int, ok bool) {
	if len(s) >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ' {
		if s[0] != '-' && strings.Trim(s, "*+ ") == "" {
			return false, 0, 0, false
		}
		return false, 0, 2, true
	}
	d := 0
	for d < len(s) && d < 9 && s[d] >= '0' && s[d] <= '9' {
		num = num*10 + int(s[d]-'0')
		d++
	}
	if d > 0 && d+1 < len(s) && (s[d] == '.' || s[d] == ')') && s[d+1] == ' ' {
		return true, num, d + 2, true
	}
	return false, 0, 0, false
}

// parseList parses the list starting at lines[i]; it returns the index of the
// first line after it.
func parseList(lines []string, i, depth int) (int, Node) {
	first := strings.TrimLeft(lines[i], " ")
	ordered, start, _, _ := listMarker(first)
	list := Node{Kind: List, Ordered: ordered, Start: start}
	for i < len(lines) {
		t := strings.TrimLeft(lines[i], " ")
		o, _, w, ok := listMarker(t)
		if !ok || o != ordered {
			break
		}
		body := []string{t[w:]}
		i++
		// Continuation lines: indented, not a new item, not blank.
		for i < len(lines) && strings.HasPrefix(lines[i], "  ") && strings.TrimSpace(lines[i]) != "" {
			if _, _, _, ok := listMarker(strings.TrimLeft(lines[i], " ")); ok {
				break
			}
			body = append(body, strings.TrimSpace(lines[i]))
			i++
		}
		list.Children = append(list.Children, Node{Kind: Item, Children: parseBlocks(body, depth+1)})
	}
	return i, list
}

// parseInlines parses the inlines of a block's text.
func parseInlines(s string, depth int) []Node {
	var out []Node
	// noCloser remembers, per delimiter, a position after which a scan found
	// no closer: later openers need not scan again, which keeps parsing
	// linear in the text.
	noCloser := map[string]int{}
	var text strings.Builder
	emit := func(n Node) {
		if text.Len() > 0 {
			out = append(out, Node{Kind: Text, Text: text.String()})
			text.Reset()
		}
		out = append(out, n)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isPunct(s[i+1]):
			text.WriteByte(s[i+1])
			i += 2
			continue
		case c == '\n':
			emit(Node{Kind: Break})
			i++
			continue
		case c == '`':
			n := run(s, i, '`')
			if end := strings.Index(s[i+n:min(len(s), i+n+maxSpan)], strings.Repeat("`", n)); end >= 0 {
				code := s[i+n : i+n+end]
				if len(code) > 2 && code[0] == ' ' && code[len(code)-1] == ' ' {
					code = code[1 : len(code)-1]
				}
				emit(Node{Kind: Code, Text: code})
				i += n + end + n
				continue
			}
			text.WriteString(s[i : i+n])
			i += n
			continue
		case c == '<':
			if end := strings.IndexByte(s[i:min(len(s), i+maxSpan)], '>'); end > 0 {
				if u := s[i+1 : i+end]; isURL(u) && !strings.ContainsAny(u, " <") {
					emit(Node{Kind: Link, URL: u, Children: []Node{{Kind: Text, Text: u}}})
					i += end + 1
					continue
				}
			}
		case c == '[' && depth < maxDepth:
			if label, url, n, ok := linkAt(s[i:]); ok {
				emit(Node{Kind: Link, URL: url, Children: parseInlines(label, depth+1)})
				i += n
				continue
			}
		case (c == '*' || c == '_' || c == '~') && depth < maxDepth:
			if n, kind, inner, ok := emphasisAt(s, i, noCloser); ok {
				emit(Node{Kind: kind, Children: parseInlines(inner, depth+1)})
				i += n
				continue
			}
		}
		text.WriteByte(c)
		i++
	}
	if text.Len() > 0 {
		out = append(out, Node{Kind: Text, Text: text.String()})
	}
	return out
}

// run counts the bytes c starting at s[i].
func run(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// emphasisAt reads **x**, __x__, *x*, _x_ or ~~x~~ at s[i]: the bytes it
// spans, its kind and its content. An opener must be followed, and a closer
// preceded, by a non-space; _ does not work inside words (snake_case).
func emphasisAt(s string, i int, noCloser map[string]int) (n int, kind Kind, inner string, ok bool) {
	c := s[i]
	width := min(run(s, i, c), 2)
	switch {
	case c == '~' && width == 2:
		kind = Strike
	case c == '~':
		return 0, 0, "", false
	case width == 2:
		kind = Strong
	default:
		kind = Emph
	}
	open := i + width
	if open >= len(s) || s[open] == ' ' || s[open] == '\n' {
		return 0, 0, "", false
	}
	if c == '_' && i > 0 && wordByte(s, i-1) {
		return 0, 0, "", false
	}
	delim := strings.Repeat(string(c), width)
	if p, ok := noCloser[delim]; ok && p <= open {
		return 0, 0, "", false
	}
	for j := open + 1; j+width <= len(s); j++ {
		if s[j-1] == '\\' {
			continue
		}
		if s[j:j+width] != delim || s[j-1] == ' ' || s[j-1] == '\n' {
			continue
		}
		if width == 1 && j+1 < len(s) && s[j+1] == c {
			j++ // part of a longer run: not this closer
			continue
		}
		if c == '_' && j+width < len(s) && wordByte(s, j+width) {
			continue
		}
		return j + width - i, kind, s[open:j], true
	}
	noCloser[delim] = open
	return 0, 0, "", false
}

// wordByte reports whether the rune around s[i] is a letter or digit.
func wordByte(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		r, _ = utf8.DecodeLastRuneInString(s[:i+1])
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// linkAt reads [label](url) at the start of s.
func linkAt(s string) (label, url string, n int, ok bool) {
	depth := 0
	for i := 0; i < min(len(s), maxSpan); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				if i+1 >= len(s) || s[i+1] != '(' {
					return "", "", 0, false
				}
				end := strings.IndexByte(s[i+2:min(len(s), i+2+maxSpan)], ')')
				if end < 0 {
					return "", "", 0, false
				}
				u := strings.TrimSpace(s[i+2 : i+2+end])
				if !isURL(u) || strings.ContainsAny(u, " \n") {
					return "", "", 0, false
				}
				return s[1:i], u, i + 3 + end, true
			}
		case '\n':
			return "", "", 0, false
		}
	}
	return "", "", 0, false
}

// isURL reports whether u is an absolute URL a customer may be sent to:
// http, https or mailto. Anything else (javascript:, data:) stays text.
func isURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "mailto:")
}

func isPunct(c byte) bool {
	return c < 0x80 && unicode.IsPunct(rune(c)) || c == '`' || c == '~' || c == '<' || c == '>' || c == '+' || c == '=' || c == '|' || c == '^' || c == '$'
}

// PlainText returns the text of inline nodes, without any markup.
func PlainText(nodes []Node) string {
	var b strings.Builder
	var walk func(ns []Node)
	walk = func(ns []Node) {
		for _, n := range ns {
			switch n.Kind {
			case Text, Code:
				b.WriteString(n.Text)
			case Break:
				b.WriteByte('\n')
			default:
				walk(n.Children)
			}
		}
	}
	walk(nodes)
	return b.String()
}

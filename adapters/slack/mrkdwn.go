package slack

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core/markdown"
)

// ConvertMrkdwn turns text in Slack's mrkdwn, as Slack delivers an agent's
// message, into the one format desks hand to channels: CommonMark as
// core/markdown reads it, which each channel renders its own way. *bold*
// becomes **bold**, _italic_ _italic_, ~strike~ ~~strike~~, `code` and
// ```pre``` stay, <url|label> becomes [label](url), quotes "> "; every other
// character is text (escaped where markdown would read it as markup).
//
// Slack's entities (&amp; &lt; &gt;) are decoded; user mentions become
// "@name" (<@U123|name>; a bare <@U123> keeps the id, so resolve names
// first), channels "#name", <!here> "@here", user groups their handle, dates
// their fallback text. Formatting that is not closed on the same line stays
// as written, as Slack shows it.
func ConvertMrkdwn(text string) string {
	var b strings.Builder
	render(&b, parseMrkdwn(text))
	return b.String()
}

// nodeKind is what a piece of parsed mrkdwn is.
type nodeKind uint8

const (
	nText nodeKind = iota
	nBold
	nItalic
	nStrike
	nCode
	nPre
	nLink
	nQuote
	nBreak
)

// node is one piece of parsed mrkdwn: text (decoded), a style around kids, a
// link with its url, a quote of kids, or a line break.
type node struct {
	kind nodeKind
	text string
	url  string
	kids []node
}

// maxMrkdwnDepth bounds how deeply styles nest, and maxSpan how far the end
// of a style, code or <...> token is looked for, so that parsing hostile input
// stays linear.
const (
	maxMrkdwnDepth = 8
	maxSpan        = 2048
)

// ahead is at most maxSpan bytes of s after i.
func ahead(s string, i int) string {
	return s[i+1 : min(len(s), i+1+maxSpan)]
}

// parseMrkdwn splits text into ``` blocks, quoted lines and inline runs.
func parseMrkdwn(text string) []node {
	var out []node
	for text != "" {
		start := strings.Index(text, "```")
		if start < 0 {
			out = append(out, parseLines(text)...)
			break
		}
		end := strings.Index(text[start+3:], "```")
		if end < 0 {
			out = append(out, parseLines(text)...)
			break
		}
		end += start + 3
		if start > 0 {
			out = append(out, parseLines(text[:start])...)
		}
		code := strings.Trim(text[start+3:end], "\n")
		out = append(out, node{kind: nPre, text: decodeEntities(code)})
		text = text[end+3:]
	}
	return out
}

// parseLines parses text outside code blocks: runs of lines starting with
// "&gt;" (Slack's "> ") are quotes; other lines are inline text.
func parseLines(text string) []node {
	var out []node
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); {
		if i > 0 {
			out = append(out, node{kind: nBreak})
		}
		if _, ok := quoted(lines[i]); !ok {
			out = append(out, parseInline(lines[i], 0)...)
			i++
			continue
		}
		var kids []node
		for start := i; i < len(lines); i++ {
			q, ok := quoted(lines[i])
			if !ok {
				break
			}
			if i > start {
				kids = append(kids, node{kind: nBreak})
			}
			kids = append(kids, parseInline(q, 0)...)
		}
		out = append(out, node{kind: nQuote, kids: kids})
	}
	return out
}

// quoted reports whether line is a quote line and returns its content.
func quoted(line string) (string, bool) {
	for _, p := range []string{"&gt; ", "&gt;", "> "} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			return rest, true
		}
	}
	return "", false
}

// parseInline parses one line: <...> specials, `code`, *bold*, _italic_,
// ~strike~ and entities.
func parseInline(s string, depth int) []node {
	var out []node
	var buf strings.Builder
	flush := func() {
		if buf.Len() > 0 {
			out = append(out, node{kind: nText, text: buf.String()})
			buf.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '<':
			if j := strings.IndexByte(ahead(s, i), '>'); j >= 0 && !strings.ContainsAny(s[i+1:i+1+j], "<\n") {
				if n, ok := special(s[i+1 : i+1+j]); ok {
					flush()
					out = append(out, n)
					i += j + 2
					continue
				}
			}
		case '&':
			if r, n := entity(s[i:]); n > 0 {
				buf.WriteString(r)
				i += n
				continue
			}
		case '`':
			if j := strings.IndexByte(ahead(s, i), '`'); j > 0 {
				flush()
				out = append(out, node{kind: nCode, text: decodeEntities(s[i+1 : i+1+j])})
				i += j + 2
				continue
			}
		case '*', '_', '~':
			if depth < maxMrkdwnDepth && canOpen(s, i) {
				if j := closing(s, i); j > 0 {
					flush()
					out = append(out, node{kind: styleOf(c), kids: parseInline(s[i+1:j], depth+1)})
					i = j + 1
					continue
				}
			}
		}
		buf.WriteByte(c)
		i++
	}
	flush()
	return out
}

// styleOf is the style marker c stands for.
func styleOf(c byte) nodeKind {
	switch c {
	case '*':
		return nBold
	case '_':
		return nItalic
	}
	return nStrike
}

// canOpen reports whether the marker at s[i] may open a style: at the start or
// after a non-word character, and followed by a non-space.
func canOpen(s string, i int) bool {
	if i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == s[i] {
		return false
	}
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !wordRune(r)
}

// closing finds the marker closing the one at s[i]: the next same marker after
// a non-space and before a non-word character or the end; -1 if none.
func closing(s string, i int) int {
	c := s[i]
	for j := i + 2; j < len(s) && j <= i+maxSpan; j++ {
		if s[j] != c || s[j-1] == ' ' {
			continue
		}
		if j+1 == len(s) {
			return j
		}
		if r, _ := utf8.DecodeRuneInString(s[j+1:]); !wordRune(r) {
			return j
		}
	}
	return -1
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// special turns the inside of <...> into a node: a mention, a channel, a
// special command or a link. Anything else is no markup (Slack escapes a
// literal '<'), and ok is false.
func special(tok string) (n node, ok bool) {
	target, label, hasLabel := strings.Cut(tok, "|")
	label = decodeEntities(label)
	text := func(s string) (node, bool) { return node{kind: nText, text: s}, true }
	switch {
	case strings.HasPrefix(target, "@"):
		if hasLabel && label != "" {
			return text("@" + strings.TrimPrefix(label, "@"))
		}
		return text(target)
	case strings.HasPrefix(target, "#"):
		if hasLabel && label != "" {
			return text("#" + strings.TrimPrefix(label, "#"))
		}
		return text(target)
	case strings.HasPrefix(target, "!"):
		cmd, _, _ := strings.Cut(target[1:], "^")
		switch {
		case hasLabel && label != "":
			return text(label)
		case cmd == "here" || cmd == "channel" || cmd == "everyone":
			return text("@" + cmd)
		}
		return text("")
	}
	u := decodeEntities(target)
	if !linkRE.MatchString(u) {
		return node{}, false
	}
	if addr, ok := strings.CutPrefix(u, "mailto:"); ok && (!hasLabel || label == addr) {
		return node{kind: nLink, url: u, text: addr}, true
	}
	if !hasLabel {
		label = u
	}
	return node{kind: nLink, url: u, text: label}, true
}

// linkRE is a link target as Slack writes them: a URL with a scheme.
var linkRE = regexp.MustCompile(`^(?i)(https?://|mailto:|tel:|ftp://)\S+$`)

// entity decodes the Slack entity at the start of s and returns it and its
// length, or 0 when s does not start with one.
func entity(s string) (string, int) {
	for _, e := range [...]struct{ name, r string }{{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", `"`}, {"&#39;", "'"}} {
		if strings.HasPrefix(s, e.name) {
			return e.r, len(e.name)
		}
	}
	return "", 0
}

// decodeEntities replaces Slack's entities in s.
func decodeEntities(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if r, n := entity(s[i:]); n > 0 {
			b.WriteString(r)
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// render writes nodes as markdown.
func render(b *strings.Builder, nodes []node) {
	for _, n := range nodes {
		switch n.kind {
		case nText:
			b.WriteString(markdown.Escape(n.text))
		case nBreak:
			b.WriteByte('\n')
		case nBold:
			wrap(b, n, "**")
		case nItalic:
			wrap(b, n, "_")
		case nStrike:
			wrap(b, n, "~~")
		case nCode:
			fence := "`"
			if strings.Contains(n.text, "`") {
				fence = "``"
			}
			b.WriteString(fence + n.text + fence)
		case nPre:
			b.WriteString("```\n" + n.text + "\n```")
		case nLink:
			link(b, n)
		case nQuote:
			var q strings.Builder
			render(&q, n.kids)
			for i, line := range strings.Split(q.String(), "\n") {
				if i > 0 {
					b.WriteByte('\n')
				}
				b.WriteString("> " + line)
			}
		}
	}
}

// wrap writes a bold, italic or strike node between its delimiters.
func wrap(b *strings.Builder, n node, delim string) {
	b.WriteString(delim)
	render(b, n.kids)
	b.WriteString(delim)
}

// link writes a link node: an autolink when its label is its address.
func link(b *strings.Builder, n node) {
	u := strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", ">", "%3E", "<", "%3C").Replace(n.url)
	if n.text == n.url {
		b.WriteString("<" + u + ">")
		return
	}
	b.WriteString("[" + markdown.Escape(n.text) + "](" + u + ")")
}

package telegram

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core/markdown"
)

// MaxMessageLength is the longest text Telegram accepts in one message: 4,096
// characters after entity parsing. Render counts UTF-16 code units, as
// Telegram's entity offsets do, and counts the MarkdownV2 markup too, so its
// pieces are within the limit however Telegram counts.
const MaxMessageLength = 4096

// markdownV2Specials are the characters MarkdownV2 reserves outside code and
// links, as listed in the Bot API documentation ("Formatting options").
const markdownV2Specials = "_*[]()~`>#+-=|{}.!"

// EscapeMarkdownV2 escapes s for MarkdownV2 text outside code and link URLs:
// every character of _ * [ ] ( ) ~ ` > # + - = | { } . ! and the backslash
// itself gets a preceding backslash, so Telegram shows s literally.
func EscapeMarkdownV2(s string) string {
	return escape(s, func(c byte) bool { return c == '\\' || strings.IndexByte(markdownV2Specials, c) >= 0 })
}

// escapeCode escapes the inside of a code or pre entity: ` and \.
func escapeCode(s string) string {
	return escape(s, func(c byte) bool { return c == '`' || c == '\\' })
}

// escapeURL escapes the URL of an inline link: ) and \.
func escapeURL(s string) string {
	return escape(s, func(c byte) bool { return c == ')' || c == '\\' })
}

// escape puts a backslash before every byte of s that special reports. The
// reserved characters are all ASCII, so working on bytes leaves UTF-8 intact.
func escape(s string, special func(byte) bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if special(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + n)
	for i := 0; i < len(s); i++ {
		if special(s[i]) {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// style is the formatting of a run of text.
type style uint8

const (
	stylePlain style = iota
	styleBold
	styleItalic
	styleStrike
	styleCode
	stylePre
	styleLink
)

// run is a stretch of text with one style; url is a link's target, lang a pre
// block's language.
type run struct {
	style style
	text  string
	url   string
	lang  string
}

// Render turns text into the texts of the Telegram messages that carry it,
// each at most MaxMessageLength. Plain text (markdown false) is sent as is.
// With markdown it is what desks write (CommonMark, core/markdown) converted
// to MarkdownV2: **bold**, *italic*, ~~strike~~, `code`, fenced blocks as pre,
// [text](https://...); quotes and lists keep their markers; entities do not
// nest (the innermost wins); anything else is escaped and shown as written. Long text is split between paragraphs, else lines, else words,
// never inside a character (nor its UTF-16 surrogate pair), an emoji sequence
// or an escape; formatting cut by a split is closed and reopened.
func Render(text string, markdown bool) []string {
	var out []string
	for _, c := range render(text, markdown, MaxMessageLength) {
		out = append(out, c.text)
	}
	return out
}

// chunk is one message: text as sent, and plain, what the customer sees,
// for sending again without formatting if Telegram refuses the markup.
type chunk struct {
	text  string
	plain string
}

// render splits text into messages of at most limit UTF-16 units.
func render(text string, markdown bool, limit int) []chunk {
	runs := []run{{text: text}}
	if markdown {
		runs = parseMarkdown(text)
	}
	var out []chunk
	for _, piece := range split(runs, markdown, limit) {
		var sent, plain strings.Builder
		for _, r := range piece {
			plain.WriteString(r.text)
			if markdown {
				sent.WriteString(renderRun(r))
			} else {
				sent.WriteString(r.text)
			}
		}
		if strings.TrimSpace(plain.String()) == "" {
			continue // Telegram refuses an empty message
		}
		out = append(out, chunk{text: sent.String(), plain: plain.String()})
	}
	return out
}

// renderRun writes r as MarkdownV2.
func renderRun(r run) string {
	switch r.style {
	case styleBold:
		return "*" + EscapeMarkdownV2(r.text) + "*"
	case styleItalic:
		return "_" + EscapeMarkdownV2(r.text) + "_"
	case styleStrike:
		return "~" + EscapeMarkdownV2(r.text) + "~"
	case styleCode:
		return "`" + escapeCode(r.text) + "`"
	case stylePre:
		return "```" + r.lang + "\n" + escapeCode(r.text) + "```"
	case styleLink:
		return "[" + EscapeMarkdownV2(r.text) + "](" + escapeURL(r.url) + ")"
	}
	return EscapeMarkdownV2(r.text)
}

// overhead is the length of r's markup besides its text, in UTF-16 units.
func overhead(r run) int {
	switch r.style {
	case styleBold, styleItalic, styleStrike, styleCode:
		return 2
	case stylePre:
		return 7 + len(r.lang)
	case styleLink:
		return 4 + utf16Len(escapeURL(r.url))
	}
	return 0
}

// cost is the length of rune c of run r once rendered, in UTF-16 units.
func cost(r *run, c rune, markdown bool) int {
	n := utf16.RuneLen(c)
	if n < 0 {
		n = 1 // invalid UTF-8 travels as U+FFFD
	}
	if !markdown || c >= utf8.RuneSelf {
		return n
	}
	switch r.style {
	case styleCode, stylePre:
		if c == '`' || c == '\\' {
			return 2
		}
	default:
		if c == '\\' || strings.IndexRune(markdownV2Specials, c) >= 0 {
			return 2
		}
	}
	return 1
}

func utf16Len(s string) int {
	n := 0
	for _, c := range s {
		if c >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// unit is one character of the text being split: its run and its place there.
type unit struct {
	run  int
	off  int // byte offset in the run's text
	size int
	c    rune
}

// split cuts runs into pieces whose rendering fits limit.
func split(runs []run, markdown bool, limit int) [][]run {
	var us []unit
	for i, r := range runs {
		for off, c := range r.text {
			us = append(us, unit{run: i, off: off, size: utf8.RuneLen(c), c: c})
			if c == utf8.RuneError {
				us[len(us)-1].size = runeSize(r.text[off:])
			}
		}
	}
	var out [][]run
	for start := 0; start < len(us); {
		end, total, last := start, 0, -1
		for end < len(us) {
			u := us[end]
			c := cost(&runs[u.run], u.c, markdown)
			if markdown && u.run != last {
				c += overhead(runs[u.run])
			}
			if total+c > limit {
				break
			}
			total += c
			last = u.run
			end++
		}
		if end == start {
			end = start + 1 // cannot happen with the limits parseMarkdown keeps; never loop forever
		}
		stop, next := end, end
		if end < len(us) {
			stop, next = cutAt(us, start, end)
		}
		out = append(out, slice(runs, us, start, stop))
		start = next
	}
	return out
}

// runeSize is the byte length of the first rune of s, 1 for an invalid byte.
func runeSize(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// cutAt picks where the piece us[start:end] (which fits, while us[start:end+1]
// does not) ends: the last paragraph break in its second half, else the last
// line break there, else the last space, else the last place that does not
// cut an emoji sequence or a combining mark off its base. It returns the end
// of the piece and the start of the next one; a break between them is dropped.
func cutAt(us []unit, start, end int) (stop, next int) {
	half := start + (end-start)/2
	for i := end; i > half; i-- {
		if us[i].c == '\n' && i+1 < len(us) && us[i+1].c == '\n' {
			next = i
			for next < len(us) && us[next].c == '\n' {
				next++
			}
			return i, next
		}
	}
	for i := end; i > half; i-- {
		if us[i].c == '\n' {
			return i, i + 1
		}
	}
	for i := end; i > start; i-- {
		if us[i].c == ' ' || us[i].c == '\t' || us[i].c == '\u3000' {
			return i, i + 1
		}
	}
	for i, n := end, 0; i > start+1 && n < 32; i, n = i-1, n+1 {
		if !joined(us[i-1].c, us[i].c) {
			return i, i
		}
	}
	return end, end
}

// joined reports whether a and b belong to one user-perceived character, so
// that a cut between them would show a broken emoji or a lone accent.
func joined(a, b rune) bool {
	switch {
	case a == '\u200d' || b == '\u200d': // zero-width joiner sequences
		return true
	case b >= 0xfe00 && b <= 0xfe0f, b >= 0xe0100 && b <= 0xe01ef: // variation selectors
		return true
	case b >= 0x1f3fb && b <= 0x1f3ff: // skin tones
		return true
	case b >= 0xe0020 && b <= 0xe007f: // tag sequences (subdivision flags)
		return true
	case isRegional(a) && isRegional(b): // flags
		return true
	case a == '\r' && b == '\n':
		return true
	case unicode.In(b, unicode.Mn, unicode.Me, unicode.Mc):
		return true
	}
	return false
}

func isRegional(c rune) bool { return c >= 0x1f1e6 && c <= 0x1f1ff }

// slice returns the runs covering us[start:stop].
func slice(runs []run, us []unit, start, stop int) []run {
	var out []run
	for i := start; i < stop; {
		j := i
		for j < stop && us[j].run == us[i].run {
			j++
		}
		r := runs[us[i].run]
		last := us[j-1]
		r.text = r.text[us[i].off : last.off+last.size]
		out = append(out, r)
		i = j
	}
	return out
}

// maxLinkURL keeps one link's markup far below MaxMessageLength.
const maxLinkURL = 2048

var langRE = regexp.MustCompile(`^[A-Za-z0-9_+#-]{1,32}$`)

// parseMarkdown reads CommonMark (core/markdown) into runs. MarkdownV2's
// entities do not nest: a run takes the style of its innermost markup, and
// quotes and lists are written with their "> " and "- " markers.
func parseMarkdown(s string) []run {
	var p mdRuns
	for i, n := range markdown.Parse(s) {
		if i > 0 {
			p.add(run{text: "\n\n"})
		}
		p.block(n, "")
	}
	return p.runs
}

// mdRuns collects the runs of a parsed text.
type mdRuns struct {
	runs []run
}

// add appends r, merging it into the previous run when they look the same:
// two italic runs side by side would render as "_a__b_", which Telegram reads
// as underline.
func (p *mdRuns) add(r run) {
	if r.text == "" {
		return
	}
	if n := len(p.runs); n > 0 {
		prev := &p.runs[n-1]
		if prev.style == r.style && prev.url == r.url && prev.lang == r.lang && r.style != stylePre {
			prev.text += r.text
			return
		}
	}
	p.runs = append(p.runs, r)
}

// block adds block n; prefix starts each of its lines (quotes).
func (p *mdRuns) block(n markdown.Node, prefix string) {
	switch n.Kind {
	case markdown.CodeBlock:
		lang := ""
		if langRE.MatchString(n.Info) {
			lang = n.Info
		}
		if n.Text != "" {
			p.add(run{style: stylePre, text: n.Text, lang: lang})
		}
	case markdown.Quote:
		for i, c := range n.Children {
			if i > 0 {
				p.add(run{text: "\n" + prefix + ">\n"})
			}
			p.add(run{text: prefix + "> "})
			p.block(c, prefix+"> ")
		}
	case markdown.List:
		for i, item := range n.Children {
			if i > 0 {
				p.add(run{text: "\n" + prefix})
			}
			marker := "- "
			if n.Ordered {
				marker = strconv.Itoa(n.Start+i) + ". "
			}
			p.add(run{text: marker})
			for j, c := range item.Children {
				if j > 0 {
					p.add(run{text: "\n" + prefix + "   "})
				}
				p.block(c, prefix+"   ")
			}
		}
	case markdown.Heading:
		p.inlines(n.Children, styleBold, prefix)
	default:
		p.inlines(n.Children, stylePlain, prefix)
	}
}

// inlines adds inline nodes in style st (the innermost markup wins).
func (p *mdRuns) inlines(nodes []markdown.Node, st style, prefix string) {
	for _, n := range nodes {
		switch n.Kind {
		case markdown.Text:
			p.add(run{style: st, text: n.Text})
		case markdown.Break:
			p.add(run{text: "\n" + prefix})
		case markdown.Code:
			p.add(run{style: styleCode, text: n.Text})
		case markdown.Strong:
			p.inlines(n.Children, styleBold, prefix)
		case markdown.Emph:
			p.inlines(n.Children, styleItalic, prefix)
		case markdown.Strike:
			p.inlines(n.Children, styleStrike, prefix)
		case markdown.Link:
			label := markdown.PlainText(n.Children)
			if linkable(n.URL) && label != "" {
				p.add(run{style: styleLink, text: label, url: n.URL})
			} else {
				p.add(run{style: st, text: markdown.PlainText([]markdown.Node{n})})
			}
		}
	}
}

// linkable reports whether target can be an inline link's URL: absolute,
// http(s), mailto or tg, without spaces, and short.
func linkable(target string) bool {
	if target == "" || len(target) > maxLinkURL || strings.ContainsAny(target, " \t\n<>") {
		return false
	}
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "mailto", "tg":
		return true
	}
	return false
}

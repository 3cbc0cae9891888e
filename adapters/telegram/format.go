package telegram

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
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
// With markdown it is the agent desk's markdown, converted to MarkdownV2:
// *bold* or **bold**, _italic_, ~strike~ or ~~strike~~, `code`, ```pre```,
// [text](https://...) and <https://...|text>; entities do not nest and do not
// span lines (pre blocks excepted), anything else is escaped and shown as
// written. Long text is split between paragraphs, else lines, else words,
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

// Limits that keep one run's markup far below MaxMessageLength, and the
// parser linear: an entity's end is looked for this far at most.
const (
	maxLinkURL = 2048
	maxScan    = 8192
)

// window cuts s to the part an entity's end is looked for in.
func window(s string) string {
	if len(s) > maxScan {
		return s[:maxScan]
	}
	return s
}

var langRE = regexp.MustCompile(`^[A-Za-z0-9_+#-]{1,32}$`)

// parseMarkdown reads the markdown subset Render documents into runs.
func parseMarkdown(s string) []run {
	var p mdParser
	for i := 0; i < len(s); {
		if n := p.token(s, i); n > 0 {
			i += n
			continue
		}
		if s[i] == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]) {
			p.plain.WriteByte(s[i+1])
			i += 2
			continue
		}
		p.plain.WriteByte(s[i])
		i++
	}
	p.flush()
	return p.runs
}

type mdParser struct {
	runs  []run
	plain strings.Builder
}

func (p *mdParser) flush() {
	if p.plain.Len() > 0 {
		p.add(run{text: p.plain.String()})
		p.plain.Reset()
	}
}

// add appends r, merging it into the previous run when they look the same:
// two italic runs side by side would render as "_a__b_", which Telegram reads
// as underline.
func (p *mdParser) add(r run) {
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

// delims are the emphasis delimiters, longest first.
var delims = []struct {
	d string
	s style
}{
	{"**", styleBold}, {"~~", styleStrike}, {"*", styleBold}, {"_", styleItalic}, {"~", styleStrike},
}

// token tries to read an entity at s[i:]; it returns how many bytes it read,
// 0 when there is none.
func (p *mdParser) token(s string, i int) int {
	rest := s[i:]
	switch rest[0] {
	case '`':
		if strings.HasPrefix(rest, "```") {
			j := strings.Index(rest[3:], "```")
			if j <= 0 {
				return 0
			}
			body, lang := rest[3:3+j], ""
			if first, after, ok := strings.Cut(body, "\n"); ok && (first == "" || langRE.MatchString(first)) {
				lang, body = first, after
			}
			body = strings.TrimSuffix(body, "\n")
			if body == "" {
				return 0
			}
			p.flush()
			p.add(run{style: stylePre, text: body, lang: lang})
			return 3 + j + 3
		}
		j := strings.IndexAny(rest[1:], "`\n")
		if j <= 0 || rest[1+j] != '`' {
			return 0
		}
		p.flush()
		p.add(run{style: styleCode, text: rest[1 : 1+j]})
		return j + 2
	case '[':
		rest = window(rest)
		end := strings.IndexByte(rest, '\n')
		if end < 0 {
			end = len(rest)
		}
		line := rest[:end]
		j := strings.Index(line, "](")
		if j <= 1 {
			return 0
		}
		k := strings.IndexByte(line[j+2:], ')')
		if k <= 0 {
			return 0
		}
		text, target := line[1:j], line[j+2:j+2+k]
		if strings.ContainsAny(text, "[]") || !linkable(target) {
			return 0
		}
		p.flush()
		p.add(run{style: styleLink, text: text, url: target})
		return j + 2 + k + 1
	case '<':
		rest = window(rest)
		end := strings.IndexAny(rest, ">\n")
		if end <= 1 || rest[end] != '>' {
			return 0
		}
		target, text, _ := strings.Cut(rest[1:end], "|")
		if !linkable(target) {
			return 0
		}
		if text == "" {
			text = target
		}
		p.flush()
		p.add(run{style: styleLink, text: text, url: target})
		return end + 1
	}
	for _, d := range delims {
		if n := p.emphasis(s, i, d.d, d.s); n > 0 {
			return n
		}
	}
	return 0
}

// emphasis reads delimiter d at s[i:] with its closing twin on the same line.
// The opening one must not follow a letter or digit and must be followed by a
// non-space; the closing one must follow a non-space and not precede a letter
// or digit, so snake_case_names and 2*3*4 stay as written.
func (p *mdParser) emphasis(s string, i int, d string, st style) int {
	if !strings.HasPrefix(s[i:], d) {
		return 0
	}
	if before, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && isWordRune(before) {
		return 0
	}
	from := i + len(d)
	if from >= len(s) {
		return 0
	}
	if after, _ := utf8.DecodeRuneInString(s[from:]); unicode.IsSpace(after) {
		return 0
	}
	line := window(s[from:])
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	for off := 1; off < len(line); off++ {
		n := strings.Index(line[off:], d)
		if n < 0 {
			return 0
		}
		off += n
		j := from + off
		if prev, _ := utf8.DecodeLastRuneInString(s[:j]); unicode.IsSpace(prev) || prev == '\\' {
			continue
		}
		k := j + len(d)
		if k < len(s) {
			if next, _ := utf8.DecodeRuneInString(s[k:]); isWordRune(next) || strings.HasPrefix(s[k:], d[:1]) {
				continue
			}
		}
		p.flush()
		p.add(run{style: st, text: unescapeMarkdown(s[from:j])})
		return k - i
	}
	return 0
}

// unescapeMarkdown drops the backslash of \<punctuation> in emphasized text.
func unescapeMarkdown(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isWordRune(c rune) bool { return unicode.IsLetter(c) || unicode.IsDigit(c) }

func isASCIIPunct(c byte) bool {
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
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

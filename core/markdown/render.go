package markdown

import (
	"html"
	"strconv"
	"strings"
)

// style says how one format writes inlines; blocks are written the same way
// for every text format (paragraphs apart by a blank line, "> " quotes, "- "
// and "1. " lists).
type style struct {
	text                 func(string) string
	strong, emph, strike [2]string
	code                 func(string) string
	block                func(info, text string) string
	link                 func(label, url string) string
}

var plainStyle = style{
	text: func(s string) string { return s },
	code: func(s string) string { return s },
	block: func(_, s string) string {
		return s
	},
	link: linkWords,
}

var whatsappStyle = style{
	text:   func(s string) string { return s },
	strong: [2]string{"*", "*"}, emph: [2]string{"_", "_"}, strike: [2]string{"~", "~"},
	code:  func(s string) string { return "`" + s + "`" },
	block: func(_, s string) string { return "```" + s + "```" },
	link:  linkWords,
}

// linkWords writes a link as words: "label (url)", or the url alone.
func linkWords(label, url string) string {
	l := strings.TrimPrefix(url, "mailto:")
	if label == "" || label == url || label == l {
		return l
	}
	return label + " (" + l + ")"
}

// Plain renders markdown as plain text: the words without markers, links as
// "label (url)", lists and quotes as "- " and "> " lines. For SMS and chats
// that show text as written.
func Plain(text string) string { return renderText(Parse(text), plainStyle) }

// WhatsApp renders markdown in WhatsApp's formatting: *bold*, _italic_,
// ~strikethrough~, `code` and ```monospace``` blocks; links as "label (url)".
func WhatsApp(text string) string { return renderText(Parse(text), whatsappStyle) }

func renderText(nodes []Node, st style) string {
	var parts []string
	for _, n := range nodes {
		if s := textBlock(n, st); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "\n\n")
}

func textBlock(n Node, st style) string {
	switch n.Kind {
	case Paragraph:
		return textInlines(n.Children, st)
	case Heading:
		return st.strong[0] + textInlines(n.Children, st) + st.strong[1]
	case CodeBlock:
		return st.block(n.Info, n.Text)
	case Quote:
		inner := renderText(n.Children, st)
		return "> " + strings.ReplaceAll(inner, "\n", "\n> ")
	case List:
		var lines []string
		for i, item := range n.Children {
			marker := "- "
			if n.Ordered {
				marker = strconv.Itoa(n.Start+i) + ". "
			}
			body := renderText(item.Children, st)
			lines = append(lines, marker+strings.ReplaceAll(body, "\n", "\n   "))
		}
		return strings.Join(lines, "\n")
	}
	return textInlines([]Node{n}, st)
}

func textInlines(nodes []Node, st style) string {
	var b strings.Builder
	for _, n := range nodes {
		switch n.Kind {
		case Text:
			b.WriteString(st.text(n.Text))
		case Break:
			b.WriteByte('\n')
		case Code:
			b.WriteString(st.code(n.Text))
		case Strong:
			b.WriteString(st.strong[0] + textInlines(n.Children, st) + st.strong[1])
		case Emph:
			b.WriteString(st.emph[0] + textInlines(n.Children, st) + st.emph[1])
		case Strike:
			b.WriteString(st.strike[0] + textInlines(n.Children, st) + st.strike[1])
		case Link:
			b.WriteString(st.link(textInlines(n.Children, plainStyle), n.URL))
		default:
			b.WriteString(textBlock(n, st))
		}
	}
	return b.String()
}

// HTML renders markdown as an HTML fragment for an email body: <p>, <br>,
// <strong>, <em>, <s>, <code>, <pre>, <blockquote>, <ul>, <ol>, <li> and
// <a href>, every character of the text escaped.
func HTML(text string) string {
	var b strings.Builder
	htmlBlocks(&b, Parse(text), false)
	return b.String()
}

// htmlBlocks writes blocks; tight drops the <p> of a lone paragraph (a list
// item's).
func htmlBlocks(b *strings.Builder, nodes []Node, tight bool) {
	for _, n := range nodes {
		switch n.Kind {
		case Paragraph:
			if tight && len(nodes) == 1 {
				htmlInlines(b, n.Children)
				continue
			}
			b.WriteString("<p>")
			htmlInlines(b, n.Children)
			b.WriteString("</p>\n")
		case Heading:
			b.WriteString("<p><strong>")
			htmlInlines(b, n.Children)
			b.WriteString("</strong></p>\n")
		case CodeBlock:
			b.WriteString("<pre><code>" + html.EscapeString(n.Text) + "</code></pre>\n")
		case Quote:
			b.WriteString("<blockquote>\n")
			htmlBlocks(b, n.Children, false)
			b.WriteString("</blockquote>\n")
		case List:
			tag := "ul"
			if n.Ordered {
				tag = "ol"
				if n.Start != 1 {
					b.WriteString(`<ol start="` + strconv.Itoa(n.Start) + `">` + "\n")
				} else {
					b.WriteString("<ol>\n")
				}
			} else {
				b.WriteString("<ul>\n")
			}
			for _, item := range n.Children {
				b.WriteString("<li>")
				htmlBlocks(b, item.Children, true)
				b.WriteString("</li>\n")
			}
			b.WriteString("</" + tag + ">\n")
		}
	}
}

func htmlInlines(b *strings.Builder, nodes []Node) {
	for _, n := range nodes {
		switch n.Kind {
		case Text:
			b.WriteString(html.EscapeString(n.Text))
		case Break:
			b.WriteString("<br>\n")
		case Code:
			b.WriteString("<code>" + html.EscapeString(n.Text) + "</code>")
		case Strong, Emph, Strike:
			tag := map[Kind]string{Strong: "strong", Emph: "em", Strike: "s"}[n.Kind]
			b.WriteString("<" + tag + ">")
			htmlInlines(b, n.Children)
			b.WriteString("</" + tag + ">")
		case Link:
			b.WriteString(`<a href="` + html.EscapeString(n.URL) + `">`)
			htmlInlines(b, n.Children)
			b.WriteString("</a>")
		}
	}
}

// Escape makes s literal text in markdown: every character that could start
// markup gets a backslash. Desks use it for what they did not mean as markup.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '*', '_', '~', '`', '[', ']', '<', '>', '#':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

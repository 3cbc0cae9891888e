package adapters

import (
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/markdown"
)

// Render turns a reply written on a desk (meta format=markdown: CommonMark,
// the one format desks write) into what a channel of format f shows: plain
// text, an HTML body beside the plain text, or WhatsApp's formatting. The
// runtime calls it before Send, so an adapter of these formats only ever sees
// the text it sends. A format Render does not produce (Telegram's MarkdownV2)
// is the adapter's to render: m keeps meta format=markdown.
func Render(m *core.Message, f Format) {
	if m.Meta[event.MetaFormat] != event.FormatMarkdown {
		return
	}
	switch f {
	case FormatPlain, "":
		m.Text = markdown.Plain(m.Text)
	case FormatHTML:
		if m.HTML == "" {
			m.HTML = markdown.HTML(m.Text)
		}
		m.Text = markdown.Plain(m.Text)
	case FormatWhatsApp:
		m.Text = markdown.WhatsApp(m.Text)
	default:
		return
	}
	delete(m.Meta, event.MetaFormat)
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
}

package email

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/omnigate/omnigate/core"
)

// Inline images: a mail's HTML shows them with src="cid:<Content-ID>" (RFC
// 2392), which means nothing outside the mail; its text part, when the client
// writes one, has a placeholder (Outlook "[cid:image001.png@01DB...]", Gmail
// and Apple Mail "[image: name]").

var (
	// cidPlaceholderRE is Outlook's placeholder of an inline image in the text
	// part, which HTMLToText writes for an <img src="cid:..."> too.
	cidPlaceholderRE = regexp.MustCompile(`\[cid:([^\[\]\s]{1,500})\]`)
	// cidAttrRE finds a cid: URL as the value of an attribute that loads an
	// image: src, background, poster (quoted or not).
	cidAttrRE = regexp.MustCompile(`(?i)(\b(?:src|background|poster)\s*=\s*["']?)cid:([^"'\s>]{1,500})`)
)

// cidIndex maps Content-IDs to their position in ids, for lookups of the
// cid: URLs that cite them.
type cidIndex map[string]int

func newCIDIndex(ids []string) cidIndex {
	x := cidIndex{}
	for i, id := range ids {
		if _, dup := x[id]; id != "" && !dup {
			x[id] = i
		}
	}
	return x
}

// find returns the position of the Content-ID that the path of a cid: URL
// names, or -1. RFC 2392 percent-encodes it; clients do not always.
func (x cidIndex) find(ref string) int {
	if i, ok := x[ref]; ok {
		return i
	}
	if id, err := url.PathUnescape(ref); err == nil {
		if i, ok := x[id]; ok {
			return i
		}
	}
	return -1
}

// inlinePlaceholders turns every "[cid:<id>]" of text into "[image: <name>]",
// the name of the attachment with that Content-ID, or "[image]" when the mail
// has none: the reader sees where the image was and which file it is.
func inlinePlaceholders(text string, atts []Attachment) string {
	if !strings.Contains(text, "[cid:") {
		return text
	}
	ids := make([]string, len(atts))
	for i, a := range atts {
		ids[i] = a.ContentID
	}
	x := newCIDIndex(ids)
	return cidPlaceholderRE.ReplaceAllStringFunc(text, func(s string) string {
		if i := x.find(cidPlaceholderRE.FindStringSubmatch(s)[1]); i >= 0 {
			return "[image: " + atts[i].Name + "]"
		}
		return "[image]"
	})
}

// resolveCIDs returns html with each cid: image reference replaced by the URL
// of the attachment it names, when the envelope carries that attachment's
// bytes (a data: URL) or a URL to fetch them from; references to other
// attachments stay cid:, which a desk resolves with Attachment.ContentID.
func resolveCIDs(html string, atts []core.Attachment) string {
	if !strings.Contains(strings.ToLower(html), "cid:") {
		return html
	}
	ids := make([]string, len(atts))
	for i, a := range atts {
		ids[i] = a.ContentID
	}
	x := newCIDIndex(ids)
	return cidAttrRE.ReplaceAllStringFunc(html, func(s string) string {
		m := cidAttrRE.FindStringSubmatch(s)
		i := x.find(m[2])
		if i < 0 || !fetchable(atts[i].URL) {
			return s
		}
		return m[1] + atts[i].URL
	})
}

// fetchable reports whether a browser can show what u points at.
func fetchable(u string) bool {
	return strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}

// resolveInline points m's HTML at the bytes of its inline images, when the
// envelope still fits with them (the HTML then carries them a second time);
// otherwise the HTML keeps its cid: references.
func resolveInline(m *core.Message) {
	if m.HTML == "" {
		return
	}
	resolved := resolveCIDs(m.HTML, m.Attachments)
	if resolved == m.HTML || len(resolved) > core.MaxHTMLBytes {
		return
	}
	orig := m.HTML
	m.HTML = resolved
	if _, err := m.Encode(); errors.Is(err, core.ErrTooLarge) {
		m.HTML = orig
	}
}

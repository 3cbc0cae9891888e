package slack

import (
	"strings"
	"unicode/utf8"
)

// maxPartRunes is the longest text of one message the adapter posts. Slack
// takes up to 40,000 characters, but a section block 3,000 and long messages
// are collapsed and hard to read: longer texts are split.
const maxPartRunes = 3000

// splitText cuts text into pieces of at most limit runes: between paragraphs,
// else lines, else words, else anywhere, but never inside an escape (&amp;)
// or a <...> token of mrkdwn.
func splitText(text string, limit int) []string {
	text = strings.TrimSpace(text)
	var out []string
	for utf8.RuneCountInString(text) > limit {
		end := byteIndexOfRune(text, limit) // text[:end] has limit runes
		cut := lastBreak(text[:end])
		cut = outsideToken(text, cut)
		if cut <= 0 {
			cut = outsideToken(text, end)
		}
		if cut <= 0 {
			cut = end
		}
		piece := strings.TrimSpace(text[:cut])
		if piece != "" {
			out = append(out, piece)
		}
		text = strings.TrimSpace(text[cut:])
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

// byteIndexOfRune returns the byte offset of rune n of s.
func byteIndexOfRune(s string, n int) int {
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}

// lastBreak returns where to cut s: after its last paragraph break in the
// second half, else its last line break there, else its last space; 0 when
// there is none.
func lastBreak(s string) int {
	half := len(s) / 2
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(s, sep); i > half {
			return i + len(sep)
		}
	}
	return 0
}

// outsideToken moves cut back before a <...> token or &...; escape it would
// fall inside; 0 when that leaves nothing.
func outsideToken(s string, cut int) int {
	if cut <= 0 {
		return 0
	}
	head := s[:cut]
	if lt := strings.LastIndexByte(head, '<'); lt >= 0 && strings.LastIndexByte(head, '>') < lt {
		return lt
	}
	if amp := strings.LastIndexByte(head, '&'); amp >= 0 && cut-amp < 8 && !strings.Contains(head[amp:], ";") {
		return amp
	}
	return cut
}

package telegramtest

import (
	"fmt"
	"strings"
)

// entity is an open MarkdownV2 entity while parsing.
type entity struct {
	kind  string // tdlib's name: Bold, Italic, Underline, ...
	start int    // byte offset of its opening in the input
}

// ParseMarkdownV2 parses s as Telegram parses parse_mode MarkdownV2 and
// returns the text the customer sees, or the reason Telegram gives for
// refusing it ("Character '.' is reserved and must be escaped with the
// preceding '\'", "Can't find end of Bold entity at byte offset 0", ...).
//
// It follows Telegram's parser (tdlib's parse_markdown_v2): a backslash
// before any character of code 1 to 126 makes it literal, anywhere; outside
// code and pre the characters _ * [ ] ( ) ~ ` > # + - = | { } . ! are
// reserved; inside them only `; an entity closes only when it is the
// innermost open one; "__" is greedily underline; ``` starts a pre block
// whose first word is its language; [text](url) is a link and ![emoji](url)
// a custom emoji. Additionally ">" at the start of a line starts a block
// quote, as in Bot API 7.0.
func ParseMarkdownV2(s string) (string, error) {
	var out strings.Builder
	var stack []entity
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	top := func() string {
		if len(stack) == 0 {
			return ""
		}
		return stack[len(stack)-1].kind
	}
	reserved := func(c byte) error {
		return fmt.Errorf("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && at(i+1) > 0 && at(i+1) <= 126 {
			i++
			out.WriteByte(s[i])
			continue
		}
		specials := "_*[]()~`>#+-=|{}.!"
		switch top() {
		case "Code", "Pre", "PreCode":
			specials = "`"
		}
		if strings.IndexByte(specials, c) < 0 {
			out.WriteByte(c)
			continue
		}
		closing := false
		switch top() {
		case "Bold":
			closing = c == '*'
		case "Italic":
			closing = c == '_' && at(i+1) != '_'
		case "Code":
			closing = c == '`'
		case "Pre", "PreCode":
			closing = c == '`' && at(i+1) == '`' && at(i+2) == '`'
		case "TextUrl", "CustomEmoji":
			closing = c == ']'
		case "Underline":
			closing = c == '_' && at(i+1) == '_'
		case "Strikethrough":
			closing = c == '~'
		case "Spoiler":
			closing = c == '|' && at(i+1) == '|'
		}
		if closing {
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch e.kind {
			case "Underline", "Spoiler":
				i++
			case "Pre", "PreCode":
				i += 2
			case "TextUrl", "CustomEmoji":
				if at(i+1) != '(' {
					if e.kind == "CustomEmoji" {
						return "", fmt.Errorf("Custom emoji entity must contain a tg://emoji URL")
					}
					break // the text is the URL
				}
				i += 2
				begin := i
				for i < len(s) && s[i] != ')' {
					if s[i] == '\\' && at(i+1) > 0 && at(i+1) <= 126 {
						i++
					}
					i++
				}
				if i >= len(s) {
					return "", fmt.Errorf("Can't find end of a URL at byte offset %d", begin)
				}
			}
			continue
		}
		start := i
		var kind string
		switch c {
		case '_':
			kind = "Italic"
			if at(i+1) == '_' {
				kind = "Underline"
				i++
			}
		case '*':
			kind = "Bold"
		case '~':
			kind = "Strikethrough"
		case '|':
			if at(i+1) != '|' {
				return "", reserved(c)
			}
			kind = "Spoiler"
			i++
		case '[':
			kind = "TextUrl"
		case '!':
			if at(i+1) != '[' {
				return "", reserved(c)
			}
			kind = "CustomEmoji"
			i++
		case '`':
			if at(i+1) != '`' || at(i+2) != '`' {
				kind = "Code"
				break
			}
			kind = "Pre"
			i += 3
			end := i
			for end < len(s) && !isSpace(s[end]) && s[end] != '`' {
				end++
			}
			if end != i && end < len(s) && s[end] != '`' {
				kind = "PreCode"
				i = end
			}
			// One line break after the opening (and the language) is skipped.
			if at(i) == '\n' || at(i) == '\r' {
				if (at(i+1) == '\n' || at(i+1) == '\r') && at(i) != at(i+1) {
					i += 2
				} else {
					i++
				}
			}
			i--
		case '>':
			if len(stack) == 0 && (i == 0 || s[i-1] == '\n') {
				continue // a block quote line
			}
			return "", reserved(c)
		default:
			return "", reserved(c)
		}
		stack = append(stack, entity{kind: kind, start: start})
	}
	if len(stack) > 0 {
		e := stack[len(stack)-1]
		return "", fmt.Errorf("Can't find end of %s entity at byte offset %d", e.kind, e.start)
	}
	return out.String(), nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

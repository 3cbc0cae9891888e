package telegram_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
)

// documentedSpecials is the Bot API's list ("Formatting options",
// MarkdownV2 style): "In all other places characters '_', '*', '[', ']',
// '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!' must
// be escaped with the preceding character '\'."
var documentedSpecials = []byte{'_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!'}

func TestEscapeMarkdownV2_DocumentedCharacters(t *testing.T) {
	for _, c := range documentedSpecials {
		got := telegram.EscapeMarkdownV2(string(c))
		if want := `\` + string(c); got != want {
			t.Errorf("EscapeMarkdownV2(%q) = %q, want %q", c, got, want)
		}
	}
	// The backslash starts an escape, so it is escaped too; every other
	// printable ASCII character stays as it is.
	if got := telegram.EscapeMarkdownV2(`\`); got != `\\` {
		t.Errorf(`EscapeMarkdownV2("\\") = %q, want "\\\\"`, got)
	}
	for c := byte(' '); c < 0x7f; c++ {
		if c == '\\' || strings.IndexByte(string(documentedSpecials), c) >= 0 {
			continue
		}
		if got := telegram.EscapeMarkdownV2(string(c)); got != string(c) {
			t.Errorf("EscapeMarkdownV2(%q) = %q, want it unchanged", c, got)
		}
	}
}

func TestEscapeMarkdownV2(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"hello", "hello"},
		{"Price: 5.00!", `Price: 5\.00\!`},
		{"a_b*c", `a\_b\*c`},
		{"[link](http://x.y)", `\[link\]\(http://x\.y\)`},
		{"1+1=2 #win", `1\+1\=2 \#win`},
		{"~`>|{}-", "\\~\\`\\>\\|\\{\\}\\-"},
		{`C:\path`, `C:\\path`},
		{"emoji 😀 and 中文.", `emoji 😀 and 中文\.`},
		{"already \\. escaped", `already \\\. escaped`},
	}
	for _, tt := range tests {
		if got := telegram.EscapeMarkdownV2(tt.in); got != tt.want {
			t.Errorf("EscapeMarkdownV2(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEscapeMarkdownV2_RoundTrip: Telegram shows an escaped string as it was.
func TestEscapeMarkdownV2_RoundTrip(t *testing.T) {
	var all strings.Builder
	for c := rune(1); c < 0x80; c++ {
		all.WriteRune(c)
	}
	for _, s := range []string{all.String(), "*bold* _it_ __u__ ~s~ ||sp|| `c` ```p``` [a](b) ![e](tg://emoji?id=1)", "\\\\\\", "😀👨‍👩‍👧 中文 é"} {
		got, err := telegramtest.ParseMarkdownV2(telegram.EscapeMarkdownV2(s))
		if err != nil || got != s {
			t.Errorf("ParseMarkdownV2(EscapeMarkdownV2(%q)) = %q, %v; want the input", s, got, err)
		}
	}
}

func TestRender_Markdown(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello. How are you?", `Hello\. How are you?`},
		{"bold", "**bold** text", "*bold* text"},
		{"bold underscores", "__bold__ text", "*bold* text"},
		{"italic", "_it_ is *it* too", "_it_ is _it_ too"},
		{"strike", "~~gone~~ and ~kept~", `~gone~ and \~kept\~`},
		{"snake case stays", "use snake_case_names", `use snake\_case\_names`},
		{"escaped arithmetic stays", `2\*3\*4 = 24`, `2\*3\*4 \= 24`},
		{"unclosed", "*not bold", `\*not bold`},
		{"spaced delimiters", "a * b * c", `a \* b \* c`},
		{"escaped delimiter", `\*literal\*`, `\*literal\*`},
		{"code", "run `ls -la` now", "run `ls -la` now"},
		{"code escapes", "`a\\b`", "`a\\\\b`"},
		{"pre", "```go\nfmt.Println(\"a.b\")\n```", "```go\nfmt.Println(\"a.b\")```"},
		{"pre no lang", "```\nx := 1\n```", "```\nx := 1```"},
		{"link", "see [the docs](https://example.com/a_b) now", `see [the docs](https://example.com/a_b) now`},
		{"autolink", "<https://example.com>", `[https://example\.com](https://example.com)`},
		{"not a link", "[x](javascript:alert(1))", `\[x\]\(javascript:alert\(1\)\)`},
		{"mention stays", "<@U123>", `<@U123\>`},
		{"adjacent italics merge", "_a_ _b_", "_a_ _b_"},
		{"bold across a line break", "**a\nb**", "*a*\n*b*"},
		{"emoji in bold", "**héllo 😀**", "*héllo 😀*"},
		{"nested: the innermost wins", "**bold _it_**", "*bold *_it_"},
		{"list and quote keep markers", "- one\n- two\n\n> said", "\\- one\n\\- two\n\n\\> said"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := telegram.Render(tt.in, true)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("Render(%q, markdown) = %q, want [%q]", tt.in, got, tt.want)
			}
			if _, err := telegramtest.ParseMarkdownV2(got[0]); err != nil {
				t.Errorf("Telegram would refuse %q: %v", got[0], err)
			}
		})
	}
}

func TestRender_Plain(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"short", "hello *world*", []string{"hello *world*"}},
		{"empty", "", nil},
		{"blank", " \n\n ", nil},
		{"markup kept", "a_b [x](y) 5.00!", []string{"a_b [x](y) 5.00!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := telegram.Render(tt.in, false)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("Render(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRender_Split(t *testing.T) {
	const max = telegram.MaxMessageLength
	a := func(n int) string { return strings.Repeat("a", n) }
	cjk := func(n int) string { return strings.Repeat("中", n) }
	family := "👨‍👩‍👧‍👦" // four people joined by ZWJs: 11 UTF-16 units
	tests := []struct {
		name     string
		in       string
		markdown bool
		want     []string
	}{
		{"fits exactly", a(max), false, []string{a(max)}},
		{"one over, no spaces: hard cut", a(max + 1), false, []string{a(max), "a"}},
		{"paragraphs", a(3000) + "\n\n" + a(3000), false, []string{a(3000), a(3000)}},
		{"paragraph preferred to line", a(2500) + "\n\n" + a(1000) + "\n" + a(1000), false, []string{a(2500), a(1000) + "\n" + a(1000)}},
		{"line preferred to word", a(2500) + "\n" + a(1000) + " " + a(1000), false, []string{a(2500), a(1000) + " " + a(1000)}},
		{"words", strings.Repeat("word ", 1000), false, []string{strings.TrimSuffix(strings.Repeat("word ", 819), " "), strings.Repeat("word ", 181)}},
		{"early paragraph break is not taken", "Hi\n\n" + a(max), false, []string{"Hi\n\n" + a(max-4), a(4)}},
		// An emoji is a surrogate pair: 2 units. At 4095 it does not fit and
		// moves whole to the next message.
		{"emoji at the boundary", a(max-1) + "😀" + "b", false, []string{a(max - 1), "😀b"}},
		{"emoji just fits", a(max-2) + "😀" + "b", false, []string{a(max-2) + "😀", "b"}},
		{"emoji only", strings.Repeat("😀", max), false, []string{strings.Repeat("😀", max/2), strings.Repeat("😀", max/2)}},
		{"CJK at the boundary", cjk(max + 10), false, []string{cjk(max), cjk(10)}},
		{"CJK and emoji", cjk(max-1) + "😀中", false, []string{cjk(max - 1), "😀中"}},
		{"ZWJ sequence kept whole", a(max-5) + family, false, []string{a(max - 5), family}},
		{"flag kept whole", a(max-3) + "🇩🇪", false, []string{a(max - 3), "🇩🇪"}},
		{"combining accent kept", a(max-1) + "e\u0301", false, []string{a(max - 1), "e\u0301"}},
		// MarkdownV2: "." costs 2 ("\."), so it cannot be cut from its backslash.
		{"escape at the boundary", a(max-1) + ".", true, []string{a(max - 1), `\.`}},
		{"escape just fits", a(max-2) + ".b", true, []string{a(max-2) + `\.`, "b"}},
		{"bold cut is closed and reopened", "**" + a(max) + "**", true, []string{"*" + a(max-2) + "*", "*aa*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := telegram.Render(tt.in, tt.markdown)
			if len(got) != len(tt.want) {
				t.Fatalf("%d messages of lengths %v, want %d of %v", len(got), lens(got), len(tt.want), lens(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d: %d units %q..., want %d units %q...", i, units(got[i]), head(got[i]), units(tt.want[i]), head(tt.want[i]))
				}
			}
			checkMessages(t, tt.in, tt.markdown, max, got)
		})
	}
}

// TestRender_SplitMarkdownProperty renders long formatted text with a small
// limit and checks every message with Telegram's parser.
func TestRender_SplitMarkdownProperty(t *testing.T) {
	in := strings.Repeat("Hello *bold text here* and _italic words_, `code.x`, [link](https://example.com/x) ~old~ 5.00! 😀中文\n", 30) +
		"```python\nprint('a')\nprint(\"b\")\n```\n" + strings.Repeat("end. ", 50)
	for _, limit := range []int{40, 64, 100, 333, 4096} {
		checkMessages(t, in, true, limit, telegram.RenderLimit(in, true, limit))
		checkMessages(t, in, false, limit, telegram.RenderLimit(in, false, limit))
	}
}

// checkMessages checks that msgs carry in within limit: each one valid
// UTF-8, within limit UTF-16 units, accepted by Telegram's MarkdownV2 parser
// when markdown, and together all of in but the line breaks and spaces
// where it was cut.
func checkMessages(t *testing.T, in string, markdown bool, limit int, msgs []string) {
	t.Helper()
	var seen strings.Builder
	for i, m := range msgs {
		if !utf8.ValidString(m) {
			t.Fatalf("message %d is not valid UTF-8", i)
		}
		if n := units(m); n > limit {
			t.Fatalf("message %d: %d UTF-16 units, limit %d", i, n, limit)
		}
		visible := m
		if markdown {
			v, err := telegramtest.ParseMarkdownV2(m)
			if err != nil {
				t.Fatalf("message %d: Telegram would refuse it: %v\n%q", i, err, m)
			}
			visible = v
		}
		if strings.TrimSpace(visible) == "" {
			t.Fatalf("message %d is blank", i)
		}
		seen.WriteString(visible)
	}
	if got, want := squeeze(seen.String()), squeeze(telegram.Visible(in, markdown)); got != want {
		t.Fatalf("the messages do not carry the text:\n got %q\nwant %q", head(got), head(want))
	}
}

func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func units(s string) int { return len(utf16.Encode([]rune(s))) }

func lens(ss []string) []int {
	var out []int
	for _, s := range ss {
		out = append(out, units(s))
	}
	return out
}

func head(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

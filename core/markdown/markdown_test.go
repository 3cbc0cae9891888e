package markdown_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core/markdown"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name, in, plain, html, whatsapp string
	}{
		{"text", "Hello, Ann", "Hello, Ann", "<p>Hello, Ann</p>\n", "Hello, Ann"},
		{"styles", "**Order** shipped *today*, ~~late~~ `A-1`",
			"Order shipped today, late A-1",
			"<p><strong>Order</strong> shipped <em>today</em>, <s>late</s> <code>A-1</code></p>\n",
			"*Order* shipped _today_, ~late~ `A-1`"},
		{"underscores", "__bold__ and _it_ but snake_case_name stays",
			"bold and it but snake_case_name stays",
			"<p><strong>bold</strong> and <em>it</em> but snake_case_name stays</p>\n",
			"*bold* and _it_ but snake_case_name stays"},
		{"link", "Track it [here](https://example.com/t?a=1&b=2) or <https://example.com>",
			"Track it here (https://example.com/t?a=1&b=2) or https://example.com",
			`<p>Track it <a href="https://example.com/t?a=1&amp;b=2">here</a> or <a href="https://example.com">https://example.com</a></p>` + "\n",
			"Track it here (https://example.com/t?a=1&b=2) or https://example.com"},
		{"unsafe link stays text", "[click](javascript:alert(1))",
			"[click](javascript:alert(1))", "<p>[click](javascript:alert(1))</p>\n", "[click](javascript:alert(1))"},
		{"html is text", "<b>hi</b> & <script>x</script>", "<b>hi</b> & <script>x</script>",
			"<p>&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;</p>\n", "<b>hi</b> & <script>x</script>"},
		{"line breaks kept", "line one\nline two\n\nnext", "line one\nline two\n\nnext",
			"<p>line one<br>\nline two</p>\n<p>next</p>\n", "line one\nline two\n\nnext"},
		{"list", "Steps:\n\n- restart\n- **wait**\n\n1. one\n2. two",
			"Steps:\n\n- restart\n- wait\n\n1. one\n2. two",
			"<p>Steps:</p>\n<ul>\n<li>restart</li>\n<li><strong>wait</strong></li>\n</ul>\n<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n",
			"Steps:\n\n- restart\n- *wait*\n\n1. one\n2. two"},
		{"quote and code", "> you wrote\n> this\n\n```\nx := 1 < 2\n```",
			"> you wrote\n> this\n\nx := 1 < 2",
			"<blockquote>\n<p>you wrote<br>\nthis</p>\n</blockquote>\n<pre><code>x := 1 &lt; 2</code></pre>\n",
			"> you wrote\n> this\n\n```x := 1 < 2```"},
		{"escapes", `2\*3\*4 and \_x\_`, "2*3*4 and _x_", "<p>2*3*4 and _x_</p>\n", "2*3*4 and _x_"},
		{"unclosed", "a * b and **c", "a * b and **c", "<p>a * b and **c</p>\n", "a * b and **c"},
		{"heading", "# Invoice", "Invoice", "<p><strong>Invoice</strong></p>\n", "*Invoice*"},
		{"chinese", "您好，**订单**已发货", "您好，订单已发货", "<p>您好，<strong>订单</strong>已发货</p>\n", "您好，*订单*已发货"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := markdown.Plain(tt.in); got != tt.plain {
				t.Errorf("Plain = %q, want %q", got, tt.plain)
			}
			if got := markdown.HTML(tt.in); got != tt.html {
				t.Errorf("HTML = %q, want %q", got, tt.html)
			}
			if got := markdown.WhatsApp(tt.in); got != tt.whatsapp {
				t.Errorf("WhatsApp = %q, want %q", got, tt.whatsapp)
			}
		})
	}
}

// What Escape returns reads back as the text it was given.
func TestEscape_RoundTrip(t *testing.T) {
	for _, s := range []string{"2*3*4", "a_b_c", "**not bold**", "[x](https://e.com)", "<https://e.com>", "~~no~~", "`no`", `back\slash`, "# not a heading", "> not a quote"} {
		if got := markdown.Plain(markdown.Escape(s)); got != s {
			t.Errorf("Plain(Escape(%q)) = %q", s, got)
		}
	}
}

// FuzzParse: any input renders without panicking, HTML never carries a tag
// the renderer did not write, and Plain keeps valid UTF-8 valid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"**a**", "*a", "[a](https://b)", "<https://x>", "```\ncode", "> q\n> > qq", "- a\n  b\n- c", "1. x\n2) y", "__x__ _y_", "~~s~~", "\\*", "a\r\nb", strings.Repeat("[", 40), strings.Repeat("> ", 40) + "x", strings.Repeat("*", 33)} {
		f.Add(s)
	}
	allowed := map[string]bool{}
	for _, tag := range []string{"p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a"} {
		allowed[tag] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := markdown.HTML(s)
		for i := strings.IndexByte(h, '<'); i >= 0; {
			end := strings.IndexAny(h[i+1:], " >")
			if end < 0 {
				t.Fatalf("unclosed tag in %q", h)
			}
			tag := strings.TrimPrefix(h[i+1:i+1+end], "/")
			if !allowed[tag] {
				t.Fatalf("HTML(%q) has tag %q", s, tag)
			}
			next := strings.IndexByte(h[i+1:], '<')
			if next < 0 {
				break
			}
			i += 1 + next
		}
		if p := markdown.Plain(s); utf8.ValidString(s) && !utf8.ValidString(p) {
			t.Fatalf("Plain(%q) = %q is not valid UTF-8", s, p)
		}
		_ = markdown.WhatsApp(s)
	})
}

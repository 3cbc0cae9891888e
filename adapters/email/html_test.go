package email_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
)

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"paragraphs", "<p>Hello</p><p>World</p>", "Hello\n\nWorld"},
		{"br and div", "<div>one<br>two</div><div>three</div>", "one\ntwo\nthree"},
		{"whitespace collapses", "<p>  a \n\t b&nbsp;&nbsp;c </p>", "a b c"},
		{"entities", "<p>Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#8212;</p>", "Tom & Jerry <3 été —"},
		{"link with text", `<p>See <a href="https://example.com/faq">our FAQ</a>.</p>`, "See our FAQ (https://example.com/faq)."},
		{"link with its url as text", `<a href="https://example.com/">https://example.com</a>`, "https://example.com"},
		{"mailto", `<a href="mailto:help@example.com">help@example.com</a> or <a href="mailto:sales@example.com?subject=x">sales</a>`, "help@example.com or sales (sales@example.com)"},
		{"javascript link dropped", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"script style head dropped", "<html><head><title>T</title><style>p{color:red}</style></head><body><script>var x=1;</script><p>Body</p></body></html>", "Body"},
		{"lists", "<ul><li>one</li><li>two</li></ul><p>after</p>", "- one\n- two\n\nafter"},
		{"blockquote quoted", "<p>Yes</p><blockquote><p>Question?</p><blockquote>Older</blockquote></blockquote>", "Yes\n\n> Question?\n>\n> > Older"},
		{"pre kept", "<pre>a  b\n  c</pre>", "a  b\n  c"},
		{"table cells", "<table><tr><td>Order</td><td>4821</td></tr><tr><td>Total</td><td>$5</td></tr></table>", "Order 4821\nTotal $5"},
		{"outlook paragraphs", `<p class="MsoNormal">Hi,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal">Line one<o:p></o:p></p><p class="MsoNormal">Line two<o:p></o:p></p>`, "Hi,\n\nLine one\nLine two"},
		{"inline image", `<p>Look:</p><p><img src="cid:image001.png@01DB5F1A.2B3C4D50" alt="x"></p><p><img src="https://t.example/pixel.gif"></p>`, "Look:\n\n[cid:image001.png@01DB5F1A.2B3C4D50]"},
		{"broken html", "<p>unclosed <b>bold <i>text", "unclosed bold text"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := email.HTMLToText(tc.in); got != tc.want {
				t.Errorf("HTMLToText(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

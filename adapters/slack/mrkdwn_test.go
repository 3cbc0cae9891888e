package slack_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
)

func TestConvertMrkdwn(t *testing.T) {
	tests := []struct {
		name, in        string
		plain, md, html string
	}{
		{"text", "just text", "just text", "just text", "just text"},
		{"entities", "a &lt; b &amp;&amp; c &gt; d", "a < b && c > d", "a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"},
		{"bold italic strike", "*bold* _it_ ~gone~", "bold it gone", "*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"},
		{"nested", "*bold _and it_*", "bold and it", "*bold _and it_*", "<b>bold <i>and it</i></b>"},
		{"code", "run `rm -rf &lt;dir&gt;` now", "run rm -rf <dir> now", "run `rm -rf <dir>` now", "run <code>rm -rf &lt;dir&gt;</code> now"},
		{"pre", "see:\n```\nline *1*\nline 2\n```\ndone", "see:\nline *1*\nline 2\ndone", "see:\n```\nline *1*\nline 2\n```\ndone", "see:<br>\n<pre>line *1*\nline 2</pre><br>\ndone"},
		{"link with label", "see <https://example.com/a?b=1&amp;c=2|the docs>", "see the docs (https://example.com/a?b=1&c=2)", "see [the docs](https://example.com/a?b=1&c=2)", `see <a href="https://example.com/a?b=1&amp;c=2">the docs</a>`},
		{"bare link", "<https://example.com>", "https://example.com", "https://example.com", `<a href="https://example.com">https://example.com</a>`},
		{"mailto", "<mailto:ann@example.com|ann@example.com>", "ann@example.com", "ann@example.com", `<a href="mailto:ann@example.com">ann@example.com</a>`},
		{"user mention", "thanks <@U123|Bob>", "thanks @Bob", "thanks @Bob", "thanks @Bob"},
		{"bare mention keeps id", "cc <@U123>", "cc @U123", "cc @U123", "cc @U123"},
		{"channel", "in <#C123|general>", "in #general", "in #general", "in #general"},
		{"specials", "<!here> <!subteam^S1|@ops> <!date^1392734382^{date}|Feb 18>", "@here @ops Feb 18", "@here @ops Feb 18", "@here @ops Feb 18"},
		{"snake_case stays", "my_var_name and 2*3*4", "my_var_name and 2*3*4", "my_var_name and 2*3*4", "my_var_name and 2*3*4"},
		{"unclosed", "*not bold", "*not bold", "*not bold", "*not bold"},
		{"not across lines", "*a\nb*", "*a\nb*", "*a\nb*", "*a<br>\nb*"},
		{"quote", "&gt; quoted *x*\nreply", "> quoted x\nreply", "> quoted *x*\nreply", "<blockquote>quoted <b>x</b></blockquote><br>\nreply"},
		{"html in text", `<script> & "q"`, `<script> & "q"`, `<script> & "q"`, "&lt;script&gt; &amp; &#34;q&#34;"},
		{"emoji", "héllo *wörld* 👋", "héllo wörld 👋", "héllo *wörld* 👋", "héllo <b>wörld</b> 👋"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct{ target, want string }{
				{"sms", tt.plain}, {"whatsapp", tt.plain}, {"web", tt.plain}, {"telegram", tt.md}, {"email", tt.html},
			} {
				if got := slack.ConvertMrkdwn(tt.in, c.target); got != c.want {
					t.Errorf("ConvertMrkdwn(%q, %s) = %q, want %q", tt.in, c.target, got, c.want)
				}
			}
		})
	}
}

func FuzzConvertMrkdwn(f *testing.F) {
	for _, s := range []string{"*a* _b_ ~c~ `d`", "<https://x|y> <@U1> <#C1|c> <!here>", "```\ncode\n```", "&gt; q\n&amp;", "*_~`<&", "**__~~``"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, target := range []string{"sms", "telegram", "email"} {
			_ = slack.ConvertMrkdwn(s, target)
		}
	})
}

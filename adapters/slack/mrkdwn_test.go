package slack_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/core/markdown"
)

// TestConvertMrkdwn: what an agent writes in Slack becomes CommonMark, and
// the customer's channel shows what the agent saw (plain text here).
func TestConvertMrkdwn(t *testing.T) {
	tests := []struct {
		name, in  string
		md, plain string
	}{
		{"text", "just text", "just text", "just text"},
		{"entities", "a &lt; b &amp;&amp; c &gt; d", `a \< b && c \> d`, "a < b && c > d"},
		{"bold italic strike", "*bold* _it_ ~gone~", "**bold** _it_ ~~gone~~", "bold it gone"},
		{"nested", "*bold _and it_*", "**bold _and it_**", "bold and it"},
		{"code", "run `rm -rf &lt;dir&gt;` now", "run `rm -rf <dir>` now", "run rm -rf <dir> now"},
		{"pre", "see:\n```\nline *1*\nline 2\n```\ndone", "see:\n```\nline *1*\nline 2\n```\ndone", "see:\n\nline *1*\nline 2\n\ndone"},
		{"link with label", "see <https://example.com/a?b=1&amp;c=2|the docs>", "see [the docs](https://example.com/a?b=1&c=2)", "see the docs (https://example.com/a?b=1&c=2)"},
		{"bare link", "<https://example.com>", "<https://example.com>", "https://example.com"},
		{"mailto", "<mailto:ann@example.com|ann@example.com>", "[ann@example.com](mailto:ann@example.com)", "ann@example.com"},
		{"user mention", "thanks <@U123|Bob>", "thanks @Bob", "thanks @Bob"},
		{"bare mention keeps id", "cc <@U123>", "cc @U123", "cc @U123"},
		{"channel", "in <#C123|general>", `in \#general`, "in #general"},
		{"specials", "<!here> <!subteam^S1|@ops> <!date^1392734382^{date}|Feb 18>", "@here @ops Feb 18", "@here @ops Feb 18"},
		{"snake_case stays", "my_var_name and 2*3*4", `my\_var\_name and 2\*3\*4`, "my_var_name and 2*3*4"},
		{"unclosed", "*not bold", `\*not bold`, "*not bold"},
		{"not across lines", "*a\nb*", "\\*a\nb\\*", "*a\nb*"},
		{"quote", "&gt; quoted *x*\nreply", "> quoted **x**\nreply", "> quoted x\n\nreply"},
		{"html in text", `<script> & "q"`, `\<script\> & "q"`, `<script> & "q"`},
		{"emoji", "héllo *wörld* 👋", "héllo **wörld** 👋", "héllo wörld 👋"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slack.ConvertMrkdwn(tt.in)
			if got != tt.md {
				t.Errorf("ConvertMrkdwn(%q) = %q, want %q", tt.in, got, tt.md)
			}
			if p := markdown.Plain(got); p != tt.plain {
				t.Errorf("the customer sees %q, want %q", p, tt.plain)
			}
		})
	}
}

func FuzzConvertMrkdwn(f *testing.F) {
	for _, s := range []string{"*a* _b_ ~c~ `d`", "<https://x|y> <@U1> <#C1|c> <!here>", "```\ncode\n```", "&gt; q\n&amp;", "*_~`<&", "**__~~``"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = markdown.HTML(slack.ConvertMrkdwn(s))
	})
}

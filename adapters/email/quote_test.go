package email_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
)

func TestStripQuoted(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "Hello\n\nthanks", "Hello\n\nthanks"},
		{"gmail attribution wrapped", "Yes please.\n\nOn Mon, Jan 6, 2025 at 10:02 AM Support <s@example.com>\nwrote:\n\n> Shall we?\n> ok", "Yes please."},
		{"attribution one line", "Yes.\r\nOn 6 Jan 2025, at 10:02, Support <s@example.com> wrote:\r\n> Shall we?", "Yes."},
		{"interleaved answers kept", "> Which order?\n4821\n> Which colour?\nBlue", "4821\nBlue"},
		{"bottom posting", "On Mon, Support wrote:\n> Which order?\n\n4821, thanks", "4821, thanks"},
		{"attribution then unquoted history", "See below.\n\nOn Mon, Jan 6, 2025, Support wrote:\nOld text\nmore", "See below."},
		{"original message", "Fine.\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold", "Fine."},
		{"outlook header block", "Thanks!\n\nFrom: Support <s@example.com>\nSent: Monday, January 6, 2025 4:12 PM\nTo: Ann\nSubject: RE: x\n\nold", "Thanks!"},
		{"outlook rule", "Thanks!\n________________________________\nFrom: Support\nSent: today", "Thanks!"},
		{"german outlook", "Danke.\n\nVon: Support <s@example.com>\nGesendet: Montag, 6. Januar 2025 16:12\nAn: Jürgen\nBetreff: AW: x\n\nalt", "Danke."},
		{"chinese attribution", "收到，谢谢。\n\n在 2025年1月6日 10:02，客服 <s@example.com> 写道：\n> 您好", "收到，谢谢。"},
		{"chinese qq header", "好的\n\n------------------ 原始邮件 ------------------\n发件人: 客服\n发送时间: 2025年1月6日\n收件人: 我\n主题: 订单", "好的"},
		{"french", "Merci.\n\nLe lun. 6 janv. 2025 à 10:02, Support <s@example.com> a écrit :\n> Bonjour", "Merci."},
		{"german attribution", "Danke.\n\nAm Mo., 6. Jan. 2025 um 10:02 Uhr schrieb Support <s@example.com>:\n> Hallo", "Danke."},
		{"signature", "Call me.\n\n-- \nAnn Lee\n+1 555 0100", "Call me."},
		{"signature without trailing space", "Call me.\n--\nAnn", "Call me."},
		{"mobile signature", "On my way.\n\nSent from my iPhone", "On my way."},
		{"all quoted stays", "> only a quote\n> nothing else", "> only a quote\n> nothing else"},
		{"blank runs collapse", "a\n\n\n\nb\n", "a\n\nb"},
		{"forward kept", "FYI\n\n---------- Forwarded message ---------\nFrom: Bob\nDate: Mon\nSubject: x\nTo: Ann\n\nbody", "FYI\n\n---------- Forwarded message ---------\nFrom: Bob\nDate: Mon\nSubject: x\nTo: Ann\n\nbody"},
		{"apple forward kept", "See below\n\nBegin forwarded message:\n\n> From: Bob\n> Subject: x\n> body", "See below\n\nBegin forwarded message:\n\n> From: Bob\n> Subject: x\n> body"},
		{"dashes in text kept", "Item -- price\n-- not a sig, text follows", "Item -- price\n-- not a sig, text follows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := email.StripQuoted(tc.in); got != tc.want {
				t.Errorf("StripQuoted(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

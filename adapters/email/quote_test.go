package email_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
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
		{"attribution then unquoted history", "See below.\n\nOn Mon, Jan 6, 2025 at 10:02, Support <s@example.com> wrote:\nOld text\nmore", "See below."},
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

// TestStripQuoted_Goldens cuts each reply of testdata/quote, one per
// language and client (Gmail, Outlook, Apple Mail; English, Chinese,
// Japanese, Korean, German, French, Spanish, Portuguese, Italian, Dutch,
// Russian) plus customers' prose that only looks like an attribution, and
// compares the result with its .golden file; go test -run Goldens -update
// rewrites them (review the diff).
func TestStripQuoted_Goldens(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "quote", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no replies in testdata/quote: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := email.StripQuoted(string(in)) + "\n"
			path := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestStripQuoted_Goldens -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("StripQuoted(%s)\n got: %q\nwant: %q", file, got, want)
			}
		})
	}
}

// TestStripQuoted_Attributions: each client's attribution, in each
// language, is known as a whole, so that the history is cut even when it is
// not quoted with ">" (an HTML mail whose quote is no blockquote); a line
// that only ends like one, mid-paragraph or without a date, is the
// customer's text.
func TestStripQuoted_Attributions(t *testing.T) {
	for _, a := range []string{
		"On Mon, Jan 5, 2026 at 10:30 AM Example Support <support@example.com> wrote:",
		"On 5 Jan 2026, at 10:30, Example Support <support@example.com> wrote:",
		"On Monday, January 5, 2026, 10:30:00 AM GMT+1, Example Support <support@example.com> wrote:",
		"On 05/01/2026 10:30, Example Support wrote:",
		"Example Support <support@example.com> 于2026年1月5日周一 上午10:30写道：",
		"2026年1月5日 10:30，Example Support <support@example.com> 写道：",
		"在 2026/1/5 10:30, Example Support 写道:",
		"Example Support <support@example.com> 於 2026年1月5日 週一 上午10:30寫道：",
		"2026年1月5日 上午10:30，Example Support <support@example.com> 寫道：",
		"2026年1月5日(月) 10:30 Example Support <support@example.com>:",
		"2026/01/05 10:30、Example Support <support@example.com>のメール:",
		"2026년 1월 5일 (월) 오전 10:30, Example Support <support@example.com>님이 작성:",
		"2026. 1. 5. 오전 10:30, Example Support <support@example.com> 작성:",
		"Am Mo., 5. Jan. 2026 um 10:30 Uhr schrieb Example Support <support@example.com>:",
		"Am 05.01.2026 um 10:30 schrieb Example Support <support@example.com>:",
		"Le lun. 5 janv. 2026 à 10:30, Example Support <support@example.com> a écrit :",
		"Le 5 janv. 2026 à 10:30, Example Support <support@example.com> a écrit\u00a0:",
		"El lun, 5 ene 2026 a las 10:30, Example Support (<support@example.com>) escribió:",
		"El 5 ene 2026, a las 10:30, Example Support <support@example.com> escribió:",
		"Em seg., 5 de jan. de 2026 às 10:30, Example Support <support@example.com> escreveu:",
		"Em 5 de jan. de 2026, à(s) 10:30, Example Support <support@example.com> escreveu:",
		"Il giorno lun 5 gen 2026 alle ore 10:30 Example Support <support@example.com> ha scritto:",
		"Il giorno 5 gen 2026, alle ore 10:30, Example Support <support@example.com> ha scritto:",
		"Op ma 5 jan 2026 om 10:30 schreef Example Support <support@example.com>:",
		"Op 5 jan. 2026 om 10:30 heeft Example Support <support@example.com> het volgende geschreven:",
		"пн, 5 янв. 2026 г. в 10:30, Example Support <support@example.com>:",
		"5 янв. 2026 г., в 10:30, Example Support <support@example.com> написал(а):",
		"05.01.2026 10:30, Example Support пишет:",
		"05.01.2026, 10:30, \"Example Support\" <support@example.com>:",
	} {
		in := "Thanks.\n\n" + a + "\nThe original message, not quoted.\nMore of it."
		if got := email.StripQuoted(in); got != "Thanks." {
			t.Errorf("%q not known as an attribution: got %q", a, got)
		}
	}
	for _, prose := range []string{
		"Hello,\n\nOn Monday I wrote:\nthe box was empty.",                 // no date, no address
		"Hi,\nOn Monday at 10:30 I wrote:\nthe box was empty.",             // mid-paragraph
		"Yesterday at 10:30 Tom <tom@example.com> wrote:\nit is refunded.", // not how a client starts one
		"As I wrote: the box was empty. Please help.",
		"3 questions for your colleague <bob@example.com>:\nthe price, the date, the size.",
		"Am Montag schrieb ich Ihnen:\ndie Lieferung fehlt.",
		"我上周写道：\n包裹是空的。",
	} {
		if got := email.StripQuoted(prose); got != prose {
			t.Errorf("prose cut: %q\n   became %q", prose, got)
		}
	}
}

// TestAdapter_QuotedHistory: replies as Gmail (Chinese, text and HTML),
// Outlook (Japanese in ISO-2022-JP, Russian in Windows-1251 with HTML) and
// Apple Mail (French, HTML only) send them reach the bus through IMAP with
// only what the customer wrote as text, and the whole body in meta
// original_text.
func TestAdapter_QuotedHistory(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	want := []struct{ name, text, quote string }{
		{"gmail_zh_reply", "您好，\n\n包裹今天还没有到，请帮我查一下订单 20260105-7781。\n\n谢谢！\n王小明", "于2026年1月5日周一 上午10:30写道："},
		{"outlook_ja_reply", "お世話になっております。\n\n請求書の宛名を「株式会社サンプル」に変更していただけますでしょうか。\n\n山田", "送信日時: 2026年1月5日 10:30"},
		{"outlook_ru_reply", "Спасибо, всё работает.\n\nОльга Иванова", "Отправлено: 5 января 2026 г. 10:30"},
		{"apple_fr_reply", "Parfait, à jeudi.\nCamille", "a écrit"},
	}
	for _, m := range want {
		w.imap.Deliver(t, "INBOX", readCorpus(t, m.name))
	}
	run(t, w.adapter(t, cfg{}))
	got := w.inbound(t, len(want))
	for i, m := range got {
		if m.Text != want[i].text || !strings.Contains(m.Meta[email.MetaOriginalText], want[i].quote) {
			t.Errorf("%s: text %q (original %q), want %q", want[i].name, m.Text, m.Meta[email.MetaOriginalText], want[i].text)
		}
	}
}

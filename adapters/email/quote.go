package email

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// StripQuoted returns what the sender wrote in a plain-text mail body, without
// the history a mail client quotes below or above it and without the
// signature:
//
//   - lines starting with ">" (quoted text, also when interleaved with answers);
//   - the attribution line above quoted lines, as Gmail, Outlook, Apple Mail
//     and Thunderbird write it in English, Chinese (simplified and
//     traditional), Japanese, Korean, German, French, Spanish, Portuguese,
//     Italian, Dutch and Russian ("On Mon, Jan 5, 2026 at 10:30 AM Ann
//     <ann@example.com> wrote:", "Ann <ann@example.com> 于2026年1月5日周一
//     上午10:30写道：", "2026年1月5日(月) 10:30 Ann <ann@example.com>:", ...),
//     also when a client wrapped it over two or three lines; when unquoted
//     history follows it instead, everything from it on, if it is a whole
//     attribution (it starts a paragraph, has a date or time or an address,
//     and reads like one from its first word to its last);
//   - everything from "-----Original Message-----" (and its translations),
//     a "________________" rule followed by a header block, or an Outlook
//     header block "From: ... Sent: ... To: ... Subject: ..." in any of those
//     languages ("Von:/Gesendet:/An:/Betreff:", "发件人:/发送时间:/收件人:/主题:",
//     "差出人:/送信日時:/宛先:/件名:", "От:/Отправлено:/Кому:/Тема:", ...);
//   - everything from a signature delimiter line "-- " and trailing
//     "Sent from my iPhone"-style lines.
//
// A line that merely ends like an attribution ("On Monday I wrote:") with
// the customer's own text after it is kept. A forwarded message ("----------
// Forwarded message ---------", "Begin forwarded message:") is kept whole,
// from its marker on.
//
// When nothing would be left (a message that is all quote), it returns text
// trimmed, unchanged otherwise.
func StripQuoted(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines))
	// from[k] is the index in lines of out[k].
	from := make([]int, 0, len(lines))
	keep := func(i int) {
		out = append(out, strings.TrimRightFunc(lines[i], unicode.IsSpace))
		from = append(from, i)
	}
loop:
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case forwardRE.MatchString(l):
			// A forward is what the sender wants read: keep it as it is.
			for j := i; j < len(lines); j++ {
				keep(j)
			}
			break loop
		case historyStart(lines, i):
			break loop
		case quoted(l):
			continue
		case signatureDelimiter(l):
			break loop
		}
		if start, cut := attribution(lines, i, from); start >= 0 {
			// Its first lines went out already: take them back.
			for len(from) > 0 && from[len(from)-1] >= start {
				out, from = out[:len(out)-1], from[:len(from)-1]
			}
			if cut {
				break
			}
			continue
		}
		keep(i)
	}
	out = dropMobileSignature(out)
	result := tidy(out)
	if result == "" {
		return strings.TrimSpace(text)
	}
	return result
}

// quoted reports whether l is quoted history: it starts with ">", after at most
// a little indentation.
func quoted(l string) bool {
	return strings.HasPrefix(strings.TrimLeft(l, " \t"), ">")
}

// signatureDelimiter reports the "-- " line (RFC 3676 4.3), also with its space
// lost on the way.
func signatureDelimiter(l string) bool {
	return l == "-- " || l == "--" || l == "-- \r"
}

func nextNonBlank(lines []string, i int) int {
	for ; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "" {
			return i
		}
	}
	return -1
}

// Attributions: the line a mail client writes above the message it quotes.
// What it says depends on the client and its language; these are their
// observed forms (Gmail, Outlook, Apple Mail, Thunderbird, Yahoo, QQ, 163).
var (
	// colon is a colon as the languages write it: ASCII or full-width, after
	// a space or a no-break space in French.
	colon = `[ \t\x{00A0}\x{202F}]*[:：]`
	// addrEnd is an address in angle brackets (or parentheses, Gmail's
	// Spanish) at the end of an attribution that has no verb: Gmail's
	// Japanese, Russian, German and Dutch end so.
	addrEnd = `<[^<>\s@]+@[^<>\s]+>\)?`

	// attributionEndRE is the end of an attribution: a verb of writing (or,
	// in German, Dutch and the verbless forms, an address) and a colon, at
	// the end of the line.
	attributionEndRE = regexp.MustCompile(`(?i)(` +
		`\bwrote` + // English
		`|\ba écrit` + // French
		`|\bescribió` + // Spanish
		`|\bescreveu` + // Portuguese
		`|\bha scritto` + // Italian
		`|\bschrieb\b.*|\bschreef\b.*|\bhet volgende geschreven` + // German, Dutch ("schrieb Ann <a@b>:")
		`|написал\(а\)|написала|написал|пишет` + // Russian
		`|写道|寫道` + // Chinese
		`|のメール` + // Japanese (Apple Mail)
		`|작성` + // Korean ("님이 작성:", Apple Mail "작성:")
		`|` + addrEnd + // Gmail's Japanese and Russian: no verb
		`)` + colon + `\s*$`)

	// attributionRE is a whole attribution, joined into one line, as each
	// client writes it from its first word to its last.
	attributionRE = regexp.MustCompile(`(?i)^\s*(` +
		// English: Gmail "On Mon, Jan 5, 2026 at 10:30 AM Ann <a@b> wrote:",
		// Apple Mail "On 5 Jan 2026, at 10:30, Ann <a@b> wrote:",
		// Thunderbird "On 05/01/2026 10:30, Ann wrote:", Yahoo.
		`on\b.+\bwrote` +
		// French: "Le lun. 5 janv. 2026 à 10:30, Ann <a@b> a écrit :".
		`|le\b.+\ba écrit` +
		// German: Gmail "Am Mo., 5. Jan. 2026 um 10:30 Uhr schrieb Ann <a@b>:",
		// Apple Mail "Am 05.01.2026 um 10:30 schrieb Ann <a@b>:".
		`|am\b.+\bschrieb\b.*` +
		// Spanish: "El lun, 5 ene 2026 a las 10:30, Ann (<a@b>) escribió:".
		`|el\b.+\bescribió` +
		// Portuguese: "Em seg., 5 de jan. de 2026 às 10:30, Ann <a@b> escreveu:".
		`|em\b.+\bescreveu` +
		// Italian: "Il giorno lun 5 gen 2026 alle ore 10:30 Ann <a@b> ha scritto:".
		`|il\b.+\bha scritto` +
		// Dutch: Gmail "Op ma 5 jan 2026 om 10:30 schreef Ann <a@b>:",
		// Apple Mail "Op 5 jan. 2026 om 10:30 heeft Ann <a@b> het volgende geschreven:".
		`|op\b.+\b(schreef\b.*|het volgende geschreven)` +
		// Russian: Gmail "пн, 5 янв. 2026 г. в 10:30, Ann <a@b>:", Apple Mail
		// "5 янв. 2026 г., в 10:30, Ann <a@b> написал(а):", Thunderbird
		// "05.01.2026 10:30, Ann пишет:".
		`|(пн|вт|ср|чт|пт|сб|вс|\d).+(написал\(а\)|написала|написал|пишет)` +
		// Chinese: Gmail "Ann <a@b> 于2026年1月5日周一 上午10:30写道：", Apple
		// Mail "2026年1月5日 10:30，Ann <a@b> 写道：", Thunderbird "在 2026/1/5
		// 10:30, Ann 写道:", traditional "於 ... 寫道：".
		`|.*\d.*(写道|寫道)` +
		// Japanese: Gmail "2026年1月5日(月) 10:30 Ann <a@b>:", Apple Mail
		// "2026/01/05 10:30、Ann <a@b>のメール:".
		`|\d.+のメール` +
		// Verbless (Gmail's Japanese and Russian, Yandex): a weekday or a
		// date first, an address last.
		`|((пн|вт|ср|чт|пт|сб|вс),|\d{1,4}\s*[年/.-]\s*\d).+` + addrEnd +
		// Korean: Gmail "2026년 1월 5일 (월) 오전 10:30, Ann <a@b>님이 작성:",
		// Apple Mail "2026. 1. 5. 오전 10:30, Ann <a@b> 작성:".
		`|\d.+작성` +
		`)` + colon + `\s*$`)

	// attributionStartRE is a line that can begin an attribution a client
	// wrapped: a start word of the forms above, or a date, a time or an
	// address in it.
	attributionStartRE = regexp.MustCompile(`(?i)^\s*(on|le|am|el|em|il|op|在|於)\s|\d|@`)
	// sentenceEndRE is the end of a line that ends a sentence of its own,
	// which an attribution does not continue.
	sentenceEndRE = regexp.MustCompile(`[.!?,;:。！？，；：…]\s*$`)
	// addressRE and timeRE are the parts that set an attribution apart from
	// prose: an address, a time of day or a CJK date.
	addressRE = regexp.MustCompile(`[^\s<>()@]+@[^\s<>()@]+\.[^\s<>()@]+`)
	timeRE    = regexp.MustCompile(`\d{1,2}[:：]\d{2}|\d{4}\s*年|\d{4}\s*년`)
)

// attribution looks at lines[i] as the last line of an attribution. It
// returns the index of the attribution's first line, or -1 when there is
// none, and whether everything from it on is history (it is followed by
// unquoted text, and is certainly an attribution). from lists the lines kept
// so far: an attribution a client wrapped begins on one of them.
func attribution(lines []string, i int, from []int) (start int, cut bool) {
	l := strings.TrimRightFunc(lines[i], unicode.IsSpace)
	if len(l) > 400 || !(strings.HasSuffix(l, ":") || strings.HasSuffix(l, "：")) {
		return -1, false
	}
	// The attribution starts at the first line of its paragraph, among the
	// two above it that continue it (a client wrapped it there: Gmail puts
	// "wrote:", or "écrit :", on a line of its own).
	start = i
	for k := len(from) - 1; k >= 0 && from[k] == start-1 && start > i-2; k-- {
		p := lines[start-1]
		if strings.TrimSpace(p) == "" || len(p) > 200 || sentenceEndRE.MatchString(p) || !attributionStartRE.MatchString(p) {
			break
		}
		start--
	}
	evidence := func(s string) bool { return addressRE.MatchString(s) || timeRE.MatchString(s) }
	joined := joinLines(lines[start : i+1])
	whole := attributionEndRE.MatchString(joined) && attributionRE.MatchString(joined) && evidence(joined)
	if !whole {
		// Only the line itself, unwrapped, may be one.
		start, joined = i, strings.TrimSpace(l)
		if !attributionEndRE.MatchString(joined) {
			return -1, false
		}
		whole = attributionRE.MatchString(joined) && evidence(joined)
	}
	next := nextNonBlank(lines, i+1)
	switch {
	case next >= 0 && quoted(lines[next]):
		// Quoted lines follow: whatever its wording, it introduces them.
		return start, false
	case whole && next < 0:
		// The client dropped what it quoted.
		return start, true
	case whole && (start == 0 || strings.TrimSpace(lines[start-1]) == ""):
		return start, true
	}
	return -1, false
}

// joinLines joins wrapped lines with a space, except between two CJK
// characters, which a client wraps without one.
func joinLines(ls []string) string {
	var b strings.Builder
	for k, l := range ls {
		l = strings.TrimSpace(l)
		if k > 0 {
			last, _ := utf8.DecodeLastRuneInString(b.String())
			first, _ := utf8.DecodeRuneInString(l)
			if !(cjk(last) && cjk(first)) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// cjk reports a Chinese, Japanese or Korean character.
func cjk(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// Unquoted history: a separator line, or the header block Outlook writes
// above the original message, in each language's words.
var (
	// separatorRE is a line that introduces the original message of a reply
	// without quoting it.
	separatorRE = regexp.MustCompile(`(?i)^\s*[-_=]{2,}\s*(` +
		`original message|original|ursprüngliche nachricht|message d'origine|mensaje original|mensagem original|` +
		`oorspronkelijk bericht|messaggio originale|исходное сообщение|原始邮件|原始郵件|回复的原邮件|元のメッセージ|원본 메시지` +
		`)\s*[-_=]{2,}\s*$`)
	// forwardRE starts a forwarded message.
	forwardRE = regexp.MustCompile(`(?i)^\s*(-{3,}\s*(` +
		`forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|mensagem encaminhada|` +
		`doorgestuurd bericht|messaggio inoltrato|пересылаемое сообщение|转发邮件|转发的邮件|轉寄郵件|転送されたメッセージ|전달된 메시지` +
		`)\s*-{3,}` +
		`|begin forwarded message:|anfang der weitergeleiteten nachricht:|début du message réexpédié\s?:|inicio del mensaje reenviado:` +
		`|início da mensagem reencaminhada:|inizio messaggio inoltrato:|begin doorgestuurd bericht:|начало переадресованного сообщения:` +
		`)\s*$`)
	// ruleRE is a long line of underscores, which Outlook puts above its header block.
	ruleRE = regexp.MustCompile(`^\s*_{10,}\s*$`)
	// headerFromRE, headerSentRE and headerOtherRE are the fields of the
	// header block Outlook (and QQ Mail, Foxmail, Outlook for Mac) puts above
	// the original message: From, Sent or Date, and To, Cc or Subject, in
	// English, German, French, Spanish, Portuguese, Italian, Dutch, Russian,
	// Chinese, Japanese and Korean, "*From:*" when bold became asterisks.
	headerFromRE = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|da|van|от|发件人|寄件者|寄件人|差出人|보낸\s?사람)\s*\*?` + colon)
	headerSentRE = regexp.MustCompile(`(?i)^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|enviada|fecha|data|inviato|verzonden|отправлено|дата|` +
		`发送时间|时间|日期|寄件日期|傳送時間|送信日時|日時|보낸\s?날짜|날짜)\s*\*?` + colon)
	headerOtherRE = regexp.MustCompile(`(?i)^\s*\*?(to|subject|cc|an|betreff|à|objet|para|asunto|assunto|a|oggetto|aan|onderwerp|кому|тема|копия|` +
		`收件人|主题|抄送|收件者|主旨|副本|宛先|件名|받는\s?사람|제목|참조)\s*\*?` + colon)

	// mobileSignatureRE is the line a phone's mail app appends.
	mobileSignatureRE = regexp.MustCompile(`(?i)^\s*(sent from my (iphone|ipad|android|mobile device|samsung.*|galaxy.*)|sent from (outlook|mail) for (ios|android|windows.*)|` +
		`get outlook for (ios|android)|sent from yahoo mail.*|von meinem iphone gesendet|envoyé de mon iphone|enviado desde mi iphone|enviado do meu iphone|` +
		`inviato da iphone|verzonden vanaf mijn iphone|verstuurd vanaf mijn iphone|отправлено с iphone|` +
		`发自我的iphone|发自我的\s?ipad|从我的iphone发送|從我的 iphone 傳送|來自我的 iphone|iphoneから送信|iphone에서 보냄)\s*$`)
)

// historyStart reports whether unquoted history starts at lines[i]: an
// "Original Message" separator, a rule above a header block, or a header block.
func historyStart(lines []string, i int) bool {
	l := lines[i]
	if separatorRE.MatchString(l) {
		return true
	}
	if ruleRE.MatchString(l) {
		if j := nextNonBlank(lines, i+1); j >= 0 && headerFromRE.MatchString(lines[j]) {
			return true
		}
		return false
	}
	return headerBlock(lines, i)
}

// headerBlock reports a "From:" line followed by a "Sent:"/"Date:" line and
// a "To:"/"Subject:" line within the next few lines.
func headerBlock(lines []string, i int) bool {
	if !headerFromRE.MatchString(lines[i]) {
		return false
	}
	sent, other := false, false
	for j := i + 1; j < len(lines) && j <= i+5; j++ {
		switch {
		case headerSentRE.MatchString(lines[j]):
			sent = true
		case headerOtherRE.MatchString(lines[j]):
			other = true
		}
	}
	return sent && other
}

// dropMobileSignature removes a trailing "Sent from my iPhone" line.
func dropMobileSignature(lines []string) []string {
	end := len(lines)
	for end > 0 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	if end > 0 && mobileSignatureRE.MatchString(lines[end-1]) {
		return lines[:end-1]
	}
	return lines
}

// tidy joins lines, dropping leading and trailing blank lines and runs of more
// than one blank line.
func tidy(lines []string) string {
	var b strings.Builder
	blank := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			blank = b.Len() > 0
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		blank = false
		b.WriteString(l)
	}
	return b.String()
}

// collapse replaces every run of white space in s with one space.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, isSpace), " ")
}

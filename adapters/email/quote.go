package email

import (
	"regexp"
	"strings"
	"unicode"
)

// StripQuoted returns what the sender wrote in a plain-text mail body, without
// the history a mail client quotes below or above it and without the
// signature:
//
//   - lines starting with ">" (quoted text, also when interleaved with answers);
//   - an attribution line such as "On Mon, 6 Jan 2025, Ann <ann@example.com>
//     wrote:" (also wrapped over two lines, and its French, German, Spanish,
//     Portuguese, Dutch, Italian and Chinese ("在 ... 写道：") forms) with the
//     quoted lines after it; when unquoted text follows, everything after it;
//   - everything from "-----Original Message-----" (and its translations), a
//     "________________" rule followed by a header block, or an Outlook header
//     block "From: ... Sent: ... To: ... Subject: ..." (or "发件人: ... 发送时间: ...");
//   - everything from a signature delimiter line "-- " and trailing
//     "Sent from my iPhone"-style lines.
//
// A forwarded message ("---------- Forwarded message ---------", "Begin
// forwarded message:") is kept whole, from its marker on.
//
// When nothing would be left (a message that is all quote), it returns text
// trimmed, unchanged otherwise.
func StripQuoted(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines))
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if forwardRE.MatchString(l) {
			// A forward is what the sender wants read: keep it as it is.
			for _, f := range lines[i:] {
				out = append(out, strings.TrimRightFunc(f, unicode.IsSpace))
			}
			break
		}
		if historyStart(lines, i) {
			break
		}
		if n := attribution(lines, i); n > 0 {
			next := nextNonBlank(lines, i+n)
			if next >= 0 && !quoted(lines[next]) {
				break // unquoted history follows: the rest is history
			}
			i += n - 1
			continue
		}
		if quoted(l) {
			continue
		}
		if signatureDelimiter(l) {
			break
		}
		out = append(out, strings.TrimRightFunc(l, unicode.IsSpace))
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

var (
	// attributionRE matches a whole attribution line, in the languages mail
	// clients write it in.
	attributionRE = regexp.MustCompile(`(?i)^\s*(` +
		`on\b.*\bwrote:` + // English (Gmail, Apple Mail, Thunderbird)
		`|le\b.*\ba écrit\s?:` + // French
		`|am\b.*\bschrieb\b.*:` + // German
		`|el\b.*\bescribió:` + // Spanish
		`|em\b.*\bescreveu:` + // Portuguese
		`|op\b.*\bschreef\b.*:` + // Dutch
		`|il giorno\b.*\bha scritto:` + // Italian
		`|在.*写道[:：]` + // Chinese (simplified)
		`|於.*寫道[:：]` + // Chinese (traditional)
		`)\s*$`)
	// attributionStartRE matches the first line of an attribution a client
	// wrapped, e.g. Gmail's "On Mon, Jan 6, 2025 at 10:02 AM Ann Lee <ann@example.com>"
	// followed by "wrote:".
	attributionStartRE = regexp.MustCompile(`(?i)^\s*(on|le|am|el|em|op|在|於)\b?.*\d`)
	attributionEndRE   = regexp.MustCompile(`(?i)^\s*\S*.*(wrote|a écrit|schrieb|escribió|escreveu|schreef|写道|寫道)\s?[:：]\s*$`)

	// separatorRE is a line that introduces the original message of a reply or
	// forward-like history without quoting it.
	separatorRE = regexp.MustCompile(`(?i)^\s*[-_=]{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|mensagem original|oorspronkelijk bericht|messaggio originale|原始邮件|原始郵件)\s*[-_=]{2,}\s*$`)
	// forwardRE starts a forwarded message.
	forwardRE = regexp.MustCompile(`(?i)^\s*(-{3,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|mensagem encaminhada|doorgestuurd bericht|messaggio inoltrato|转发邮件|轉寄郵件)\s*-{3,}|begin forwarded message:|anfang der weitergeleiteten nachricht:|début du message réexpédié\s?:)\s*$`)
	// ruleRE is a long line of underscores, which Outlook puts above its header block.
	ruleRE = regexp.MustCompile(`^\s*_{10,}\s*$`)
	// headerFromRE and headerSentRE are the first two lines of a header block
	// that Outlook (and QQ/Foxmail, in Chinese) puts above the original message.
	headerFromRE  = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|van|da|发件人|寄件者)\s*\*?\s*[:：]`)
	headerSentRE  = regexp.MustCompile(`(?i)^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|fecha|verzonden|inviato|发送时间|日期|寄件日期|時間)\s*\*?\s*[:：]`)
	headerOtherRE = regexp.MustCompile(`(?i)^\s*\*?(to|subject|cc|an|betreff|à|objet|para|asunto|aan|onderwerp|a|oggetto|收件人|主题|抄送|收件者|主旨)\s*\*?\s*[:：]`)

	// mobileSignatureRE is the line a phone's mail app appends.
	mobileSignatureRE = regexp.MustCompile(`(?i)^\s*(sent from my (iphone|ipad|android|mobile device|samsung.*|galaxy.*)|sent from (outlook|mail) for (ios|android|windows.*)|get outlook for (ios|android)|sent from yahoo mail.*|von meinem iphone gesendet|envoyé de mon iphone|enviado desde mi iphone|发自我的iphone|发自我的\s?ipad|从我的iphone发送|來自我的 iphone)\s*$`)
)

// attribution returns how many lines (1 or 2) the attribution starting at
// lines[i] spans, or 0.
func attribution(lines []string, i int) int {
	l := lines[i]
	if len(l) > 400 {
		return 0
	}
	if attributionRE.MatchString(l) {
		return 1
	}
	if i+1 < len(lines) && attributionStartRE.MatchString(l) && len(lines[i+1]) < 200 &&
		attributionEndRE.MatchString(lines[i+1]) && attributionRE.MatchString(l+" "+strings.TrimSpace(lines[i+1])) {
		return 2
	}
	return 0
}

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

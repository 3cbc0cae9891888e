package kb

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Terms splits text into the terms the index matches on: lower-cased words
// of letters and digits (English ones lightly stemmed; common words are
// kept, BM25's weights make little of them and "my card" is not "a card"),
// and, for Chinese, Japanese and Korean, which are written without spaces,
// the character bigrams of each run (a lone character stands for itself).
// Query and documents go through the same function, so "refunds" finds
// "refund" and "退款" finds "我要退款".
func Terms(text string) []string {
	var out []string
	var word strings.Builder
	var cjk []rune
	flushWord := func() {
		if word.Len() == 0 {
			return
		}
		out = append(out, stem(word.String()))
		word.Reset()
	}
	flushCJK := func() {
		switch len(cjk) {
		case 0:
			return
		case 1:
			out = append(out, string(cjk))
		default:
			for i := 0; i+1 < len(cjk); i++ {
				out = append(out, string(cjk[i:i+2]))
			}
		}
		cjk = cjk[:0]
	}
	for _, r := range text {
		switch {
		case isCJK(r):
			flushWord()
			cjk = append(cjk, r)
		case r == '\'' || r == '’':
			// "hasn't" is one word, "hasnt".
			flushCJK()
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			flushCJK()
			if word.Len() < maxWordBytes {
				word.WriteRune(unicode.ToLower(r))
			}
		default:
			flushWord()
			flushCJK()
		}
	}
	flushWord()
	flushCJK()
	return out
}

// maxWordBytes bounds one term: longer runs of letters are cut.
const maxWordBytes = 64

// isCJK reports whether r is written without spaces between words: Han,
// kana, Hangul.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// stem strips the commonest English inflections (plural, -ing, -ed, -ly),
// enough for "charged", "charges" and "charging" to meet. Words of other
// scripts and short words are kept as they are.
func stem(w string) string {
	if len(w) <= 3 || !isASCIILetters(w) {
		return w
	}
	for _, s := range []struct{ suffix, repl string }{
		{"ies", "y"}, {"sses", "ss"}, {"ing", ""}, {"ed", ""}, {"ly", ""}, {"es", ""}, {"s", ""},
	} {
		if strings.HasSuffix(w, s.suffix) && !strings.HasSuffix(w, "ss") {
			base := w[:len(w)-len(s.suffix)] + s.repl
			if utf8.RuneCountInString(base) < 3 {
				continue
			}
			// "stopped" -> "stop", "charging" -> "charg" (as "charge" -> "charg").
			if n := len(base); n >= 2 && base[n-1] == base[n-2] && s.repl == "" && base[n-1] != 'l' && base[n-1] != 's' {
				base = base[:n-1]
			}
			return strings.TrimSuffix(base, "e")
		}
	}
	return strings.TrimSuffix(w, "e")
}

// isASCIILetters reports whether w is only a-z.
func isASCIILetters(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

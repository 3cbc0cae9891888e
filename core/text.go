package core

import "unicode/utf8"

// Truncate cuts s to at most n bytes without splitting a UTF-8 character: the
// one way omnigate shortens a string to fit a byte limit (a meta value, a
// header, a log field).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Ellipsize cuts s to at most n characters (runes), ending in "…" when it was
// cut: for what people read (titles, names, subjects).
func Ellipsize(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

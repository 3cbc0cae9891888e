package routing

import (
	"strings"
	"unicode"

	"github.com/omnigate/omnigate/core/lang"
)

// LanguageDetector guesses the language of a message's text as a BCP 47 tag
// ("en", "zh"), or "" when it cannot tell. *lang.Detector is one. Detect is called for every customer
// message whose channel did not say, from several goroutines at once.
type LanguageDetector interface {
	Detect(text string) string
}

// ScriptRule maps a Unicode script to a language: when at least Share of the
// letters of a text are in Script, the text is in Language.
type ScriptRule struct {
	Script   *unicode.RangeTable
	Language string
	Share    float64
}

// ScriptDetector is a detector of scripts: it counts letters by script and
// returns the Language of the first rule whose script has its share of the
// letters, else Fallback. It knows nothing of words, so it tells scripts
// apart, not languages that share one; extend Rules (or implement
// LanguageDetector) for more.
type ScriptDetector struct {
	Rules    []ScriptRule
	Fallback string
}

// DefaultDetector is the detector routing uses unless Deps.Detector says
// otherwise: core/lang's, which tells apart the languages of
// lang.DefaultLanguages (fr, es, de, pt, it, nl, ru, ja, ko, zh and en) and
// returns "" for a text too short or too unsure to tell, so that rules on
// languages do not match a guess and templates fall back to
// default_language. See docs/routing.md for how well it does.
func DefaultDetector() LanguageDetector { return lang.Default() }

// ScriptDetectorCJK tells Japanese kana (ja) and Korean Hangul (ko) before
// Han characters (zh), and returns Fallback for everything else: a detector
// of scripts alone, for a deployment that wants no language models. A little
// kana among Han characters is Japanese: Japanese is written with both.
func ScriptDetectorCJK(fallback string) *ScriptDetector {
	return &ScriptDetector{
		Rules: []ScriptRule{
			{Script: unicode.Hiragana, Language: "ja", Share: 0.1},
			{Script: unicode.Katakana, Language: "ja", Share: 0.1},
			{Script: unicode.Hangul, Language: "ko", Share: 0.2},
			{Script: unicode.Han, Language: "zh", Share: 0.2},
		},
		Fallback: fallback,
	}
}

// Detect implements LanguageDetector.
func (d *ScriptDetector) Detect(text string) string {
	counts := make([]int, len(d.Rules))
	letters := 0
	for _, r := range text {
		if !unicode.IsLetter(r) {
			continue
		}
		letters++
		for i, rule := range d.Rules {
			if unicode.Is(rule.Script, r) {
				counts[i]++
			}
		}
	}
	if letters == 0 {
		return ""
	}
	for i, rule := range d.Rules {
		if counts[i] > 0 && float64(counts[i]) >= rule.Share*float64(letters) {
			return rule.Language
		}
	}
	return d.Fallback
}

// baseLanguage is the primary subtag of a BCP 47 tag, lower-cased: "pt-BR" ->
// "pt", "zh_Hans" -> "zh".
func baseLanguage(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	return tag
}

// isCJK reports whether r is written without spaces between words.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

var (
	_ LanguageDetector = (*lang.Detector)(nil)
	_ LanguageDetector = (*ScriptDetector)(nil)
)

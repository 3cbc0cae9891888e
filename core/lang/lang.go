// Package lang tells which language a customer wrote in, from the text of a
// message: "fr", "de", "ja". Routing rules, auto-replies and ticket notices
// use it when the channel did not say.
//
// The detector is lingua-go's n-gram models in low-accuracy mode (trigrams
// only), restricted to the languages a deployment configures: on 20 short
// support messages per language it gets 213 of 220 right (97%) with the
// default eleven languages and says "" (unsure) for 2 more, in 0.15 to 0.3 ms
// per message, with about 7 MB of models on the heap; docs/routing.md has the
// numbers and how to measure them again.
package lang

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/pemistahl/lingua-go"
)

// DefaultLanguages are the languages the detector chooses among unless
// configured otherwise: the ones omnigate's customers write most, as ISO
// 639-1 codes.
var DefaultLanguages = []string{"en", "fr", "es", "de", "pt", "it", "nl", "ru", "ja", "ko", "zh"}

// DefaultMinConfidence is the margin by which the best language must lead the
// runner-up unless configured otherwise; below it Detect returns "".
const DefaultMinConfidence = 0.2

// Options configure a Detector.
type Options struct {
	// Languages are the ISO 639-1 codes to choose among, at least two; more
	// cost memory (under 1 MB each) and a little time. Default
	// DefaultLanguages.
	Languages []string
	// MinConfidence is how far, from 0 to 1, the best language's confidence
	// must be ahead of the next one's for Detect to name it. Default
	// DefaultMinConfidence; a negative value means 0.
	MinConfidence float64
}

// Detector guesses the language of short texts. It is safe for concurrent
// use, and the same text always gets the same answer.
type Detector struct {
	d        lingua.LanguageDetector
	min      float64
	langs    []string
	loadOnce sync.Once
}

// New builds a detector for opts. It loads no model yet: the first Detect, or
// Preload, does.
func New(opts Options) (*Detector, error) {
	codes := opts.Languages
	if len(codes) == 0 {
		codes = DefaultLanguages
	}
	if err := Check(codes); err != nil {
		return nil, err
	}
	langs := make([]lingua.Language, 0, len(codes))
	norm := make([]string, 0, len(codes))
	for _, c := range codes {
		c = strings.ToLower(strings.TrimSpace(c))
		if slices.Contains(norm, c) {
			continue
		}
		norm = append(norm, c)
		langs = append(langs, lingua.GetLanguageFromIsoCode639_1(lingua.GetIsoCode639_1FromValue(c)))
	}
	if len(langs) < 2 {
		return nil, fmt.Errorf("lang: need at least two different languages to choose among, got %v", codes)
	}
	min := opts.MinConfidence
	if min == 0 {
		min = DefaultMinConfidence
	}
	return &Detector{
		d:     lingua.NewLanguageDetectorBuilder().FromLanguages(langs...).WithLowAccuracyMode().Build(),
		min:   max(min, 0),
		langs: norm,
	}, nil
}

// Check reports codes that the detector does not know, and a list of fewer
// than two languages, in one error that lists what it knows; config
// validation uses it.
func Check(codes []string) error {
	var unknown []string
	for _, c := range codes {
		if !Knows(c) {
			unknown = append(unknown, fmt.Sprintf("%q", c))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown language code %s: want ISO 639-1 codes such as %s", strings.Join(unknown, ", "), strings.Join(Known()[:12], ", "))
	}
	if len(codes) < 2 {
		return fmt.Errorf("name at least two languages to choose among, got %d", len(codes))
	}
	return nil
}

// Knows reports whether the detector can tell the language of ISO 639-1
// code.
func Knows(code string) bool {
	return lingua.GetIsoCode639_1FromValue(strings.TrimSpace(code)) != lingua.UnknownIsoCode639_1
}

// Known lists the ISO 639-1 codes the detector can tell, sorted.
func Known() []string {
	var out []string
	for _, l := range lingua.AllLanguages() {
		out = append(out, strings.ToLower(l.IsoCode639_1().String()))
	}
	slices.Sort(out)
	return out
}

// Languages are the ISO 639-1 codes d chooses among.
func (d *Detector) Languages() []string { return slices.Clone(d.langs) }

// Preload loads the models now instead of on the first Detect (about 0.2 s
// for the default languages), so that the first customer does not wait.
func (d *Detector) Preload() {
	d.loadOnce.Do(func() { d.d.ComputeLanguageConfidenceValues("preload the models") })
}

// minLetters is the fewest letters a text needs in a script that separates
// words with spaces: "ok", "hi" or "no" say nothing of a language.
const minLetters = 4

// Detect returns the ISO 639-1 code of text's language, or "" when the text
// is too short or no language leads the others by MinConfidence. It reads
// the first MaxDetectBytes of text (see Head).
func (d *Detector) Detect(text string) string {
	text = Head(text, MaxDetectBytes)
	letters, cjk := 0, false
	for _, r := range text {
		if unicode.IsLetter(r) {
			letters++
			cjk = cjk || unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
		}
	}
	if letters == 0 || (!cjk && letters < minLetters) {
		return ""
	}
	d.Preload()
	cv := d.d.ComputeLanguageConfidenceValues(text)
	if len(cv) == 0 || cv[0].Value() == 0 {
		return ""
	}
	lead := cv[0].Value()
	if len(cv) > 1 {
		lead -= cv[1].Value()
	}
	if lead < d.min {
		return ""
	}
	return strings.ToLower(cv[0].Language().IsoCode639_1().String())
}

// shared is the detector of the default options, built once.
var shared = sync.OnceValue(func() *Detector {
	d, err := New(Options{})
	if err != nil {
		panic(err) // the defaults are valid; a test checks them
	}
	return d
})

// Default returns the detector of the default options, shared by every
// caller in the process.
func Default() *Detector { return shared() }

// MaxDetectBytes is how much of a text Detect reads. A few sentences tell the
// language as well as a whole letter does, and the detector's cost grows with
// the text: on 1 KiB customer messages it was a quarter of serve's CPU.
const MaxDetectBytes = 300

// Head is the start of text, at most n bytes, cut after the last space when
// there is one in the second half (so that no word is cut in two), else at a
// character boundary: the part of a long text a model needs to read.
func Head(text string, n int) string {
	if len(text) <= n {
		return text
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	head := text[:n]
	if i := strings.LastIndexAny(head, " \n\t"); i >= n/2 {
		head = head[:i]
	}
	return head
}

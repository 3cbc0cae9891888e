// Package textfeat turns text into sparse feature vectors for insight's linear
// models: lower-cased words, word bigrams and character n-grams of each word,
// and for Chinese, Japanese and Korean (which have no spaces) character
// n-grams of each run of those scripts. Features are hashed to 64 bits, then
// looked up in a Vocabulary learnt from training text, which weighs them by
// sublinear TF-IDF and normalizes each vector to unit length.
package textfeat

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Options choose the features. The zero value is not useful: start from
// DefaultOptions.
type Options struct {
	// Words adds each word; Bigrams each pair of neighbouring words.
	Words   bool `json:"words"`
	Bigrams bool `json:"bigrams"`
	// CharMin and CharMax bound the character n-grams taken from each word
	// padded with a space on both sides; 0 takes none.
	CharMin int `json:"char_min"`
	CharMax int `json:"char_max"`
	// CJKMax is the longest character n-gram taken from a run of Han, kana
	// or Hangul (from 1).
	CJKMax int `json:"cjk_max"`
}

// DefaultOptions are the features the shipped models use.
func DefaultOptions() Options {
	return Options{Words: true, Bigrams: true, CharMin: 2, CharMax: 5, CJKMax: 3}
}

// Validate reports options no model can use.
func (o Options) Validate() error {
	switch {
	case o.CharMin < 0 || o.CharMax < o.CharMin || o.CharMax > 8:
		return fmt.Errorf("textfeat: char n-grams %d..%d: want 0 <= min <= max <= 8", o.CharMin, o.CharMax)
	case o.CJKMax < 0 || o.CJKMax > 6:
		return fmt.Errorf("textfeat: cjk n-grams up to %d: want 0..6", o.CJKMax)
	case !o.Words && !o.Bigrams && o.CharMax == 0 && o.CJKMax == 0:
		return errors.New("textfeat: no feature chosen")
	}
	return nil
}

// Feature kinds, mixed into the hash so that the word "ab" and the character
// bigram "ab" differ.
const (
	kindWord byte = iota + 1
	kindBigram
	kindChar
	kindCJK
)

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func hashKind(k byte) uint64 { return (fnvOffset ^ uint64(k)) * fnvPrime }

// IsCJK reports whether r is written without spaces between words: Han,
// Hiragana, Katakana or Hangul.
func IsCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// Words splits text into lower-cased words of letters, digits and
// apostrophes (curly ones straightened), and runs of CJK characters, each run
// one element. Exported for the tests and for callers that want the same
// words.
func Words(text string) []string {
	text = strings.ToLower(strings.ReplaceAll(text, "’", "'"))
	var out []string
	start, cjk := -1, false
	flush := func(i int) {
		if start >= 0 {
			w := strings.Trim(text[start:i], "'")
			if w != "" {
				out = append(out, w)
			}
		}
		start = -1
	}
	for i, r := range text {
		isC := IsCJK(r)
		isW := !isC && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || unicode.Is(unicode.Mn, r))
		switch {
		case isC && (start < 0 || !cjk):
			flush(i)
			start, cjk = i, true
		case isW && (start < 0 || cjk):
			flush(i)
			start, cjk = i, false
		case !isC && !isW:
			flush(i)
		}
	}
	flush(len(text))
	return out
}

// Hashes appends the hashed features of text to dst, one per occurrence, and
// returns it.
func (o Options) Hashes(dst []uint64, text string) []uint64 {
	words := Words(text)
	prev := ""
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if IsCJK(r) {
			dst = o.cjk(dst, w)
			prev = ""
			continue
		}
		if o.Words {
			dst = append(dst, hashString(hashKind(kindWord), w))
		}
		if o.Bigrams && prev != "" {
			h := hashString(hashKind(kindBigram), prev)
			h = hashString(h^' ', w)
			dst = append(dst, h)
		}
		prev = w
		if o.CharMax > 0 {
			dst = o.chars(dst, w)
		}
	}
	return dst
}

// chars appends the character n-grams of " w ".
func (o Options) chars(dst []uint64, w string) []uint64 {
	var buf [64]int
	bounds := buf[:0] // byte offsets of each rune of " w ", and the end
	padded := " " + w + " "
	for i := range padded {
		bounds = append(bounds, i)
	}
	bounds = append(bounds, len(padded))
	runes := len(bounds) - 1
	for n := max(o.CharMin, 1); n <= o.CharMax; n++ {
		if n > runes {
			break
		}
		if n == 1 {
			continue // single letters say little and are many
		}
		for i := 0; i+n <= runes; i++ {
			dst = append(dst, hashString(hashKind(kindChar), padded[bounds[i]:bounds[i+n]]))
		}
	}
	return dst
}

// cjk appends the 1..CJKMax character n-grams of a CJK run.
func (o Options) cjk(dst []uint64, run string) []uint64 {
	var buf [64]int
	bounds := buf[:0]
	for i := range run {
		bounds = append(bounds, i)
	}
	bounds = append(bounds, len(run))
	runes := len(bounds) - 1
	for n := 1; n <= o.CJKMax && n <= runes; n++ {
		for i := 0; i+n <= runes; i++ {
			dst = append(dst, hashString(hashKind(kindCJK), run[bounds[i]:bounds[i+n]]))
		}
	}
	return dst
}

// Vector is a sparse vector: Index[i] has the value Value[i]; indexes are
// increasing.
type Vector struct {
	Index []int32
	Value []float32
}

// Vocabulary maps hashed features to columns and weighs them by inverse
// document frequency. Build it with Fit or NewVocabulary; it is read-only
// afterwards and safe for concurrent use.
type Vocabulary struct {
	Options Options
	// Hashes are the features, sorted; column i is Hashes[i].
	Hashes []uint64
	// IDF is the weight of each column.
	IDF []float32
}

// Fit learns a vocabulary from texts: the features found in at least minDF
// of them.
func Fit(o Options, texts []string, minDF int) (*Vocabulary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	df := map[uint64]int32{}
	var hs []uint64
	for _, t := range texts {
		hs = o.Hashes(hs[:0], t)
		slices.Sort(hs)
		hs = slices.Compact(hs)
		for _, h := range hs {
			df[h]++
		}
	}
	var keep []uint64
	for h, n := range df {
		if int(n) >= minDF {
			keep = append(keep, h)
		}
	}
	slices.Sort(keep)
	idf := make([]float32, len(keep))
	n := float64(len(texts))
	for i, h := range keep {
		idf[i] = float32(math.Log((1+n)/(1+float64(df[h]))) + 1)
	}
	return NewVocabulary(o, keep, idf)
}

// NewVocabulary rebuilds a vocabulary from its parts, as read from a model
// file.
func NewVocabulary(o Options, hashes []uint64, idf []float32) (*Vocabulary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(hashes) != len(idf) {
		return nil, fmt.Errorf("textfeat: %d features but %d weights", len(hashes), len(idf))
	}
	// Features are found by binary search in the sorted hashes: no index to
	// build when a model of half a million features loads.
	v := &Vocabulary{Options: o, Hashes: hashes, IDF: idf}
	for i, h := range hashes {
		if i > 0 && hashes[i-1] >= h {
			return nil, errors.New("textfeat: features not sorted")
		}
		if w := idf[i]; math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return nil, fmt.Errorf("textfeat: weight of feature %d is %v", i, w)
		}
	}
	return v, nil
}

// Len is the number of columns.
func (v *Vocabulary) Len() int { return len(v.Hashes) }

// Vector returns text's vector: for each known feature (1 + ln tf) * idf,
// the whole scaled to unit length. scratch, when not nil, is reused for the
// hashes.
func (v *Vocabulary) Vector(text string, scratch *[]uint64) Vector {
	var hs []uint64
	if scratch != nil {
		hs = (*scratch)[:0]
	}
	hs = v.Options.Hashes(hs, text)
	if scratch != nil {
		*scratch = hs
	}
	idx := make([]int32, 0, len(hs))
	for _, h := range hs {
		if i, ok := slices.BinarySearch(v.Hashes, h); ok {
			idx = append(idx, int32(i))
		}
	}
	slices.Sort(idx)
	out := Vector{Index: idx[:0], Value: make([]float32, 0, len(idx))}
	norm := 0.0
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && idx[j] == idx[i] {
			j++
		}
		w := (1 + math.Log(float64(j-i))) * float64(v.IDF[idx[i]])
		out.Index = append(out.Index, idx[i])
		out.Value = append(out.Value, float32(w))
		norm += w * w
		i = j
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range out.Value {
			out.Value[i] *= inv
		}
	}
	return out
}

package textfeat_test

import (
	"math"
	"slices"
	"testing"

	"github.com/omnigate/omnigate/insight/textfeat"
)

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"My card hasn’t arrived!", []string{"my", "card", "hasn't", "arrived"}},
		{"卡还没到, where is it?", []string{"卡还没到", "where", "is", "it"}},
		{"top-up £20 'now'", []string{"top", "up", "20", "now"}},
		{"我的card丢了", []string{"我的", "card", "丢了"}},
		{"", nil},
	} {
		if got := textfeat.Words(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHashes_Counts(t *testing.T) {
	o := textfeat.Options{Words: true, Bigrams: true, CharMin: 2, CharMax: 3, CJKMax: 2}
	// "ab cd": 2 words, 1 bigram, " ab " gives 3 bigrams and 2 trigrams, so
	// does " cd ".
	if n := len(o.Hashes(nil, "ab cd")); n != 2+1+5+5 {
		t.Errorf("ab cd: %d features, want 13", n)
	}
	// A CJK run of 3 characters: 3 unigrams and 2 bigrams, no words.
	if n := len(o.Hashes(nil, "退款了")); n != 5 {
		t.Errorf("退款了: %d features, want 5", n)
	}
	// The word "ab" and the character bigram "ab" differ.
	hs := o.Hashes(nil, "ab")
	slices.Sort(hs)
	if len(slices.Compact(hs)) != len(o.Hashes(nil, "ab")) {
		t.Errorf("features of ab collide: %v", hs)
	}
}

func TestVocabulary_Vector(t *testing.T) {
	o := textfeat.DefaultOptions()
	texts := []string{"my card is lost", "my card has not arrived", "lost my phone", "我的卡丢了", "卡丢了怎么办"}
	v, err := textfeat.Fit(o, texts, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() == 0 {
		t.Fatal("empty vocabulary")
	}
	x := v.Vector("my card is lost lost", nil)
	norm := 0.0
	for i, w := range x.Value {
		norm += float64(w) * float64(w)
		if i > 0 && x.Index[i] <= x.Index[i-1] {
			t.Fatalf("indexes not increasing: %v", x.Index)
		}
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("norm² = %v, want 1", norm)
	}
	if y := v.Vector("zzzz qqqq", nil); len(y.Index) != 0 {
		t.Errorf("unknown words gave %d features", len(y.Index))
	}
	if y := v.Vector("卡丢了", nil); len(y.Index) == 0 {
		t.Error("Chinese text gave no feature")
	}
}

func TestOptions_Validate(t *testing.T) {
	for _, o := range []textfeat.Options{{}, {Words: true, CharMin: 3, CharMax: 2}, {Words: true, CJKMax: 9}} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := textfeat.DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
}

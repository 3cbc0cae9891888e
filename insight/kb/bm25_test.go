package kb_test

import (
	"slices"
	"testing"

	"github.com/omnigate/omnigate/insight/kb"
)

func TestTerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Where is my CARD?", []string{"wher", "is", "my", "card"}},
		{"charged charges charging", []string{"charg", "charg", "charg"}},
		{"I haven't got it", []string{"i", "havent", "got", "it"}},
		{"transferred transfers", []string{"transfer", "transfer"}},
		{"我要退款", []string{"我要", "要退", "退款"}},
		{"卡 card 丢了!", []string{"卡", "card", "丢了"}},
		{"", nil},
	} {
		if got := kb.Terms(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Terms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestIndex_Search ranks by BM25: the article whose questions share the
// rarer words wins, an article is found by its title, Chinese by bigrams,
// and a query of unknown words finds nothing.
func TestIndex_Search(t *testing.T) {
	ix := kb.NewIndex([]kb.Article{
		{ID: "card", Title: "Card delivery", Questions: []string{"my card has not arrived", "when will my card come"}, Answer: "a"},
		{ID: "pin", Questions: []string{"I forgot my card PIN", "how do I reset my pin"}, Answer: "b"},
		{ID: "refund", Lang: "zh", Questions: []string{"我要退款", "退款多久到账"}, Answer: "c"},
		{ID: "fee", Name: "fees", Answer: "There is no fee for top ups by bank transfer."},
	})
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"my card still has not arrived", []string{"card", "pin"}},
		{"reset PIN", []string{"pin"}},
		{"card delivery", []string{"card", "pin"}},
		{"退款什么时候到账", []string{"refund"}},
		{"is there a fee for a bank transfer", []string{"fee"}},
		{"zzz qqq", nil},
	} {
		var got []string
		for _, h := range ix.Search(tc.q, 2) {
			got = append(got, h.Article.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Search(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
	hits := ix.Search("card", 5)
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("hits not in score order: %v", hits)
		}
	}
	if a, ok := ix.Answer("fees"); !ok || a.ID != "fee" {
		t.Errorf("Answer(fees) = %v, %v", a, ok)
	}
	if _, ok := ix.Answer("nope"); ok {
		t.Error("Answer(nope) found something")
	}
	if got := kb.NewIndex(nil).Search("card", 3); got != nil {
		t.Errorf("empty index found %v", got)
	}
}

// BenchmarkIndex_Search is one search of a 77-article knowledge base of
// 100 questions each.
func BenchmarkIndex_Search(b *testing.B) {
	var arts []kb.Article
	words := []string{"card", "pin", "transfer", "fee", "refund", "account", "top", "up", "cash", "atm", "exchange", "rate", "limit", "verify", "identity"}
	for i := range 77 {
		var qs []string
		for j := range 100 {
			qs = append(qs, words[(i+j)%len(words)]+" "+words[(i*j)%len(words)]+" my "+words[j%len(words)])
		}
		arts = append(arts, kb.Article{ID: string(rune('a' + i%26)), Questions: qs, Answer: "x"})
	}
	ix := kb.NewIndex(arts)
	b.ResetTimer()
	for b.Loop() {
		ix.Search("why was my card transfer fee so high", 3)
	}
}

package kb

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// BM25 parameters: k1 bounds what a repeated term adds, b how much a long
// document is discounted. The textbook values: on Banking77
// (docs/models.md) others move top-3 by less than half a point.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// How an article's score is made of its two parts. Each question of an
// article is a document; the article's best nearQuestions questions vote,
// each worth questionDecay of the one before (a near neighbour vote: one
// lucky question does not win alone). The article as one document (all its
// questions and its title) adds articleWeight of its own score, each part
// first divided by the best of its kind. Measured on Banking77: the
// questions alone 94.9% top-3, with the article part 96.2%.
const (
	nearQuestions = 10
	questionDecay = 0.8
	articleWeight = 0.5
)

// voteWeight is the weight of an article's n-th best question.
var voteWeight = func() (w [nearQuestions]float64) {
	w[0] = 1
	for i := 1; i < nearQuestions; i++ {
		w[i] = w[i-1] * questionDecay
	}
	return w
}()

// posting is one document holding a term, and how often.
type posting struct {
	doc int32
	tf  uint16
}

// bm25 is one BM25 index: documents of terms.
type bm25 struct {
	docLen []uint16
	avgLen float64
	terms  map[string][]posting
}

// add indexes a document and returns its number.
func (b *bm25) add(terms []string) int32 {
	doc := int32(len(b.docLen))
	b.docLen = append(b.docLen, uint16(min(len(terms), math.MaxUint16)))
	tf := map[string]int{}
	for _, t := range terms {
		tf[t]++
	}
	for t, n := range tf {
		b.terms[t] = append(b.terms[t], posting{doc: doc, tf: uint16(min(n, math.MaxUint16))})
	}
	return doc
}

// done computes the average document length, once every document is added.
func (b *bm25) done() {
	var total int
	for _, n := range b.docLen {
		total += int(n)
	}
	if len(b.docLen) > 0 {
		b.avgLen = max(float64(total)/float64(len(b.docLen)), 1)
	}
}

// score adds to scores, by document, the BM25 score of the (distinct) query
// terms q, and appends the documents it scores first to touched.
func (b *bm25) score(q []string, scores []float64, touched []int32) []int32 {
	n := float64(len(b.docLen))
	for _, t := range q {
		ps := b.terms[t]
		if len(ps) == 0 {
			continue
		}
		df := float64(len(ps))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for _, p := range ps {
			tf := float64(p.tf)
			norm := bm25K1 * (1 - bm25B + bm25B*float64(b.docLen[p.doc])/b.avgLen)
			if scores[p.doc] == 0 {
				touched = append(touched, p.doc)
			}
			scores[p.doc] += idf * tf * (bm25K1 + 1) / (tf + norm)
		}
	}
	return touched
}

// Index is a BM25 index of articles, searched by question: see the
// constants above for how an article scores. It is immutable once built and
// safe for concurrent use.
type Index struct {
	articles []Article
	// questions has a document per question (and title), of article
	// questionArt[doc]; whole has a document per article.
	questions   bm25
	questionArt []int32
	whole       bm25
	names       map[string]int
}

// Hit is one article a search found.
type Hit struct {
	Article *Article
	// Score is between 0 and 1+articleWeight; only its order among the hits
	// of one search means something.
	Score float64
}

// NewIndex indexes arts. An article without questions or title is found by
// its answer. The first article of a name is the canned answer of that name.
func NewIndex(arts []Article) *Index {
	ix := &Index{
		articles:  slices.Clone(arts),
		questions: bm25{terms: map[string][]posting{}},
		whole:     bm25{terms: map[string][]posting{}},
		names:     map[string]int{},
	}
	for i := range ix.articles {
		a := &ix.articles[i]
		if _, dup := ix.names[a.Name]; a.Name != "" && !dup {
			ix.names[a.Name] = i
		}
		docs := slices.Clone(a.Questions)
		if a.Title != "" {
			docs = append(docs, a.Title)
		}
		if len(docs) == 0 {
			docs = []string{a.Answer}
		}
		for _, d := range docs {
			if ts := Terms(d); len(ts) > 0 {
				ix.questions.add(ts)
				ix.questionArt = append(ix.questionArt, int32(i))
			}
		}
		ix.whole.add(Terms(strings.Join(docs, "\n")))
	}
	ix.questions.done()
	ix.whole.done()
	return ix
}

// Len is the number of articles.
func (ix *Index) Len() int { return len(ix.articles) }

// Articles returns the indexed articles, in the order given to NewIndex.
func (ix *Index) Articles() []Article { return slices.Clone(ix.articles) }

// Answer returns the article named name (a canned answer).
func (ix *Index) Answer(name string) (Article, bool) {
	i, ok := ix.names[name]
	if !ok {
		return Article{}, false
	}
	return ix.articles[i], true
}

// Search returns the (at most) k articles that best answer query, best
// first; none when no term of it is in the index. A hit's Article points
// into the index: do not change it.
func (ix *Index) Search(query string, k int) []Hit {
	if k <= 0 || len(ix.articles) == 0 {
		return nil
	}
	q := Terms(query)
	slices.Sort(q)
	q = slices.Compact(q)

	byDoc := make([]float64, len(ix.questions.docLen))
	docs := ix.questions.score(q, byDoc, nil)
	// Each article's best questions, best first.
	best := map[int32]*[nearQuestions]float64{}
	for _, doc := range docs {
		a, sc := ix.questionArt[doc], byDoc[doc]
		top := best[a]
		if top == nil {
			top = new([nearQuestions]float64)
			best[a] = top
		}
		for i := range top {
			if sc > top[i] {
				copy(top[i+1:], top[i:nearQuestions-1])
				top[i] = sc
				break
			}
		}
	}
	near := make([]float64, len(ix.articles))
	var bestNear float64
	for a, top := range best {
		for i, sc := range top {
			near[a] += voteWeight[i] * sc
		}
		bestNear = max(bestNear, near[a])
	}
	whole := make([]float64, len(ix.articles))
	arts := ix.whole.score(q, whole, nil)
	var bestWhole float64
	for _, a := range arts {
		bestWhole = max(bestWhole, whole[a])
	}

	total := map[int32]float64{}
	for a := range best {
		total[a] = near[a] / bestNear
	}
	for _, a := range arts {
		total[a] += articleWeight * whole[a] / bestWhole
	}
	hits := make([]Hit, 0, len(total))
	for a, s := range total {
		hits = append(hits, Hit{Article: &ix.articles[a], Score: s})
	}
	slices.SortFunc(hits, func(x, y Hit) int {
		return cmp.Or(cmp.Compare(y.Score, x.Score), cmp.Compare(x.Article.ID, y.Article.ID))
	})
	return hits[:min(k, len(hits))]
}

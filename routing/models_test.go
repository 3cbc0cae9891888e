package routing_test

import (
	"slices"
	"testing"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/insight/models"
	"github.com/omnigate/omnigate/routing"
)

// shipped are the models shipped in the binary, as omnigate serve loads them
// without a routing.models section.
var shipped = models.Load(models.Config{}, nil)

// modelsConfig routes card and transfer questions by intent, and escalates
// to a senior queue.
func modelsConfig() routing.Config {
	cfg := routing.Config{
		DefaultQueue: "general",
		Queues:       map[string]routing.Queue{"general": {}, "cards": {}, "senior": {}},
		Rules: []routing.Rule{
			{Name: "cards", When: routing.Match{Intents: []string{"card_arrival", "lost_or_stolen_card", "card_not_working"}, MinIntentConf: 0.5}, Then: routing.Action{Queue: "cards", Tags: []string{"cards"}}},
		},
		Escalation: routing.Escalation{Queue: "senior", Tags: []string{"escalated"}},
	}
	cfg.SetDefaults()
	return cfg
}

func explainModels(t *testing.T, cfg routing.Config, text string) routing.Explanation {
	t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, "web")
	m.From, m.Text = "web:v1", text
	e, err := routing.ExplainWith(cfg, m, nil, monday10, routing.NewModelScorer(shipped), shipped)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A banking question routes by its intent; an angry message with no word of
// the lexicon's escalates by the sentiment model.
func TestModels_IntentRuleAndModelEscalation(t *testing.T) {
	cfg := modelsConfig()
	e := explainModels(t, cfg, "I ordered my new card ten days ago and it is still not here")
	if e.Intent != "card_arrival" || e.IntentConfidence < 0.5 || e.Decision.Queue != "cards" || e.Decision.Escalated {
		t.Errorf("card question: intent %s %.2f, decision %+v", e.Intent, e.IntentConfidence, e.Decision)
	}
	if e.Score.Source != "model" {
		t.Errorf("scored by %q, want the model", e.Score.Source)
	}

	// Hardly anything of the lexicon here.
	angry := "I regret ever opening an account with you, the app is a mess and your staff could not care less. Very poor."
	if lex := routing.NewScorer().Score(angry, "en"); lex.Score >= cfg.Escalation.Threshold {
		t.Fatalf("the lexicon alone escalates %q (%.2f): pick a message it misses", angry, lex.Score)
	}
	e = explainModels(t, cfg, angry)
	if !e.Decision.Escalated || e.Decision.Queue != "senior" || !slices.Contains(e.Score.Labels, routing.LabelNegative) {
		t.Errorf("angry message: score %+v, decision %+v", e.Score, e.Decision)
	}

	e = explainModels(t, cfg, "请问怎么修改绑定的手机号？")
	if e.Decision.Escalated {
		t.Errorf("a calm Chinese question escalates: score %+v", e.Score)
	}
	e = explainModels(t, cfg, "客服态度太恶劣了，等了一个小时没人理，我要投诉！")
	if !e.Decision.Escalated || e.Score.Score < cfg.Escalation.Threshold {
		t.Errorf("an angry Chinese message does not escalate: score %+v", e.Score)
	}
}

// The lexicon's cues count on top of the model: a polite legal threat
// escalates although its sentiment is not negative.
func TestModelScorer_KeepsLexiconCues(t *testing.T) {
	s := routing.NewModelScorer(shipped)
	c := s.Score("Please note that my lawyer will contact you about the chargeback.", "en")
	if !slices.Contains(c.Labels, routing.LabelLegal) || c.Score < 0.6 {
		t.Errorf("legal threat: %+v", c)
	}
	// French: no model, the lexicon answers.
	if c := s.Score("Je suis très mécontent", "fr"); c.Source != "builtin" {
		t.Errorf("fr scored by %q", c.Source)
	}
}

// An intent rule never matches without an intent model.
func TestModels_IntentRuleWithoutModel(t *testing.T) {
	m := core.NewMessage(core.KindMessage, core.Inbound, "web")
	m.From, m.Text = "web:v1", "my card has not arrived"
	e, err := routing.Explain(modelsConfig(), m, nil, monday10)
	if err != nil {
		t.Fatal(err)
	}
	if e.Decision.Queue != "general" || e.Intent != "" {
		t.Errorf("decision %+v, intent %q", e.Decision, e.Intent)
	}
}

// TestModelScorer_BlindSample scores the blind set (never trained or tuned
// on; the shipped sentiment models learnt from sentiment.tsv and
// sentiment_holdout.tsv) with the shipped models and the lexicon's cues, and
// logs precision and recall by threshold: the figures of
// routing.escalation.threshold in docs/models.md.
func TestModelScorer_BlindSample(t *testing.T) {
	samples := loadSamples(t, "testdata/sentiment_blind.tsv")
	ms := routing.NewModelScorer(shipped)
	lex := routing.NewScorer()
	pr := func(score func(text, lang string) float64, th float64, lang string) (p, r float64) {
		tp, fp, fn := 0, 0, 0
		for _, s := range samples {
			if lang != "" && s.lang != lang {
				continue
			}
			got := score(s.text, s.lang) >= th
			switch {
			case got && s.escalate:
				tp++
			case got:
				fp++
			case s.escalate:
				fn++
			}
		}
		if tp+fp > 0 {
			p = float64(tp) / float64(tp+fp)
		}
		if tp+fn > 0 {
			r = float64(tp) / float64(tp+fn)
		}
		return p, r
	}
	model := func(text, lang string) float64 { return ms.Score(text, lang).Score }
	lexicon := func(text, lang string) float64 { return lex.Score(text, lang).Score }
	for _, th := range []float64{0.4, 0.5, 0.6, 0.7, 0.8} {
		for _, lang := range []string{"", "en", "zh"} {
			p, r := pr(model, th, lang)
			lp, lr := pr(lexicon, th, lang)
			t.Logf("threshold %.1f %-3s model+cues precision %.2f recall %.2f | lexicon %.2f %.2f", th, cmpOr(lang, "all"), p, r, lp, lr)
		}
	}
	p, r := pr(model, 0.6, "")
	_, lr := pr(lexicon, 0.6, "")
	if r <= lr || p < 0.75 {
		t.Errorf("at 0.6 the model scorer has precision %.2f recall %.2f; the lexicon's recall is %.2f", p, r, lr)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

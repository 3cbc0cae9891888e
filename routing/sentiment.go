package routing

import (
	"context"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Classification is how much a message calls for escalation.
type Classification struct {
	// Score is from 0 (routine) to 1 (angry, urgent or about to leave).
	Score float64 `json:"score"`
	// Labels say why, e.g. "churn", "legal", "negative", "urgent", "shouting".
	Labels []string `json:"labels,omitempty"`
	// Source names the classifier that answered: "builtin", "model" or
	// "http".
	Source string `json:"-"`
}

// Labels of the built-in scorer.
const (
	LabelChurn    = "churn"    // threatens to cancel, leave or get their money back
	LabelLegal    = "legal"    // lawyers, regulators, chargebacks, going public
	LabelNegative = "negative" // angry or disappointed words
	LabelUrgent   = "urgent"   // needs help now
	LabelShouting = "shouting" // capitals, repeated !!! or ???
)

// Classifier scores customer messages for escalation. Classify is called once
// per customer message, from several goroutines at once, with the message's
// text and language ("en", "zh", or ""). An error makes the router fall back
// to the built-in Scorer.
type Classifier interface {
	Classify(ctx context.Context, text, language string) (Classification, error)
}

// Scorer is the built-in Classifier for English and Chinese: a lexicon of
// churn and legal threats, negative and urgent words, with negation ("not
// angry", "不着急"), plus shouting (capitals, "!!!", "？？？"). It never fails and
// needs no network. The zero value is not usable; use NewScorer.
type Scorer struct {
	en []lexEntry
	zh []lexEntry
}

// lexEntry is one word or phrase of the lexicon.
type lexEntry struct {
	words  []string // English: lower-case tokens; a trailing '*' matches a prefix
	text   string   // Chinese: a substring
	label  string
	weight float64
	// negatable entries do not count right after a negation.
	negatable bool
}

// Weights of the built-in scorer; a message's score is the sum of what it
// matched, each label counted at most its cap, clamped to [0, 1].
const (
	wChurn    = 0.6
	wLegal    = 0.8
	wStrong   = 0.6  // strongly negative word
	wEmotion  = 0.45 // frustrated, disappointed, upset
	wRepeat   = 0.35 // had to ask again and again
	wMild     = 0.25 // something went wrong, or complaining about waiting
	wIntense  = 0.15 // "very", "so", "非常" before a negative word
	wUrgent   = 0.35
	wRequest  = 0.3 // a refund or cancellation request, not a threat by itself
	wShouting = 0.3
	wPositive = -0.2
)

// labelCap bounds the contribution of one label.
var labelCap = map[string]float64{
	LabelChurn:    0.9,
	LabelLegal:    1,
	LabelNegative: 0.8,
	LabelUrgent:   0.6,
	LabelShouting: 0.6,
	"":            -0.3, // positive words
}

// NewScorer returns the built-in scorer.
func NewScorer() *Scorer {
	s := &Scorer{}
	en := func(label string, w float64, negatable bool, phrases ...string) {
		for _, p := range phrases {
			s.en = append(s.en, lexEntry{words: strings.Fields(p), label: label, weight: w, negatable: negatable})
		}
	}
	zh := func(label string, w float64, negatable bool, phrases ...string) {
		for _, p := range phrases {
			s.zh = append(s.zh, lexEntry{text: p, label: label, weight: w, negatable: negatable})
		}
	}

	en(LabelChurn, wChurn, false,
		"cancel my account", "cancel my subscription", "cancel my membership", "cancel my contract",
		"cancel everything", "close my account", "delete my account", "terminate my contract",
		"cancelling my subscription", "canceling my subscription", "cancelling my account", "canceling my account",
		"switch to your competitor", "switch to another", "moving to another", "going to a competitor",
		"never buy from you", "never use", "never using", "never again", "won't be back",
		"give me my money back", "want my money back", "full refund", "one star review",
		"don't want to be your customer", "not be your customer", "i'm done", "i am done", "i'm leaving",
		"stop charging", "want out", "business elsewhere", "go elsewhere", "going elsewhere", "do not renew",
		"don't renew", "be cancelling", "be canceling", "considering cancelling", "switching to", "switch provider",
		"last time i", "lost a customer", "lost my business")
	en(LabelLegal, wLegal, false,
		"lawyer", "attorney", "legal action", "sue you", "sue your", "court", "lawsuit",
		"chargeback", "dispute the charge", "disputing the charge", "consumer protection",
		"report you", "ombudsman", "regulator", "the press", "the media", "social media", "trading standards",
		"small claims", "better business bureau", "bbb", "ftc", "fcc", "tell everyone")
	en(LabelNegative, wStrong, true,
		"terrible", "horrible", "awful", "worst", "useless", "unacceptable", "ridiculous",
		"disgusting", "disgraceful", "pathetic", "furious", "outraged", "incompetent", "scam",
		"fraud", "rip off", "ripoff", "joke", "unbelievable", "appalling", "sick of", "fed up",
		"had enough", "had it with", "enough of this", "rude", "appalled", "shocking", "outrageous",
		"disgrace", "nightmare", "beyond a joke", "hopeless", "garbage", "rubbish", "crap", "sucks", "hate",
		"losing my patience", "lost my patience", "last straw", "ruined", "dishonest", "lied", "lying",
		"misleading", "hidden fees", "demand", "how hard is it", "what is going on", "what's going on")
	en(LabelNegative, wEmotion, true,
		"frustrat*", "annoy*", "angry", "upset", "disappoint*", "unhappy", "livid", "fuming", "ignored",
		"let down", "stressed", "fed up", "mad")
	en(LabelNegative, wRepeat, false,
		"second time", "third time", "fourth time", "fifth time", "three times", "four times",
		"five times", "several times", "many times", "again and again", "every single time",
		"keep ignoring", "keeps ignoring", "keep failing", "keeps failing", "keeps crashing",
		"still nothing", "still waiting", "still not", "keeps happening", "keep happening", "times for one",
		"second wrong", "yet again", "once again")
	en(LabelNegative, wMild, true,
		"waste", "broken", "ignor*", "nobody", "no one", "is anyone", "excuses", "lost my",
		"hung up", "wrong", "damaged", "hacked", "suspended", "without any warning", "crash*",
		"forever", "again", "never showed", "never shipped", "never arrived", "not delivered",
		"late fee", "overcharged", "charged twice", "charged me", "billed me", "nothing works",
		"doesn't work", "does not work", "not working", "stopped working", "late", "on hold",
		"it's been", "for a week", "for weeks", "for days", "for three days", "for two days",
		"for hours", "for a month", "all day", "all morning", "failing", "failed", "offline", "gone silent",
		"no reply", "not one reply", "no response", "not answering", "never came", "never received",
		"never got", "broke", "hear back", "seriously", "promised")
	en(LabelChurn, wRequest, false, "refund", "cancel", "cancelled", "canceled", "manager")
	en(LabelUrgent, wUrgent, true,
		"urgent", "urgently", "asap", "immediately", "right now", "emergency", "critical",
		"is down", "site is down", "down since", "outage", "locked out", "right away", "tonight",
		"now", "losing sales", "losing money", "in an hour", "in 2 hours", "help", "fix it", "fix this",
		"escalate", "someone on this", "as soon as possible", "please respond", "every hour", "today")
	en("", wPositive, true, "thanks", "thank you", "great", "perfect", "appreciate", "helpful", "no problem", "not urgent")

	zh(LabelChurn, wChurn, false,
		"取消我的会员", "取消会员", "取消订阅", "取消自动续费", "注销账号", "注销账户", "销户", "退订",
		"再也不", "换一家", "不用你们", "全额退款", "要求退款", "马上给我退款", "退货退款", "换别家", "别家",
		"不想再用", "不要再续费", "不要再给我续费", "取消续费", "不续费", "转投", "再也不来")
	zh(LabelChurn, wRequest, false, "退款", "取消", "退货", "赔偿", "找你们领导")
	zh(LabelLegal, wLegal, false,
		"投诉", "12315", "消协", "律师", "起诉", "法院", "曝光", "举报", "维权", "诈骗", "骗钱", "媒体", "微博",
		"工商", "315", "报警")
	zh(LabelNegative, wStrong, true,
		"垃圾", "太差", "差劲", "气死", "愤怒", "离谱", "恶心", "恶劣", "骗子", "坑", "敷衍", "破系统",
		"受不了", "忍了", "不负责", "无语", "摆设", "太让人失望", "倒闭", "故意的", "烂", "最差", "不能接受",
		"无法接受", "过分", "欺骗", "骗人", "黑心", "坑人", "忍无可忍", "耐心", "耗尽", "毁了", "气人", "搞什么",
		"什么情况", "有那么难", "无视", "不当回事")
	zh(LabelNegative, wEmotion, true, "失望", "生气", "不满", "郁闷", "火大", "烦死", "不爽", "心累", "焦虑")
	zh(LabelNegative, wRepeat, false,
		"第二次", "第三次", "第四次", "第五次", "好几次", "好几遍", "多少遍", "反复", "一次又一次", "一直不", "一再",
		"三次")
	zh(LabelNegative, wMild, true,
		"态度", "没人", "还没", "一直没", "到底", "怎么回事", "又", "坏了", "弄坏",
		"弄丢", "丢了", "送错", "破损", "严重", "问题", "白请", "延期",
		"超时", "太慢", "挂了", "崩溃", "宕机", "被盗", "被封", "扣款", "扣了", "滞纳金", "不能用", "用不了",
		"数据都没了", "质量", "虫子", "答非所问", "拖了", "呵呵", "说法", "为什么", "是不是",
		"等了", "让我等", "一整天", "半个月", "一个月", "一个小时", "三天", "四天", "两天", "找不到", "联系不上",
		"没收到", "没回", "不回复", "搞坏", "失败", "一直没到", "谁来负责", "隐藏费用", "解释清楚", "发错", "错货",
		"断了", "扣了我", "一个上午", "整个上午")
	zh(LabelUrgent, wUrgent, true,
		"紧急", "十万火急", "马上", "立刻", "立即", "赶紧", "尽快", "急", "今晚", "必须", "快点", "赶快", "派人",
		"升级处理", "每小时", "损失", "今天")
	zh("", wPositive, true, "谢谢", "感谢", "太好了", "没关系", "不急", "不着急", "很好", "耐心")
	return s
}

// Classify implements Classifier; it never returns an error.
func (s *Scorer) Classify(_ context.Context, text, language string) (Classification, error) {
	return s.Score(text, language), nil
}

// Score scores text. language picks the lexicon ("zh" for Chinese, anything
// else English); text with Chinese characters is also checked against the
// Chinese lexicon whatever the language says.
func (s *Scorer) Score(text, language string) Classification {
	total, labels := capped(s.sums(text, language))
	return Classification{Score: math.Round(math.Min(math.Max(total, 0), 1)*100) / 100, Labels: sortedLabels(labels), Source: "builtin"}
}

// sums returns what text matched of the lexicon, by label ("" for thanks).
func (s *Scorer) sums(text, language string) map[string]float64 {
	sums := map[string]float64{}
	if baseLanguage(language) != "zh" {
		s.scoreEnglish(text, sums)
	}
	if baseLanguage(language) == "zh" || strings.ContainsFunc(text, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		s.scoreChinese(text, sums)
	}
	if shouting(text) || emphasis(text) {
		sums[LabelShouting] += wShouting
	}
	if repeatedPunct(text) {
		sums[LabelShouting] += wShouting
	}
	return sums
}

// capped adds up sums, each label capped by labelCap, and returns the labels
// that count.
func capped(sums map[string]float64) (float64, []string) {
	total := 0.0
	var labels []string
	for label, v := range sums {
		c := labelCap[label]
		if c > 0 {
			v = math.Min(v, c)
		} else {
			v = math.Max(v, c)
		}
		total += v
		if label != "" && v > 0 {
			labels = append(labels, label)
		}
	}
	return total, labels
}

func sortedLabels(l []string) []string {
	slices.Sort(l)
	return l
}

// Intensifiers that make a negative word count more.
var (
	intensifiersEN = []string{"so", "very", "really", "extremely", "completely", "absolutely", "totally", "utterly", "incredibly"}
	intensifiersZH = []string{"非常", "很", "太", "真的", "特别", "极其", "十分", "超级"}
)

func (s *Scorer) scoreEnglish(text string, sums map[string]float64) {
	toks := tokens(text)
	if len(toks) == 0 {
		return
	}
	intense := false
	for _, e := range s.en {
		for i := range toks {
			if !matchAt(toks, i, e.words) {
				continue
			}
			if e.negatable && negatedEN(toks, i) {
				continue
			}
			sums[e.label] += e.weight
			if e.label == LabelNegative && e.weight >= wEmotion {
				for j := max(0, i-2); j < i; j++ {
					intense = intense || slices.Contains(intensifiersEN, toks[j])
				}
			}
			break
		}
	}
	if intense {
		sums[LabelNegative] += wIntense
	}
}

// matchAt reports whether words match toks from i.
func matchAt(toks []string, i int, words []string) bool {
	if i+len(words) > len(toks) {
		return false
	}
	for j, w := range words {
		t := toks[i+j]
		if stem, ok := strings.CutSuffix(w, "*"); ok {
			if !strings.HasPrefix(t, stem) {
				return false
			}
		} else if t != w {
			return false
		}
	}
	return true
}

// negatedEN reports whether one of the two tokens before i negates it.
func negatedEN(toks []string, i int) bool {
	for j := max(0, i-2); j < i; j++ {
		switch t := toks[j]; {
		case t == "not", t == "no", t == "never", t == "without", t == "hardly":
			return true
		case strings.HasSuffix(t, "n't"):
			return true
		}
	}
	return false
}

func (s *Scorer) scoreChinese(text string, sums map[string]float64) {
	intense := false
	// used marks the bytes a counted entry matched: overlapping entries (还没 and
	// 没收到 in 还没收到) count once, the first listed (the stronger) winning.
	used := make([]bool, len(text))
	overlaps := func(from, to int) bool { return slices.Contains(used[from:to], true) }
	for _, e := range s.zh {
		rest, off := text, 0
		for {
			i := strings.Index(rest, e.text)
			if i < 0 {
				break
			}
			at := off + i
			if !(e.negatable && negatedZH(text[:at])) && !overlaps(at, at+len(e.text)) {
				for j := at; j < at+len(e.text); j++ {
					used[j] = true
				}
				sums[e.label] += e.weight
				if e.label == LabelNegative && e.weight >= wEmotion {
					before := strings.TrimRight(text[:at], "了的得")
					intense = intense || slices.ContainsFunc(intensifiersZH, func(x string) bool { return strings.HasSuffix(before, x) })
				}
				break
			}
			off = at + len(e.text)
			rest = text[off:]
		}
	}
	if intense {
		sums[LabelNegative] += wIntense
	}
}

// negatedZH reports whether the text right before a match negates it: 不, 没,
// 别, 无 or 未 right before, or 没有, 不用, 无需, 不是, 不太, 不着 or 别着 (but not 非常,
// "very").
func negatedZH(before string) bool {
	for _, p := range []string{"没有", "不用", "无需", "不是", "不太", "不着", "别着"} {
		if strings.HasSuffix(before, p) {
			return true
		}
	}
	r, _ := utf8.DecodeLastRuneInString(before)
	switch r {
	case '不', '没', '别', '无', '未':
		return true
	}
	return false
}

// tokens lower-cases text and splits it into words of letters, digits and
// apostrophes (curly ones straightened).
func tokens(text string) []string {
	text = strings.ReplaceAll(strings.ToLower(text), "’", "'")
	return strings.FieldsFunc(text, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'') || isCJK(r)
	})
}

// shouting reports text mostly in capitals: at least 8 Latin letters in words
// of three or more, 70% of them upper case.
func shouting(text string) bool {
	upper, letters := 0, 0
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if utf8.RuneCountInString(w) < 3 {
			continue
		}
		for _, r := range w {
			if r > unicode.MaxLatin1 {
				continue
			}
			letters++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	return letters >= 8 && float64(upper) >= 0.7*float64(letters)
}

// emphasisWords are words customers write in capitals to shout one point;
// acronyms (API, SMS, PDF) are not among them.
var emphasisWords = []string{"NOT", "PLEASE", "NEVER", "NOW", "STILL", "STOP", "WHY", "NOTHING", "ANYONE", "NOBODY", "EVER", "AGAIN", "ASAP", "WORST"}

// emphasis reports one of emphasisWords written in capitals in text that is
// not all capitals.
func emphasis(text string) bool {
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if slices.Contains(emphasisWords, w) {
			return true
		}
	}
	return false
}

// repeatedPunct reports "!!", "??", "?!" runs of two or more, ASCII or
// full-width.
func repeatedPunct(text string) bool {
	run := 0
	for _, r := range text {
		switch r {
		case '!', '?', '！', '？':
			run++
			if run >= 2 {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

var _ Classifier = (*Scorer)(nil)

package tickets

import (
	"bytes"
	"strings"
	"text/template"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/lang"
)

// LanguageDetector tells the language of a text as a BCP 47 tag, or "" when
// it cannot; *lang.Detector is one. Detect is called from several goroutines
// at once.
type LanguageDetector interface {
	Detect(text string) string
}

var _ LanguageDetector = (*lang.Detector)(nil)

// language is the language of customer message m: its channel's, else
// detected from its text, else "".
func (s *Service) language(m *core.Message) string {
	if m.Language != "" {
		return m.Language
	}
	return s.lang.Detect(m.Text)
}

// normLang lower-cases a language tag and writes it with "-": "zh_CN" -> "zh-cn".
func normLang(tag string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(tag)), "_", "-")
}

// pickLanguage returns the key of templates to use for tag: the tag itself, else
// its base language ("pt-br" -> "pt", "zh-hant-tw" -> "zh"), else def.
func pickLanguage(templates map[string]Templates, tag, def string) string {
	t := normLang(tag)
	if t != "" {
		if _, ok := templates[t]; ok {
			return t
		}
		base, _, _ := strings.Cut(t, "-")
		if _, ok := templates[base]; ok {
			return base
		}
	}
	return normLang(def)
}

// templateData is what notification templates see.
type templateData struct {
	Number   int64
	Subject  string
	Status   Status
	Priority Priority
}

// render returns the notification of key for t in its language, or "" when the
// key has no text. Texts fall back to the default language's.
func (s *Service) render(key string, t *Ticket) (text, lang string, err error) {
	n := s.cfg.Notify
	lang = pickLanguage(n.Templates, t.Language, n.DefaultLanguage)
	src := n.Templates[lang].get(key)
	if src == "" {
		lang = normLang(n.DefaultLanguage)
		src = n.Templates[lang].get(key)
	}
	if src == "" {
		return "", lang, nil
	}
	tpl, err := template.New(key).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", lang, err
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, templateData{Number: t.Number, Subject: t.Subject, Status: t.Status, Priority: t.Priority}); err != nil {
		return "", lang, err
	}
	return strings.TrimSpace(b.String()), lang, nil
}

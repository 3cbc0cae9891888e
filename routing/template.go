package routing

import (
	"fmt"
	"strings"
	"time"
)

// replyData is what auto-reply templates see.
type replyData struct {
	// Queue is the conversation's queue.
	Queue string
	// Wait is the expected wait in words: "about 10 minutes", "约10分钟".
	Wait string
	// NextOpen is the next opening in the queue's time zone, in words:
	// "on Monday 2 March at 09:00 (CET)", "3月2日（星期一）09:00".
	NextOpen string
	// Name is the contact's name, "" when unknown.
	Name string
	// Channel is the channel the reply goes out on.
	Channel string
}

// render runs template name for language on data.
func (pl *plan) render(name, language string, data replyData) (text, lang string, err error) {
	t, lang := pl.template(name, language)
	if t == nil {
		return "", "", fmt.Errorf("no template %q", name)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", "", fmt.Errorf("template %s.%s: %w", name, lang, err)
	}
	return strings.TrimSpace(b.String()), lang, nil
}

// humanWait says d in language: rounded up to a minute below an hour, to a
// quarter hour below four hours, to an hour above.
func humanWait(d time.Duration, language string) string {
	zh := baseLanguage(language) == "zh"
	switch {
	case d < time.Minute:
		if zh {
			return "1分钟"
		}
		return "about a minute"
	case d < time.Hour:
		m := int((d + time.Minute - 1) / time.Minute)
		if m >= 10 {
			m = (m + 4) / 5 * 5 // 10, 15, 20 ...: a rough figure reads as one
		}
		if zh {
			return fmt.Sprintf("约%d分钟", m)
		}
		if m == 1 {
			return "about a minute"
		}
		return fmt.Sprintf("about %d minutes", m)
	case d < 4*time.Hour:
		q := (d + 15*time.Minute - 1) / (15 * time.Minute)
		h := float64(q) / 4
		if zh {
			return fmt.Sprintf("约%s小时", trimFloat(h))
		}
		if h == 1 {
			return "about an hour"
		}
		return fmt.Sprintf("about %s hours", trimFloat(h))
	default:
		h := int((d + time.Hour - 1) / time.Hour)
		if zh {
			return fmt.Sprintf("约%d小时", h)
		}
		return fmt.Sprintf("about %d hours", h)
	}
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

var zhWeekdays = [...]string{"星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"}

// humanTime says when t is, seen from now, in t's location and language:
// "today at 14:00", "tomorrow at 09:00", "on Monday 2 March at 09:00", plus the
// zone abbreviation in English.
func humanTime(t, now time.Time, language string) string {
	now = now.In(t.Location())
	y1, m1, d1 := now.Date()
	y2, m2, d2 := t.Date()
	days := int(time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC).Sub(time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
	clock := t.Format("15:04")
	if baseLanguage(language) == "zh" {
		switch days {
		case 0:
			return "今天" + clock
		case 1:
			return "明天" + clock
		}
		return fmt.Sprintf("%d月%d日（%s）%s", int(m2), d2, zhWeekdays[t.Weekday()], clock)
	}
	zone := t.Format("MST")
	switch days {
	case 0:
		return fmt.Sprintf("today at %s (%s)", clock, zone)
	case 1:
		return fmt.Sprintf("tomorrow at %s (%s)", clock, zone)
	}
	return fmt.Sprintf("on %s at %s (%s)", t.Format("Monday 2 January"), clock, zone)
}

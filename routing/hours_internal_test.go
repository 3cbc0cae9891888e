package routing

import (
	"testing"
	"time"

	"github.com/omnigate/omnigate/config"
)

func mustSchedule(t *testing.T, h Hours) *schedule {
	t.Helper()
	var p config.Problems
	s := compileHours(&p, "hours.x", "x", h)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchedule(t *testing.T) {
	paris := mustSchedule(t, Hours{
		TimeZone: "Europe/Paris", Weekdays: "09:00-12:00, 13:00-18:00", Sat: "10:00-14:00",
		Holidays: []string{"2025-12-25"},
	})
	loc, _ := time.LoadLocation("Europe/Paris")
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, loc) }
	tests := []struct {
		name string
		t    time.Time
		open bool
		next time.Time
	}{
		{"monday morning", at(2025, 3, 3, 9, 30), true, at(2025, 3, 3, 9, 30)},
		{"lunch break", at(2025, 3, 3, 12, 30), false, at(2025, 3, 3, 13, 0)},
		{"end of the day is closed", at(2025, 3, 3, 18, 0), false, at(2025, 3, 4, 9, 0)},
		{"friday night to saturday", at(2025, 3, 7, 20, 0), false, at(2025, 3, 8, 10, 0)},
		{"saturday afternoon to monday", at(2025, 3, 8, 15, 0), false, at(2025, 3, 10, 9, 0)},
		{"christmas is a holiday", at(2025, 12, 25, 10, 0), false, at(2025, 12, 26, 9, 0)},
		{"before dst change", at(2025, 3, 29, 16, 0), false, at(2025, 3, 31, 9, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := paris.Open(tt.t); got != tt.open {
				t.Errorf("Open(%s) = %v, want %v", tt.t, got, tt.open)
			}
			next, ok := paris.NextOpen(tt.t)
			if !ok || !next.Equal(tt.next) {
				t.Errorf("NextOpen(%s) = %s, want %s", tt.t, next, tt.next)
			}
		})
	}
	// Business time: 30 minutes from Friday 17:45 is Saturday 10:15.
	if got, want := paris.AddBusiness(at(2025, 3, 7, 17, 45), 30*time.Minute), at(2025, 3, 8, 10, 15); !got.Equal(want) {
		t.Errorf("AddBusiness over the evening = %s, want %s", got, want)
	}
	// 9 hours from Monday 09:00: 3h + 5h on Monday, 1h on Tuesday.
	if got, want := paris.AddBusiness(at(2025, 3, 3, 9, 0), 9*time.Hour), at(2025, 3, 4, 10, 0); !got.Equal(want) {
		t.Errorf("AddBusiness over a day = %s, want %s", got, want)
	}
	// Shanghai has no DST; the same instant is open there and closed in Paris.
	sh := mustSchedule(t, Hours{TimeZone: "Asia/Shanghai", Weekdays: "09:00-18:00"})
	if inst := at(2025, 3, 3, 7, 0); !sh.Open(inst) || paris.Open(inst) {
		t.Errorf("07:00 Paris = 14:00 Shanghai: open there, closed in Paris")
	}
}

func TestHumanWaitAndTime(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		lang string
		want string
	}{
		{30 * time.Second, "en", "about a minute"},
		{4 * time.Minute, "en", "about 4 minutes"},
		{13 * time.Minute, "en", "about 15 minutes"},
		{13 * time.Minute, "zh", "约15分钟"},
		{70 * time.Minute, "en", "about 1.25 hours"},
		{5 * time.Hour, "zh-CN", "约5小时"},
	} {
		if got := humanWait(tt.d, tt.lang); got != tt.want {
			t.Errorf("humanWait(%s, %s) = %q, want %q", tt.d, tt.lang, got, tt.want)
		}
	}
	loc, _ := time.LoadLocation("Europe/Paris")
	now := time.Date(2025, 3, 8, 15, 0, 0, 0, loc)
	if got := humanTime(time.Date(2025, 3, 10, 9, 0, 0, 0, loc), now, "en"); got != "on Monday 10 March at 09:00 (CET)" {
		t.Errorf("humanTime = %q", got)
	}
	if got := humanTime(time.Date(2025, 3, 9, 9, 0, 0, 0, loc), now, "zh"); got != "明天09:00" {
		t.Errorf("humanTime zh = %q", got)
	}
}

package routing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	// Time zones are looked up by name; the distroless image has no zoneinfo,
	// so the database is compiled in (about 450 KB).
	_ "time/tzdata"
)

// schedule is a compiled business hours calendar.
type schedule struct {
	name string
	loc  *time.Location
	// days are the open spans of each weekday (time.Sunday = 0), in minutes
	// after local midnight, sorted and disjoint.
	days     [7][]span
	holidays map[string]bool // "2006-01-02" in loc
}

// span is [from, to) in minutes after midnight; to is at most 24*60.
type span struct{ from, to int }

// searchDays bounds every search for an opening: a calendar closed for longer
// than this is treated as never opening.
const searchDays = 400

// compileHours checks and compiles a calendar, adding problems under path.
func compileHours(p problems, path, name string, h Hours) *schedule {
	s := &schedule{name: name, holidays: map[string]bool{}}
	if h.TimeZone == "" {
		p.Add(path+".time_zone", "required: an IANA time zone like Europe/Paris")
		s.loc = time.UTC
	} else if loc, err := time.LoadLocation(h.TimeZone); err != nil {
		p.Add(path+".time_zone", "unknown time zone %q: want an IANA name like Europe/Paris or Asia/Shanghai", h.TimeZone)
		s.loc = time.UTC
	} else {
		s.loc = loc
	}
	days := []struct {
		key string
		day time.Weekday
		v   string
	}{
		{"mon", time.Monday, h.Mon}, {"tue", time.Tuesday, h.Tue}, {"wed", time.Wednesday, h.Wed},
		{"thu", time.Thursday, h.Thu}, {"fri", time.Friday, h.Fri}, {"sat", time.Saturday, h.Sat},
		{"sun", time.Sunday, h.Sun},
	}
	weekdays, err := parseSpans(h.Weekdays)
	if err != nil {
		p.Add(path+".weekdays", "%v", err)
	}
	open := false
	for _, d := range days {
		v, key := d.v, path+"."+d.key
		if v == "" && d.day >= time.Monday && d.day <= time.Friday {
			s.days[d.day] = weekdays
			open = open || len(weekdays) > 0
			continue
		}
		spans, err := parseSpans(v)
		if err != nil {
			p.Add(key, "%v", err)
		}
		s.days[d.day] = spans
		open = open || len(spans) > 0
	}
	if !open && err == nil {
		p.Add(path, "never open: set weekdays or at least one day's hours")
	}
	for i, d := range h.Holidays {
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(d))
		if err != nil {
			p.Add(path+".holidays["+strconv.Itoa(i)+"]", "want a date YYYY-MM-DD, got %q", d)
			continue
		}
		s.holidays[t.Format(time.DateOnly)] = true
	}
	return s
}

// parseSpans parses "09:00-12:00, 13:00-18:00"; "" and "closed" are no spans.
func parseSpans(v string) ([]span, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "closed") {
		return nil, nil
	}
	var out []span
	for part := range strings.SplitSeq(v, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil, fmt.Errorf("want hours like 09:00-18:00 or 09:00-12:00,13:00-18:00, got %q", v)
		}
		f, err1 := parseClock(from)
		t, err2 := parseClock(to)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("want hours like 09:00-18:00 (24-hour clock, end at most 24:00), got %q", v)
		}
		if t <= f {
			return nil, fmt.Errorf("%q ends before it starts: split a span past midnight into 22:00-24:00 and the next day's 00:00-02:00", strings.TrimSpace(part))
		}
		out = append(out, span{f, t})
	}
	slices.SortFunc(out, func(a, b span) int { return a.from - b.from })
	for i := 1; i < len(out); i++ {
		if out[i].from < out[i-1].to {
			return nil, fmt.Errorf("spans overlap in %q", v)
		}
	}
	return out, nil
}

// parseClock parses "HH:MM" into minutes after midnight; "24:00" is allowed.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(m) != 2 || len(h) < 1 || len(h) > 2 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

// intervals calls fn with the open intervals of s that end after t, in order,
// until fn returns false or searchDays have been looked at.
func (s *schedule) intervals(t time.Time, fn func(from, to time.Time) bool) {
	lt := t.In(s.loc)
	y, m, d := lt.Date()
	for i := range searchDays {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, s.loc)
		if s.holidays[day.Format(time.DateOnly)] {
			continue
		}
		for _, sp := range s.days[day.Weekday()] {
			// time.Date normalizes, so DST gaps and 24:00 come out right.
			from := time.Date(day.Year(), day.Month(), day.Day(), 0, sp.from, 0, 0, s.loc)
			to := time.Date(day.Year(), day.Month(), day.Day(), 0, sp.to, 0, 0, s.loc)
			if !to.After(t) {
				continue
			}
			if !fn(from, to) {
				return
			}
		}
	}
}

// Open reports whether t is within business hours.
func (s *schedule) Open(t time.Time) bool {
	open := false
	s.intervals(t, func(from, _ time.Time) bool {
		open = !from.After(t)
		return false
	})
	return open
}

// NextOpen returns t when open, else the start of the next opening; ok is
// false when there is none within searchDays.
func (s *schedule) NextOpen(t time.Time) (next time.Time, ok bool) {
	s.intervals(t, func(from, _ time.Time) bool {
		next, ok = from, true
		if from.Before(t) {
			next = t
		}
		return false
	})
	return next, ok
}

// AddBusiness returns the time at which d of business time has passed after t.
// A calendar that never opens again adds d as wall time.
func (s *schedule) AddBusiness(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	left, at := d, time.Time{}
	s.intervals(t, func(from, to time.Time) bool {
		if from.Before(t) {
			from = t
		}
		if avail := to.Sub(from); avail >= left {
			at = from.Add(left)
			return false
		} else {
			left -= avail
		}
		return true
	})
	if at.IsZero() {
		return t.Add(d)
	}
	return at
}

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/lang"
	"github.com/omnigate/omnigate/routing"
)

// cmdCheckConfig validates a config file the way serve reads it, and prints
// every problem of every section with its line: errors, then warnings. Exit
// code 1 when there is an error, 0 with warnings alone.
func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: omnigate check-config FILE")
		return exitError{2}
	}
	file := args[0]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "check-config: %v\n", err)
		return exitError{1}
	}
	errs, warns := checkConfigData(file, data)
	for _, e := range errs {
		fmt.Fprintln(stderr, e)
	}
	for _, w := range warns {
		fmt.Fprintln(stderr, "warning: "+w.Error())
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%s: %s, %s\n", file, plural(len(errs), "error"), plural(len(warns), "warning"))
		return exitError{1}
	}
	if len(warns) > 0 {
		fmt.Fprintf(stdout, "%s: ok, %s\n", file, plural(len(warns), "warning"))
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkConfigData is check-config on data, the contents of file: every
// problem serve would refuse to start with, and the warnings serve logs, each
// ordered by line.
func checkConfigData(file string, data []byte) (errs, warns config.Errors) {
	cfg, f, err := config.Check(file, data)
	errs = append(errs, problems(err)...)
	if cfg == nil {
		return errs, nil // a YAML syntax error: nothing more to read
	}
	rc, err := routingConfig(file, cfg)
	errs = append(errs, problems(err)...)
	_, err = ticketsConfig(file, cfg)
	errs = append(errs, problems(err)...)
	_, err = readInsightConfig(file, cfg)
	errs = append(errs, problems(err)...)
	_, err = analyticsConfig(file, cfg)
	errs = append(errs, problems(err)...)
	errs = append(errs, languageProblems(f, cfg)...)
	e, w := channelProblems(file, f, cfg, deskQueues(rc))
	errs, warns = append(errs, e...), append(warns, w...)
	e, w = deskProblems(f, cfg, rc)
	errs, warns = append(errs, e...), append(warns, w...)
	return byPosition(errs), byPosition(warns)
}

// problems flattens err into located problems; an error that is not one
// becomes a problem without a position.
func problems(err error) config.Errors {
	if err == nil {
		return nil
	}
	var list config.Errors
	var one *config.Error
	switch {
	case errors.As(err, &list):
		return slices.Clone(list)
	case errors.As(err, &one):
		return config.Errors{one}
	}
	return config.Errors{{Msg: err.Error()}}
}

// byPosition orders problems as the file reads, those without a line last.
func byPosition(list config.Errors) config.Errors {
	slices.SortStableFunc(list, func(a, b *config.Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return list
}

// languageProblems builds the language detector as serve does and reports
// why it cannot be built: each unknown code at its place in the list.
func languageProblems(f *config.File, cfg *config.Config) config.Errors {
	_, err := newDetector(cfg)
	if err == nil {
		return nil
	}
	var errs config.Errors
	for i, c := range cfg.Language.Detect {
		if !lang.Knows(c) {
			errs = append(errs, f.Problem(fmt.Sprintf("language.detect[%d]", i),
				"the detector does not know %q; it knows the ISO 639-1 codes %s", c, strings.Join(lang.Known(), " ")))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, f.Problem("language.detect", "%s", strings.TrimPrefix(errors.Unwrap(err).Error(), "lang: ")))
	}
	return errs
}

// newDetector builds the language detector of the language section.
func newDetector(cfg *config.Config) (*lang.Detector, error) {
	d, err := lang.New(lang.Options{Languages: cfg.Language.Detect, MinConfidence: cfg.Language.MinConfidence})
	if err != nil {
		return nil, fmt.Errorf("language.detect: %w", err)
	}
	return d, nil
}

// channelProblems checks each channels.<name> section by running its
// adapter's factory as serve does (adapters.Check), with serve's public URL
// and queues, and reports a name no adapter has at its line with the known
// names.
func channelProblems(file string, f *config.File, cfg *config.Config, queues []adapters.Queue) (errs, warns config.Errors) {
	for _, name := range slices.Sorted(maps.Keys(cfg.Channels)) {
		if _, ok := adapters.Lookup(name); !ok {
			errs = append(errs, unknownAdapter(f, name))
			continue
		}
		node := cfg.Channels[name]
		w, err := adapters.Check(name, file, &node, adapters.Deps{PublicURL: cfg.HTTP.PublicURL, Queues: queues})
		errs, warns = append(errs, problems(err)...), append(warns, problems(w)...)
	}
	return errs, warns
}

// unknownAdapter is the problem of channels.<name> when no adapter has name.
func unknownAdapter(f *config.File, name string) *config.Error {
	var known []string
	for _, info := range adapters.List() {
		known = append(known, info.Name)
	}
	hint := ""
	if near := nearest(name, known); near != "" {
		hint = fmt.Sprintf("; did you mean %s?", near)
	}
	return f.Problem("channels."+name, "unknown adapter %q%s (known adapters: %s)", name, hint, strings.Join(known, ", "))
}

// nearest is the name of names closest to s by edit distance, when it is
// close enough to be a typo: at most 2 edits, and fewer than s has letters.
func nearest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD && d < len([]rune(s)) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, by runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// configuredDesks are the desk adapters among the configured channels.
func configuredDesks(cfg *config.Config) []string {
	var desks []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Channels)) {
		if info, ok := adapters.Lookup(name); ok && info.Kind == adapters.Desk {
			desks = append(desks, name)
		}
	}
	return desks
}

// noDeskWarning is what serve and check-config say when no desk is
// configured; the demo page shows it too.
const noDeskWarning = "no agent desk is configured, so nobody can answer customers: their messages are stored and wait. " +
	"Configure a desk, e.g. Slack (channels.slack; see docs/slack-setup.md)"

// deskProblems checks that every routing queue's desk is a configured desk
// adapter. A queue that names a desk explicitly (or a desk that is a customer
// channel) is an error; when no desk is configured at all, the queues left
// at the default desk make one warning, noDeskWarning, which serve logs.
func deskProblems(f *config.File, cfg *config.Config, rc routing.Config) (errs, warns config.Errors) {
	desks := configuredDesks(cfg)
	for _, name := range slices.Sorted(maps.Keys(rc.Queues)) {
		desk := rc.Queues[name].Desk
		path := "routing.queues." + name + ".desk"
		info, known := adapters.Lookup(desk)
		switch {
		case slices.Contains(desks, desk):
		case known && info.Kind != adapters.Desk:
			errs = append(errs, f.Problem(path, "%s is a customer channel, not an agent desk (desks: %s)", desk, deskNames()))
		case len(desks) == 0 && f.Problem(path, "").Source == "default":
			// The default desk, and none configured: the warning below says it.
		case len(desks) == 0:
			errs = append(errs, f.Problem(path, "desk %q is not configured: add channels.%s (see docs/slack-setup.md)", desk, desk))
		default:
			hint := ""
			if near := nearest(desk, desks); near != "" {
				hint = fmt.Sprintf("; did you mean %s?", near)
			}
			errs = append(errs, f.Problem(path, "desk %q is not configured%s (configured desks: %s)", desk, hint, strings.Join(desks, ", ")))
		}
	}
	if len(desks) == 0 {
		warns = append(warns, f.Problem("channels", "%s", noDeskWarning))
	}
	return errs, warns
}

// deskNames lists the registered desk adapters.
func deskNames() string {
	var out []string
	for _, info := range adapters.List() {
		if info.Kind == adapters.Desk {
			out = append(out, info.Name)
		}
	}
	return strings.Join(out, ", ")
}

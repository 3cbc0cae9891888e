package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/analytics"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/routing"
)

// testClock, when set by a test, is the time of every component serve builds
// (routing's timers included), so that a test can replay a day in seconds.
var testClock routing.Clock

// clockNow is testClock's Now, nil (the wall clock) without one.
func clockNow() func() time.Time {
	if testClock == nil {
		return nil
	}
	return testClock.Now
}

// analyticsConfig decodes the analytics section with its env overrides.
func analyticsConfig(file string, cfg *config.Config) (analytics.Config, error) {
	var ac analytics.Config
	err := config.DecodeSection(file, &cfg.Analytics, config.EnvName("analytics"), &ac)
	return ac, err
}

// buildAnalytics builds the analytics component, with routing's business
// hours and agents, and mounts its report API.
func (s *gateway) buildAnalytics(file string, rc routing.Config) error {
	ac, err := analyticsConfig(file, s.cfg)
	if err != nil {
		return err
	}
	if !*ac.Enabled {
		return nil
	}
	desk, err := routing.DeskOf(rc)
	if err != nil {
		return err
	}
	s.analytics, err = analytics.New(ac, analytics.Deps{
		Bus:      s.bus,
		Store:    s.store,
		Replicas: s.cfg.NATS.Streams.Replicas,
		Settings: settingsOf(desk),
		Logger:   s.log.With("component", "analytics"),
		Now:      clockNow(),
	})
	if err != nil {
		return err
	}
	s.mux.Handle("GET /api/reports", edge.RequireBearer(s.cfg.HTTP.AdminToken.Value, s.analytics.Handler()))
	s.mux.Handle("GET /dashboard/", analytics.DashboardHandler("/dashboard/"))
	s.mux.Handle("GET /dashboard", http.RedirectHandler("/dashboard/", http.StatusFound))
	s.metrics.MustRegister(s.analytics.Collector())
	return nil
}

// settingsOf turns routing's desk into what the metrics need.
func settingsOf(d routing.Desk) analytics.Settings {
	return analytics.Settings{
		Business: func(queue string) func(from, to time.Time) time.Duration {
			return d.Business[queue]
		},
		Capacity:        d.Capacity,
		DefaultCapacity: d.DefaultCapacity,
	}
}

// cmdReport prints a report of the service metrics from the last checkpoint.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	from := fs.String("from", "now-24h", "start `TIME`: 2026-12-01, 2026-12-01T09:00:00Z, now-24h")
	to := fs.String("to", "now", "end `TIME` (excluded)")
	by := fs.String("by", "", "group rows by `FIELD`: "+strings.Join(analytics.Breakdowns, ", ")+" (default: one row)")
	format := fs.String("format", analytics.FormatTable, "output `FORMAT`: table, csv or json")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	ac, err := analyticsConfig(cf.config, cfg)
	if err != nil {
		return err
	}
	rc, err := routingConfig(cf.config, cfg)
	if err != nil {
		return err
	}
	desk, err := routing.DeskOf(rc)
	if err != nil {
		return err
	}
	b, closeBus, err := cf.openTool(ctx, "omnigate-report", stderr)
	if err != nil {
		return err
	}
	defer closeBus()
	a, err := analytics.New(ac, analytics.Deps{Bus: b, Settings: settingsOf(desk)})
	if err != nil {
		return err
	}
	now, loc := time.Now(), ac.Location()
	q := analytics.Query{By: *by, Location: loc}
	if q.From, err = analytics.ParseTime(*from, now, loc); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if q.To, err = analytics.ParseTime(*to, now, loc); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	rep, err := a.Report(ctx, q)
	if err != nil {
		return err
	}
	return analytics.Write(stdout, rep, *format)
}

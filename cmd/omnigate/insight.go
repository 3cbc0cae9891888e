package main

import (
	"context"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/insight/suggest"
)

// insightConfig is the insight section: text models and suggested replies.
type insightConfig struct {
	suggest.Config `yaml:",inline"`
}

// readInsightConfig decodes the insight section with its env overrides.
func readInsightConfig(file string, cfg *config.Config) (insightConfig, error) {
	var ic insightConfig
	err := config.DecodeSection(file, &cfg.Insight, config.EnvName("insight"), &ic)
	return ic, err
}

// buildInsight builds the suggester when insight.knowledge_base is set; it
// suggests to every desk.
func (s *gateway) buildInsight(file string) error {
	ic, err := readInsightConfig(file, s.cfg)
	if err != nil || !ic.Enabled() {
		return err
	}
	s.suggester, err = suggest.New(ic.Config, suggest.Deps{Bus: s.bus, Store: s.store, Desks: s.desks, Logger: s.log.With("component", "insight")})
	return err
}

// runInsight runs what buildInsight built until ctx is done.
func (s *gateway) runInsight(ctx context.Context) error {
	if s.suggester == nil {
		return nil
	}
	return s.suggester.Run(ctx)
}

package analytics

import (
	"time"

	"github.com/omnigate/omnigate/config"
)

// Config is the analytics section of the configuration.
type Config struct {
	Enabled          *bool         `yaml:"enabled" default:"true" doc:"Keep service-quality metrics (reports, /dashboard, the service metrics on /metrics)."`
	Retention        time.Duration `yaml:"retention" default:"2160h (90 days)" doc:"How long a conversation's timeline is kept after its last event; reports reach back this far."`
	AbandonWindow    time.Duration `yaml:"abandon_window" default:"10m" doc:"A conversation no agent answered counts as abandoned once the customer's last message is this old (or it was closed)."`
	ResolutionTarget time.Duration `yaml:"resolution_target" default:"24h" doc:"Resolution SLA: a conversation not closed within this time of its first message breaches it. 0: no resolution SLA."`
	Checkpoint       time.Duration `yaml:"checkpoint_interval" default:"5s" doc:"How often the replica doing the work saves its state; replicas answer reports from the last one saved, and a replica that takes over resumes from it."`
	TimeZone         string        `yaml:"time_zone" default:"UTC" doc:"Time zone of hour and day rows in reports and the dashboard (an IANA name, e.g. Europe/Paris)."`
	// location is TimeZone, loaded by Validate.
	location *time.Location
}

// SetDefaults fills unset keys.
func (c *Config) SetDefaults() {
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Retention, 90*24*time.Hour)
	def(&c.AbandonWindow, 10*time.Minute)
	def(&c.Checkpoint, 5*time.Second)
	if c.ResolutionTarget == 0 {
		c.ResolutionTarget = 24 * time.Hour
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	var p config.Problems
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"retention", c.Retention}, {"abandon_window", c.AbandonWindow}, {"checkpoint_interval", c.Checkpoint}} {
		if d.v <= 0 {
			p.Add(d.key, "must be positive, got %s", d.v)
		}
	}
	if c.ResolutionTarget < 0 {
		p.Add("resolution_target", "must be 0 (none) or positive, got %s", c.ResolutionTarget)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		p.Add("time_zone", "unknown time zone %q: use an IANA name such as UTC or Europe/Paris", c.TimeZone)
	}
	c.location = loc
	return p.Err()
}

// Location is the time zone of hour and day rows.
func (c *Config) Location() *time.Location {
	if c.location == nil {
		if loc, err := time.LoadLocation(c.TimeZone); err == nil {
			c.location = loc
		} else {
			return time.UTC
		}
	}
	return c.location
}

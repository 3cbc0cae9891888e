package main

import (
	"fmt"
	"net"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/routing"
)

// startLine is what serve prints first, before it starts anything that takes
// time (the embedded NATS server recovers its store, the language models
// load): what it is about to do and where to look.
func startLine(cfg *config.Config, file string, ln net.Listener) string {
	where := "embedded NATS with JetStream in " + cfg.NATS.Embedded.StoreDir
	if cfg.NATS.URL != "" {
		where = "NATS at " + cfg.NATS.URL
	}
	from := "no config file, everything embedded"
	if file != "" {
		from = "config " + file
	}
	line := fmt.Sprintf("omnigate %s starting (%s): %s, %s store, HTTP on http://%s", version, from, where, cfg.Store.Backend, displayAddr(ln.Addr()))
	if file == "" {
		line += fmt.Sprintf("; demo page at http://%s/ once started", displayAddr(ln.Addr()))
	}
	return line
}

// warnDesks logs, once at start, what check-config warns of the desks: no
// desk configured (nobody can answer customers, and how to configure one), or
// a queue whose desk is not configured.
func (s *gateway) warnDesks(rc routing.Config) {
	errs, warns := deskProblems(nil, s.cfg, rc)
	for _, e := range append(errs, warns...) {
		s.log.Warn(e.Msg, "key", e.Path)
	}
}

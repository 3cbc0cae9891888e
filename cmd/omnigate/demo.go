package main

// demoWarning is what the demo page says when nobody can answer its chat: no
// agent desk is configured.
func demoWarning(desks []string) string {
	if len(desks) > 0 {
		return ""
	}
	return "No agent desk is configured, so messages are kept but no agent sees them. " +
		"Add channels.slack to a config file (docs/slack-setup.md) and list the agents of routing's queues (docs/routing.md)."
}

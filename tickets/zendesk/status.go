package zendesk

import "strings"

// Zendesk's system ticket statuses.
const (
	StatusNew     = "new"
	StatusOpen    = "open"
	StatusPending = "pending"
	StatusHold    = "hold"
	StatusSolved  = "solved"
	StatusClosed  = "closed"
)

// ToZendesk maps an omnigate status (new, open, pending, on-hold, solved,
// closed) to Zendesk's; "" when there is none.
func ToZendesk(status string) string {
	switch status {
	case "new":
		return StatusNew
	case "open":
		return StatusOpen
	case "pending":
		return StatusPending
	case "on-hold":
		return StatusHold
	case "solved":
		return StatusSolved
	case "closed":
		return StatusClosed
	}
	return ""
}

// FromZendesk maps a Zendesk status to omnigate's. It accepts the API's values
// (hold) as well as the names trigger placeholders render ("On-hold", "Solved"),
// in any case. ok is false for anything else.
func FromZendesk(status string) (string, bool) {
	s := strings.ToLower(strings.TrimSpace(status))
	s = strings.NewReplacer(" ", "", "-", "", "_", "").Replace(s)
	switch s {
	case "new":
		return "new", true
	case "open":
		return "open", true
	case "pending":
		return "pending", true
	case "hold", "onhold":
		return "on-hold", true
	case "solved":
		return "solved", true
	case "closed":
		return "closed", true
	}
	return "", false
}

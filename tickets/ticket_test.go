package tickets_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/tickets"
)

func TestCanTransition(t *testing.T) {
	allowed := map[tickets.Status][]tickets.Status{
		tickets.StatusNew:     {tickets.StatusOpen, tickets.StatusPending, tickets.StatusOnHold, tickets.StatusSolved, tickets.StatusClosed},
		tickets.StatusOpen:    {tickets.StatusPending, tickets.StatusOnHold, tickets.StatusSolved, tickets.StatusClosed},
		tickets.StatusPending: {tickets.StatusOpen, tickets.StatusOnHold, tickets.StatusSolved, tickets.StatusClosed},
		tickets.StatusOnHold:  {tickets.StatusOpen, tickets.StatusPending, tickets.StatusSolved, tickets.StatusClosed},
		tickets.StatusSolved:  {tickets.StatusOpen, tickets.StatusClosed},
		tickets.StatusClosed:  nil,
	}
	for _, from := range tickets.Statuses {
		for _, to := range tickets.Statuses {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				err := tickets.CanTransition(from, to)
				ok := from == to || slices.Contains(allowed[from], to)
				if ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				var te *tickets.TransitionError
				if !errors.As(err, &te) || !errors.Is(err, tickets.ErrInvalidTransition) {
					t.Fatalf("err = %v, want a *TransitionError", err)
				}
				if te.From != from || te.To != to || !slices.Equal(te.Allowed, allowed[from]) {
					t.Fatalf("error = %+v, want allowed %v", te, allowed[from])
				}
				msg := err.Error()
				if !strings.Contains(msg, "from "+string(from)+" to "+string(to)) {
					t.Fatalf("message %q does not say what was refused", msg)
				}
				for _, a := range allowed[from] {
					if !strings.Contains(msg, string(a)) {
						t.Fatalf("message %q does not name allowed status %s", msg, a)
					}
				}
			})
		}
	}
}

func TestTransitionError_Messages(t *testing.T) {
	for _, tc := range []struct {
		from, to tickets.Status
		want     string
	}{
		{tickets.StatusSolved, tickets.StatusPending, "tickets: cannot change status from solved to pending: a solved ticket can only become open or closed"},
		{tickets.StatusOpen, tickets.StatusNew, "tickets: cannot change status from open to new: an open ticket can only become pending, on-hold, solved or closed"},
		{tickets.StatusClosed, tickets.StatusOpen, "tickets: cannot change status from closed to open: closed is final, its status cannot change"},
	} {
		if got := tickets.CanTransition(tc.from, tc.to).Error(); got != tc.want {
			t.Errorf("%s -> %s:\n got %q\nwant %q", tc.from, tc.to, got, tc.want)
		}
	}
	if err := tickets.CanTransition(tickets.StatusOpen, "done"); !errors.Is(err, tickets.ErrInvalid) || errors.Is(err, tickets.ErrInvalidTransition) {
		t.Errorf("unknown status: err = %v, want ErrInvalid", err)
	}
}

func TestParseStatusAndPriority(t *testing.T) {
	for in, want := range map[string]tickets.Status{
		"open": tickets.StatusOpen, "SOLVED": tickets.StatusSolved, "hold": tickets.StatusOnHold,
		"on_hold": tickets.StatusOnHold, "on-hold": tickets.StatusOnHold, " pending ": tickets.StatusPending,
	} {
		if got, err := tickets.ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tickets.ParseStatus("done"); !errors.Is(err, tickets.ErrInvalid) || !strings.Contains(err.Error(), "new, open, pending, on-hold, solved, closed") {
		t.Errorf("ParseStatus(done) err = %v", err)
	}
	if p, err := tickets.ParsePriority("Urgent"); err != nil || p != tickets.PriorityUrgent {
		t.Errorf("ParsePriority(Urgent) = %q, %v", p, err)
	}
	if _, err := tickets.ParsePriority("asap"); !errors.Is(err, tickets.ErrInvalid) {
		t.Errorf("ParsePriority(asap) err = %v", err)
	}
}

// Package corrections keeps agents' intent corrections as training rows: it
// consumes intent.correct commands from the desks (an agent said the
// customer's message has another intent than the model's) and stores each as
// a record, which omnigate intent export-corrections writes out as CSV
// text,intent for the next omnigate intent train.
//
// The corrections are insight's state: this package is their one writer.
package corrections

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Durable is the consumer of intent.correct commands; Stage names its dead
// letters.
const (
	Durable = "insight-corrections"
	Stage   = "insight"
)

// records is the store bucket of the corrections.
const records = "insight_corrections"

// MaxText bounds the text kept of a corrected message.
const MaxText = 4 << 10

// Correction is one agent's correction: a training row.
type Correction struct {
	Text         string    `json:"text"`
	Intent       string    `json:"intent"`
	Previous     string    `json:"previous,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	Conversation string    `json:"conversation,omitempty"`
	At           time.Time `json:"at"`
}

// Deps are what the service runs on.
type Deps struct {
	Bus   *bus.Bus
	Store *store.Store
	// Logger: default discard. Texts are never logged above debug.
	Logger *slog.Logger
}

// Service stores corrections. Build it with New, start it with Run.
type Service struct {
	bus  *bus.Bus
	recs *store.Records
	log  *slog.Logger
}

// New returns a Service; it does no I/O.
func New(deps Deps) (*Service, error) {
	if deps.Bus == nil || deps.Store == nil {
		return nil, errors.New("corrections: deps: Bus and Store are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{bus: deps.Bus, recs: deps.Store.Records(records), log: deps.Logger}, nil
}

// Run consumes intent.correct until ctx is done, then returns nil; an error
// when its consumer cannot be created.
func (s *Service) Run(ctx context.Context) error {
	g := bus.NewGroup(s.bus, s.log)
	g.Handle(bus.ConsumerSpec{
		Stream:  bus.StreamEvt,
		Durable: Durable,
		Filters: []string{bus.SubjectEvt(event.IntentCorrect)},
		Stage:   Stage,
	}, s.handle)
	if err := g.Run(ctx); err != nil {
		return fmt.Errorf("corrections: %w", err)
	}
	return nil
}

// handle stores one correction, keyed by the command's id so that a
// redelivery stores it once.
func (s *Service) handle(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	c := Correction{
		Text:         core.Truncate(strings.TrimSpace(m.Text), MaxText),
		Intent:       strings.TrimSpace(m.Meta[event.MetaIntent]),
		Previous:     m.Meta[event.MetaPreviousIntent],
		Agent:        string(m.From),
		Conversation: m.ConversationID,
		At:           m.ReceivedAt,
	}
	if c.Text == "" || c.Intent == "" {
		s.log.Warn("intent correction without text or intent, dropped", "msg_id", m.ID, "conversation", m.ConversationID)
		return nil
	}
	if c.At.IsZero() {
		c.At = d.Published
	}
	if _, err := s.recs.Create(ctx, m.ID, c, 0); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("corrections: store %s: %w", m.ID, err)
	}
	s.log.Info("intent corrected", "msg_id", m.ID, "conversation", m.ConversationID, "intent", c.Intent, "previous", c.Previous)
	return nil
}

// List returns every stored correction, oldest first.
func List(ctx context.Context, st *store.Store) ([]Correction, error) {
	recs := st.Records(records)
	keys, err := recs.Keys(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("corrections: list: %w", err)
	}
	var out []Correction
	for _, k := range keys {
		var c Correction
		if _, err := recs.Get(ctx, k, &c); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return nil, fmt.Errorf("corrections: read %s: %w", k, err)
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b Correction) int { return a.At.Compare(b.At) })
	return out, nil
}

// WriteCSV writes cs as CSV text,intent with a header: rows omnigate intent
// train reads. The latest correction of a text wins.
func WriteCSV(w io.Writer, cs []Correction) error {
	latest := map[string]int{}
	for i, c := range cs {
		latest[c.Text] = i
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"text", "intent"})
	for i, c := range cs {
		if latest[c.Text] == i {
			cw.Write([]string{c.Text, c.Intent})
		}
	}
	cw.Flush()
	return cw.Error()
}

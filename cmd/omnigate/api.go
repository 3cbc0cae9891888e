package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/api"
	"github.com/omnigate/omnigate/core/store"
)

// buildAPI builds the integrator API and the transcript page and mounts
// them on /api/v1/ and /conversations/; the desks get its TranscriptURL.
// It runs before the adapters are built; s.router is set later, so queues
// are read through it at request time.
func (s *gateway) buildAPI(ctx context.Context) error {
	key, err := linkKey(ctx, s.cfg.HTTP.LinkSecret.Value(), s.store)
	if err != nil {
		return err
	}
	token := s.cfg.HTTP.AdminToken.Value()
	a, err := api.New(api.Config{
		Token:     func() string { return token },
		PublicURL: s.cfg.HTTP.PublicURL,
		LinkKey:   key,
		LinkTTL:   s.cfg.HTTP.LinkTTL,
	}, api.Deps{
		Store:     s.store,
		JetStream: s.bus.JetStream(),
		Queues:    s.apiQueues,
		Logger:    s.log.With("component", "api"),
	})
	if err != nil {
		return err
	}
	s.api = a
	h := a.Handler()
	s.mux.Handle("/api/v1/", h)
	s.mux.Handle("GET /conversations/{id}", h)
	return nil
}

// apiQueues is routing's queues for the API.
func (s *gateway) apiQueues(ctx context.Context) ([]api.QueueStatus, error) {
	if s.router == nil {
		return nil, nil
	}
	qs, err := s.router.Queues(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.QueueStatus, 0, len(qs))
	for _, q := range qs {
		out = append(out, api.QueueStatus{
			Name: q.Name, Desk: q.Desk, Default: q.Default, Waiting: q.Waiting, OldestWaitingSince: q.OldestWaitingSince,
			Agents: q.Agents, AgentsAvailable: q.AgentsAvailable, ExpectedWaitSeconds: int64(q.ExpectedWait / time.Second),
		})
	}
	return out, nil
}

// linkRecord is the generated link key, in the records "api" under "link_key".
type linkRecord struct {
	Key string `json:"key"` // base64 of 32 random bytes
}

// linkKey is the key the transcript links are signed with: derived from
// http.link_secret when set; otherwise 32 random bytes made once and kept in
// the store, so every replica and every restart signs alike.
func linkKey(ctx context.Context, secret string, st *store.Store) ([]byte, error) {
	if secret != "" {
		k := sha256.Sum256([]byte("omnigate link key\x00" + secret))
		return k[:], nil
	}
	recs := st.Records("api")
	var rec linkRecord
	_, err := recs.Get(ctx, "link_key", &rec)
	if errors.Is(err, store.ErrNotFound) {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		_, err = recs.Create(ctx, "link_key", linkRecord{Key: base64.StdEncoding.EncodeToString(raw)}, 0)
		if errors.Is(err, store.ErrExists) {
			err = nil // another replica made it first: read theirs
		}
		if err == nil {
			_, err = recs.Get(ctx, "link_key", &rec)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("http: link key: %w (set http.link_secret, or check the store)", err)
	}
	key, err := base64.StdEncoding.DecodeString(rec.Key)
	if err != nil || len(key) < 16 {
		return nil, errors.New("http: link key: the stored key (records api/link_key) is damaged: delete it to make a new one, or set http.link_secret")
	}
	return key, nil
}

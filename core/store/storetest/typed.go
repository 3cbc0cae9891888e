package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
)

// RunStore tests the typed layer (store.Store) on the KVs newKV returns.
func RunStore(t *testing.T, newKV func(t *testing.T) store.KV) {
	RunStoreWith(t, newKV, store.Options{})
}

// RunStoreWith is RunStore with every Store's CacheBytes taken from base, so the
// suite also proves the read cache right: its replicas then see each other's
// writes through the cache's watch.
func RunStoreWith(t *testing.T, newKV func(t *testing.T) store.KV, base store.Options) {
	newStore := func(t *testing.T, opts store.Options) *store.Store {
		opts.CacheBytes = base.CacheBytes
		return store.New(newKV(t), opts)
	}
	// replicas returns n Stores on one KV, as n processes would share a backend:
	// each Store serializes its own goroutines per key, so races between Stores
	// are what exercises compare-and-set.
	replicas := func(t *testing.T, n int) []*store.Store {
		kv := newKV(t)
		ss := make([]*store.Store, n)
		for i := range ss {
			ss[i] = store.New(kv, store.Options{CacheBytes: base.CacheBytes})
			if base.CacheBytes > 0 {
				// Close stops the cache's watch; the KV is newKV's to close.
				t.Cleanup(func() { _ = ss[i].Close() })
			}
		}
		return ss
	}

	t.Run("Contact", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		ct := &store.Contact{Name: "Ann", Identities: []core.Identity{"sms:+15551234567", "email:ann@example.com"}, Attributes: map[string]string{"plan": "pro"}}
		must(t, s.CreateContact(c, ct), "create contact")
		if !core.ValidID(ct.ID) || ct.Revision == 0 || ct.CreatedAt.IsZero() || ct.UpdatedAt.IsZero() {
			t.Fatalf("create did not fill id, revision and times: %+v", ct)
		}
		got, err := s.Contact(c, ct.ID)
		must(t, err, "contact")
		if got.Name != "Ann" || got.Revision != ct.Revision || got.Attributes["plan"] != "pro" || !got.CreatedAt.Equal(ct.CreatedAt) {
			t.Fatalf("contact = %+v, want %+v", got, ct)
		}
		for _, id := range ct.Identities {
			byID, err := s.ContactByIdentity(c, id)
			must(t, err, "contact by identity")
			if byID.ID != ct.ID {
				t.Fatalf("contact by identity = %s, want %s", byID.ID, ct.ID)
			}
		}
		_, err = s.ContactByIdentity(c, "telegram:42")
		want(t, err, store.ErrNotFound, "contact by unknown identity")
		_, err = s.Contact(c, core.NewID())
		want(t, err, store.ErrNotFound, "unknown contact")

		up, err := s.UpdateContact(c, ct.ID, func(c *store.Contact) error {
			c.Email = "ann@example.com"
			c.Identities = nil // ignored: identities change through LinkIdentity and Merge
			return nil
		})
		must(t, err, "update contact")
		if up.Email != "ann@example.com" || up.Revision <= ct.Revision || len(up.Identities) != 2 {
			t.Fatalf("updated contact = %+v", up)
		}
		skipped, err := s.UpdateContact(c, ct.ID, func(*store.Contact) error { return store.ErrSkip })
		must(t, err, "skipped update")
		if skipped.Revision != up.Revision {
			t.Fatalf("skipped update wrote revision %d, had %d", skipped.Revision, up.Revision)
		}
		boom := errors.New("boom")
		_, err = s.UpdateContact(c, ct.ID, func(*store.Contact) error { return boom })
		want(t, err, boom, "update whose fn fails")

		// A contact whose identity is taken is not created at all.
		dup := &store.Contact{Identities: []core.Identity{"telegram:7", "sms:+15551234567"}}
		err = s.CreateContact(c, dup)
		want(t, err, store.ErrExists, "create contact with a taken identity")
		var taken *store.IdentityTakenError
		if !errors.As(err, &taken) || taken.Owner != ct.ID || taken.Identity != "sms:+15551234567" {
			t.Fatalf("error = %v, want IdentityTakenError owned by %s", err, ct.ID)
		}
		_, err = s.ContactByIdentity(c, "telegram:7")
		want(t, err, store.ErrNotFound, "identity claimed by the failed create")
		_, err = s.Contact(c, dup.ID)
		want(t, err, store.ErrNotFound, "contact of the failed create")
	})

	t.Run("LinkIdentity", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		a, _, err := s.ResolveContact(c, "web:visitor-a", nil)
		must(t, err, "resolve a")
		b, _, err := s.ResolveContact(c, "web:visitor-b", nil)
		must(t, err, "resolve b")
		owner, err := s.LinkIdentity(c, "email:a@example.com", a.ID)
		must(t, err, "link")
		if owner != a.ID {
			t.Fatalf("owner = %s, want %s", owner, a.ID)
		}
		if owner, err = s.LinkIdentity(c, "email:a@example.com", a.ID); err != nil || owner != a.ID {
			t.Fatalf("link again = %s, %v", owner, err)
		}
		got, err := s.Contact(c, a.ID)
		must(t, err, "contact a")
		if !slices.Equal(got.Identities, []core.Identity{"web:visitor-a", "email:a@example.com"}) {
			t.Fatalf("identities = %q", got.Identities)
		}
		owner, err = s.LinkIdentity(c, "email:a@example.com", b.ID)
		must(t, err, "link to b")
		if owner != a.ID {
			t.Fatalf("owner = %s, want the existing owner %s", owner, a.ID)
		}
		if got, _ := s.Contact(c, b.ID); slices.Contains(got.Identities, "email:a@example.com") {
			t.Fatal("b got an identity a owns")
		}
		_, err = s.LinkIdentity(c, "sms:+1", core.NewID())
		want(t, err, store.ErrNotFound, "link to an unknown contact")
	})

	t.Run("ResolveContactRace", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 5), ctx(t)
		s := rs[0]
		const n = 20
		var wg sync.WaitGroup
		ids := make([]string, n)
		created := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				ct, made, err := rs[i%len(rs)].ResolveContact(c, "sms:+15550000001", func(ct *store.Contact) { ct.Name = "racer " + strconv.Itoa(i) })
				if err != nil {
					t.Errorf("resolve %d: %v", i, err)
					return
				}
				ids[i], created[i] = ct.ID, made
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("racer %d resolved %s, racer 0 %s", i, ids[i], ids[0])
			}
		}
		if k := countTrue(created); k != 1 {
			t.Fatalf("%d racers created the contact, want 1", k)
		}
		keys, err := s.KV().Keys(c, "contacts", "")
		must(t, err, "contact keys")
		if !slices.Equal(keys, []string{ids[0]}) {
			t.Fatalf("contacts stored = %q, want only %s (losers must clean up)", keys, ids[0])
		}
		again, made, err := s.ResolveContact(c, "sms:+15550000001", nil)
		if err != nil || made || again.ID != ids[0] {
			t.Fatalf("resolve again = %v, %v, %v", again, made, err)
		}
	})

	t.Run("UpdateContactNoLostUpdate", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 5), ctx(t)
		s := rs[0]
		ct := &store.Contact{Attributes: map[string]string{"n": "0"}}
		must(t, s.CreateContact(c, ct), "create")
		const workers, each = 50, 20
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				for range each {
					_, err := rs[i%len(rs)].UpdateContact(c, ct.ID, func(c *store.Contact) error {
						n, err := strconv.Atoi(c.Attributes["n"])
						c.Attributes["n"] = strconv.Itoa(n + 1)
						return err
					})
					if err != nil {
						t.Errorf("update: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := s.Contact(c, ct.ID)
		must(t, err, "contact")
		if got.Attributes["n"] != strconv.Itoa(workers*each) {
			t.Fatalf("n = %s after %d increments", got.Attributes["n"], workers*each)
		}
	})

	t.Run("FindOrOpenRace", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 5), ctx(t)
		s := rs[0]
		ct, _, err := s.ResolveContact(c, "email:race@example.com", nil)
		must(t, err, "resolve")
		const n = 20
		var wg sync.WaitGroup
		ids := make([]string, n)
		opened := make([]bool, n)
		now := time.Now()
		for i := range n {
			wg.Go(func() {
				conv, o, err := rs[i%len(rs)].FindOrOpenConversation(c, ct.ID, time.Hour, now, func(cv *store.Conversation) {
					cv.Channel, cv.LastChannel = "email", "email"
				})
				if err != nil {
					t.Errorf("find or open %d: %v", i, err)
					return
				}
				ids[i], opened[i] = conv.ID, o
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("racer %d got conversation %s, racer 0 %s", i, ids[i], ids[0])
			}
		}
		if k := countTrue(opened); k != 1 {
			t.Fatalf("%d racers opened a conversation, want 1", k)
		}
		keys, err := s.KV().Keys(c, "conversations", "")
		must(t, err, "conversation keys")
		if !slices.Equal(keys, []string{ids[0]}) {
			t.Fatalf("conversations stored = %q, want only %s", keys, ids[0])
		}
		open, err := s.OpenConversation(c, ct.ID)
		must(t, err, "open conversation")
		if open.ID != ids[0] || open.State != store.StateOpen || open.Channel != "email" || open.ContactID != ct.ID || open.Opens != 1 {
			t.Fatalf("open conversation = %+v", open)
		}
	})

	t.Run("ConversationLifecycle", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		ct, _, err := s.ResolveContact(c, "telegram:42", nil)
		must(t, err, "resolve")
		t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		first, opened, err := s.FindOrOpenConversation(c, ct.ID, 10*time.Minute, t0, nil)
		if err != nil || !opened || first.Previous != "" || !first.OpenedAt.Equal(t0) {
			t.Fatalf("first = %+v, %v, %v", first, opened, err)
		}
		up, err := s.UpdateConversation(c, first.ID, func(cv *store.Conversation) error {
			cv.LastMessageAt = t0
			cv.ID, cv.ContactID = "changed", "changed"   // ignored
			cv.Queue, cv.Assignee = "ignored", "ignored" // routing's: SetRouting
			return nil
		})
		must(t, err, "update conversation")
		if up.ID != first.ID || up.ContactID != ct.ID || up.Queue != "" || up.Assignee != "" || up.Revision <= first.Revision {
			t.Fatalf("updated = %+v", up)
		}
		up, err = s.SetRouting(c, first.ID, func(cv store.Conversation, r *store.Routing) error {
			if cv.ID != first.ID || cv.State != store.StateOpen {
				t.Errorf("SetRouting read %+v", cv)
			}
			r.Queue, r.Priority, r.Assignee = "billing", "high", "slack:U1"
			return nil
		})
		must(t, err, "set routing")
		if up.Queue != "billing" || up.Priority != "high" || up.Assignee != "slack:U1" || !up.LastMessageAt.Equal(t0) {
			t.Fatalf("after SetRouting = %+v", up)
		}
		same, err := s.SetRouting(c, first.ID, func(store.Conversation, *store.Routing) error { return nil })
		must(t, err, "set routing to the same")
		if same.Revision != up.Revision {
			t.Errorf("SetRouting without a change wrote revision %d, was %d", same.Revision, up.Revision)
		}
		again, opened, err := s.FindOrOpenConversation(c, ct.ID, 10*time.Minute, t0.Add(time.Minute), nil)
		if err != nil || opened || again.ID != first.ID || again.Assignee != "slack:U1" {
			t.Fatalf("find open = %+v, %v, %v", again, opened, err)
		}

		// Closed, then a message within the window: the same conversation reopens.
		closed, err := s.CloseConversation(c, first.ID, t0.Add(2*time.Minute))
		must(t, err, "close")
		if closed.State != store.StateClosed || !closed.ClosedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("closed = %+v", closed)
		}
		_, err = s.OpenConversation(c, ct.ID)
		want(t, err, store.ErrNotFound, "open conversation after close")
		if got, _ := s.Contact(c, ct.ID); got.LastConversation != first.ID {
			t.Fatalf("last conversation = %q, want %s", got.LastConversation, first.ID)
		}
		if _, err := s.CloseConversation(c, first.ID, t0.Add(3*time.Minute)); err != nil {
			t.Fatalf("close twice: %v", err)
		}
		_, err = s.UpdateConversation(c, first.ID, func(cv *store.Conversation) error { cv.State = store.StateOpen; return nil })
		want(t, err, store.ErrInvalid, "reopen through update")
		t1 := t0.Add(7 * time.Minute)
		re, opened, err := s.FindOrOpenConversation(c, ct.ID, 10*time.Minute, t1, nil)
		must(t, err, "reopen")
		if !opened || re.ID != first.ID || re.State != store.StateOpen || re.Opens != 2 || !re.ReopenedAt.Equal(t1) || !re.ClosedAt.IsZero() || re.Queue != "billing" {
			t.Fatalf("reopened = %+v, opened %v", re, opened)
		}

		// Closed through UpdateConversation, then a message after the window: a new one.
		t2 := t1.Add(time.Minute)
		cl, err := s.UpdateConversation(c, first.ID, func(cv *store.Conversation) error {
			cv.State, cv.ClosedAt = store.StateClosed, t2
			return nil
		})
		must(t, err, "close through update")
		if cl.State != store.StateClosed {
			t.Fatalf("closed through update = %+v", cl)
		}
		_, err = s.OpenConversation(c, ct.ID)
		want(t, err, store.ErrNotFound, "open conversation after closing through update")
		second, opened, err := s.FindOrOpenConversation(c, ct.ID, 10*time.Minute, t2.Add(11*time.Minute), func(cv *store.Conversation) {
			cv.Channel, cv.Queue = "telegram", "support"
		})
		must(t, err, "open second")
		if !opened || second.ID == first.ID || second.Previous != first.ID || second.Opens != 1 || second.Queue != "support" {
			t.Fatalf("second = %+v, opened %v", second, opened)
		}
		if second.ID <= first.ID {
			t.Fatalf("conversation ids do not sort by time: %s after %s", second.ID, first.ID)
		}

		// CreateConversation refuses a second open conversation.
		err = s.CreateConversation(c, &store.Conversation{ContactID: ct.ID})
		want(t, err, store.ErrExists, "create a second open conversation")
		old := &store.Conversation{ContactID: ct.ID, State: store.StateClosed, Channel: "sms"}
		must(t, s.CreateConversation(c, old), "create a closed conversation")
		if got, err := s.Conversation(c, old.ID); err != nil || got.State != store.StateClosed || got.Channel != "sms" {
			t.Fatalf("closed conversation = %+v, %v", got, err)
		}
		_, err = s.Conversation(c, core.NewID())
		want(t, err, store.ErrNotFound, "unknown conversation")
	})

	t.Run("ReopenRace", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 5), ctx(t)
		s := rs[0]
		ct, _, err := s.ResolveContact(c, "sms:+15550000002", nil)
		must(t, err, "resolve")
		now := time.Now()
		conv, _, err := s.FindOrOpenConversation(c, ct.ID, time.Hour, now, nil)
		must(t, err, "open")
		_, err = s.CloseConversation(c, conv.ID, now)
		must(t, err, "close")
		const n = 20
		var wg sync.WaitGroup
		ids := make([]string, n)
		opened := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				cv, o, err := rs[i%len(rs)].FindOrOpenConversation(c, ct.ID, time.Hour, now.Add(time.Minute), nil)
				if err != nil {
					t.Errorf("find or open %d: %v", i, err)
					return
				}
				ids[i], opened[i] = cv.ID, o
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := range n {
			if ids[i] != conv.ID {
				t.Fatalf("racer %d got %s, want the reopened %s", i, ids[i], conv.ID)
			}
		}
		if k := countTrue(opened); k != 1 {
			t.Fatalf("%d racers reopened, want 1", k)
		}
		got, err := s.Conversation(c, conv.ID)
		must(t, err, "conversation")
		if got.State != store.StateOpen || got.Opens != 2 {
			t.Fatalf("reopened = %+v", got)
		}
	})

	t.Run("CloseRacesFindOrOpen", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 6), ctx(t)
		s := rs[0]
		ct, _, err := s.ResolveContact(c, "sms:+15550000003", nil)
		must(t, err, "resolve")
		now := time.Now()
		for round := range 10 {
			var wg sync.WaitGroup
			conv, _, err := s.FindOrOpenConversation(c, ct.ID, time.Hour, now, nil)
			must(t, err, "open round %d", round)
			wg.Go(func() {
				if _, err := s.CloseConversation(c, conv.ID, now); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			for i := range 5 {
				wg.Go(func() {
					if _, _, err := rs[1+i].FindOrOpenConversation(c, ct.ID, time.Duration(round%2)*time.Hour, now, nil); err != nil {
						t.Errorf("find or open: %v", err)
					}
				})
			}
			wg.Wait()
			// Whatever the interleaving: at most one open conversation, and it is
			// the one the index names. Replica 0 reads through its cache, which
			// learns of the others' writes a moment after they are made: the
			// check holds once those notices are in.
			bustest.Eventually(t, 5*time.Second, func() error {
				keys, err := s.KV().Keys(c, "conversations", "")
				if err != nil {
					return fmt.Errorf("keys: %w", err)
				}
				var open []string
				for _, k := range keys {
					cv, err := s.Conversation(c, k)
					if err != nil {
						return fmt.Errorf("conversation %s: %w", k, err)
					}
					if cv.State == store.StateOpen {
						open = append(open, cv.ID)
					}
				}
				idx, err := s.OpenConversation(c, ct.ID)
				switch {
				case len(open) > 1:
					return fmt.Errorf("round %d: %d open conversations: %q", round, len(open), open)
				case len(open) == 1 && (err != nil || idx.ID != open[0]):
					return fmt.Errorf("round %d: open %s, index says %v, %v", round, open[0], idx, err)
				case len(open) == 0 && !errors.Is(err, store.ErrNotFound):
					return fmt.Errorf("round %d: nothing open, index says %v, %v", round, idx, err)
				}
				return nil
			})
		}
	})

	t.Run("ClosedTTL", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{ClosedTTL: time.Second}), ctx(t)
		ct, _, err := s.ResolveContact(c, "email:ttl@example.com", nil)
		must(t, err, "resolve")
		conv, _, err := s.FindOrOpenConversation(c, ct.ID, time.Hour, time.Now(), nil)
		must(t, err, "open")
		_, err = s.CloseConversation(c, conv.ID, time.Now())
		must(t, err, "close")
		bustest.Eventually(t, ttlWait, func() error {
			if _, err := s.Conversation(c, conv.ID); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("closed conversation still there (err %v)", err)
			}
			return nil
		})
		// The last conversation is gone: a new message opens a new conversation.
		next, opened, err := s.FindOrOpenConversation(c, ct.ID, time.Hour, time.Now(), nil)
		if err != nil || !opened || next.ID == conv.ID {
			t.Fatalf("after expiry = %+v, %v, %v", next, opened, err)
		}
		if _, err := s.Contact(c, ct.ID); err != nil {
			t.Fatalf("contact must not expire: %v", err)
		}
	})

	t.Run("Merge", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		now := time.Now()
		a, _, err := s.ResolveContact(c, "web:v_ann", func(ct *store.Contact) {
			ct.Name, ct.Attributes, ct.Tags = "Ann (web)", map[string]string{"plan": "free", "city": "Lyon"}, []string{"web"}
		})
		must(t, err, "resolve a")
		_, err = s.LinkIdentity(c, "email:ann@example.com", a.ID)
		must(t, err, "link")
		b, _, err := s.ResolveContact(c, "sms:+33600000000", func(ct *store.Contact) {
			ct.Attributes, ct.Tags = map[string]string{"plan": "pro"}, []string{"vip", "web"}
		})
		must(t, err, "resolve b")
		ca, _, err := s.FindOrOpenConversation(c, a.ID, time.Hour, now, nil)
		must(t, err, "open a")
		cb, _, err := s.FindOrOpenConversation(c, b.ID, time.Hour, now, nil)
		must(t, err, "open b")

		res, err := s.MergeContacts(c, a.ID, b.ID)
		must(t, err, "merge")
		if res.Contact.ID != b.ID || res.From != a.ID || res.Moved {
			t.Fatalf("merge result = %+v", res)
		}
		if res.Open == nil || res.Open.ID != cb.ID {
			t.Fatalf("open after merge = %+v, want %s", res.Open, cb.ID)
		}
		if res.Closed == nil || res.Closed.ID != ca.ID || res.Closed.State != store.StateClosed || res.Closed.MergedInto != cb.ID {
			t.Fatalf("closed by merge = %+v", res.Closed)
		}
		sv := res.Contact
		if sv.Name != "Ann (web)" || sv.Attributes["plan"] != "pro" || sv.Attributes["city"] != "Lyon" ||
			!slices.Equal(sv.Tags, []string{"vip", "web"}) ||
			!slices.Equal(sv.Identities, []core.Identity{"sms:+33600000000", "web:v_ann", "email:ann@example.com"}) {
			t.Fatalf("survivor = %+v", sv)
		}
		for _, id := range []core.Identity{"web:v_ann", "email:ann@example.com", "sms:+33600000000"} {
			got, err := s.ContactByIdentity(c, id)
			if err != nil || got.ID != b.ID {
				t.Fatalf("contact by %s = %v, %v; want %s", id, got, err, b.ID)
			}
		}
		if got, err := s.Contact(c, a.ID); err != nil || got.ID != b.ID {
			t.Fatalf("merged contact resolves to %v, %v", got, err)
		}
		if got, err := s.OpenConversation(c, a.ID); err != nil || got.ID != cb.ID {
			t.Fatalf("open conversation of the merged contact = %v, %v", got, err)
		}
		if got, opened, err := s.FindOrOpenConversation(c, a.ID, time.Hour, now, nil); err != nil || opened || got.ID != cb.ID {
			t.Fatalf("find or open for the merged contact = %v, %v, %v", got, opened, err)
		}
		upd, err := s.UpdateContact(c, a.ID, func(ct *store.Contact) error { ct.Tags = append(ct.Tags, "late"); return nil })
		if err != nil || upd.ID != b.ID || !slices.Contains(upd.Tags, "late") {
			t.Fatalf("update through the merged contact = %+v, %v", upd, err)
		}

		again, err := s.MergeContacts(c, a.ID, b.ID)
		if err != nil || again.Contact.ID != b.ID || again.Closed != nil {
			t.Fatalf("merge again = %+v, %v", again, err)
		}
		back, err := s.MergeContacts(c, b.ID, a.ID)
		if err != nil || back.Contact.ID != b.ID {
			t.Fatalf("merge the survivor into its merged contact = %+v, %v", back, err)
		}
		_, err = s.MergeContacts(c, b.ID, b.ID)
		want(t, err, store.ErrInvalid, "merge into itself")
		_, err = s.MergeContacts(c, core.NewID(), b.ID)
		want(t, err, store.ErrNotFound, "merge an unknown contact")
	})

	t.Run("MergeMovesOpenConversation", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		now := time.Now()
		a, _, err := s.ResolveContact(c, "telegram:1", nil)
		must(t, err, "resolve a")
		b, _, err := s.ResolveContact(c, "telegram:2", nil)
		must(t, err, "resolve b")
		ca, _, err := s.FindOrOpenConversation(c, a.ID, time.Hour, now, nil)
		must(t, err, "open a")
		res, err := s.MergeContacts(c, a.ID, b.ID)
		must(t, err, "merge")
		if !res.Moved || res.Closed != nil || res.Open == nil || res.Open.ID != ca.ID || res.Open.ContactID != b.ID {
			t.Fatalf("merge result = %+v (open %+v)", res, res.Open)
		}
		got, err := s.OpenConversation(c, b.ID)
		if err != nil || got.ID != ca.ID {
			t.Fatalf("survivor's open conversation = %v, %v", got, err)
		}
		if _, err := s.KV().Get(c, "open", a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("merged contact's open index still there: %v", err)
		}
		// Closing it makes it the survivor's last conversation.
		_, err = s.CloseConversation(c, ca.ID, now)
		must(t, err, "close")
		if sv, _ := s.Contact(c, b.ID); sv.LastConversation != ca.ID {
			t.Fatalf("survivor's last conversation = %q, want %s", sv.LastConversation, ca.ID)
		}
	})

	t.Run("RecoversHalfDoneWrites", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		kv := s.KV()
		now := time.Now()
		ct, _, err := s.ResolveContact(c, "email:crash@example.com", nil)
		must(t, err, "resolve")
		conv, _, err := s.FindOrOpenConversation(c, ct.ID, time.Hour, now, nil)
		must(t, err, "open")
		_, err = s.CloseConversation(c, conv.ID, now)
		must(t, err, "close")

		// A reopen that claimed the index and died before updating the conversation:
		// readers finish it.
		idx, _ := json.Marshal(map[string]any{"conversation": conv.ID, "opens": 2})
		_, err = kv.Create(c, "open", ct.ID, idx, 0)
		must(t, err, "claim index")
		got, err := s.OpenConversation(c, ct.ID)
		if err != nil || got.ID != conv.ID || got.State != store.StateOpen || got.Opens != 2 {
			t.Fatalf("open after a half reopen = %+v, %v", got, err)
		}

		// A close that updated the conversation and died before removing the index:
		// readers remove it.
		e, err := kv.Get(c, "conversations", conv.ID)
		must(t, err, "get conversation")
		var raw map[string]any
		must(t, json.Unmarshal(e.Value, &raw), "decode")
		raw["state"] = "closed"
		data, _ := json.Marshal(raw)
		_, err = kv.Update(c, "conversations", conv.ID, data, e.Revision, 0)
		must(t, err, "close behind the store's back")
		_, err = s.OpenConversation(c, ct.ID)
		want(t, err, store.ErrNotFound, "open after a half close")
		_, err = kv.Get(c, "open", ct.ID)
		want(t, err, store.ErrNotFound, "index after a half close")

		// An index pointing to a conversation that does not exist is stale.
		idx, _ = json.Marshal(map[string]any{"conversation": core.NewID(), "opens": 1})
		_, err = kv.Create(c, "open", ct.ID, idx, 0)
		must(t, err, "dangling index")
		next, opened, err := s.FindOrOpenConversation(c, ct.ID, 0, now, nil)
		if err != nil || !opened || next.Previous != conv.ID {
			t.Fatalf("find or open past a dangling index = %+v, %v, %v", next, opened, err)
		}

		// An identity pointing to a contact that does not exist is stale.
		_, err = kv.Create(c, "identities", "sms:+15559999999", []byte(core.NewID()), 0)
		must(t, err, "dangling identity")
		fresh, made, err := s.ResolveContact(c, "sms:+15559999999", nil)
		if err != nil || !made {
			t.Fatalf("resolve past a dangling identity = %+v, %v, %v", fresh, made, err)
		}
	})

	t.Run("ListConversations", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t, store.Options{}), ctx(t)
		ann, _, err := s.ResolveContact(c, "sms:+15551230001", nil)
		must(t, err, "resolve ann")
		bob, _, err := s.ResolveContact(c, "email:bob@example.com", nil)
		must(t, err, "resolve bob")
		t0 := time.Now().UTC().Add(-time.Hour)
		open := func(contact, channel string, at time.Time) *store.Conversation {
			cv, opened, err := s.FindOrOpenConversation(c, contact, time.Minute, at, func(cv *store.Conversation) { cv.Channel, cv.LastChannel = channel, channel })
			if err != nil || !opened {
				t.Fatalf("open: %+v %v %v", cv, opened, err)
			}
			return cv
		}
		first := open(ann.ID, "sms", t0)
		_, err = s.CloseConversation(c, first.ID, t0.Add(time.Second))
		must(t, err, "close")
		second := open(ann.ID, "web", t0.Add(time.Hour)) // past the reopen window: a new one
		if second.Previous != first.ID {
			t.Fatalf("second.Previous = %q, want %s", second.Previous, first.ID)
		}
		_, err = s.SetRouting(c, second.ID, func(_ store.Conversation, r *store.Routing) error { r.Queue = "billing"; return nil })
		must(t, err, "set routing")
		third := open(bob.ID, "email", t0.Add(time.Hour))
		_, err = s.UpdateContact(c, bob.ID, func(ct *store.Contact) error { ct.Tags = []string{"vip"}; return nil })
		must(t, err, "tag bob")

		ids := func(cs []*store.Conversation) []string {
			out := []string{}
			for _, cv := range cs {
				out = append(out, cv.ID)
			}
			return out
		}
		newestFirst := func(cs ...*store.Conversation) []string {
			out := ids(cs)
			slices.Sort(out)
			slices.Reverse(out)
			return out
		}
		for _, tc := range []struct {
			name string
			f    store.ConversationFilter
			want []string
		}{
			{"all", store.ConversationFilter{}, newestFirst(first, second, third)},
			{"open", store.ConversationFilter{State: store.StateOpen}, newestFirst(second, third)},
			{"closed", store.ConversationFilter{State: store.StateClosed}, []string{first.ID}},
			{"contact", store.ConversationFilter{ContactID: ann.ID}, newestFirst(first, second)},
			{"contact, open", store.ConversationFilter{ContactID: ann.ID, State: store.StateOpen}, []string{second.ID}},
			{"unknown contact", store.ConversationFilter{ContactID: core.NewID()}, []string{}},
			{"channel started on", store.ConversationFilter{Channel: "sms"}, []string{first.ID}},
			{"queue", store.ConversationFilter{Queue: "billing"}, []string{second.ID}},
			{"contact's tag", store.ConversationFilter{Tag: "vip"}, []string{third.ID}},
			{"updated since", store.ConversationFilter{UpdatedSince: time.Now().Add(time.Hour)}, []string{}},
		} {
			got, next, err := s.ListConversations(c, tc.f)
			must(t, err, "%s", tc.name)
			if !slices.Equal(ids(got), tc.want) || next != "" {
				t.Errorf("%s: %v next %q, want %v", tc.name, ids(got), next, tc.want)
			}
		}
		// Pages of one: every conversation once, newest first, then no cursor.
		var paged []string
		f := store.ConversationFilter{Limit: 1}
		for range 5 {
			got, next, err := s.ListConversations(c, f)
			must(t, err, "page")
			paged = append(paged, ids(got)...)
			if next == "" {
				break
			}
			f.Before = next
		}
		if want := newestFirst(first, second, third); !slices.Equal(paged, want) {
			t.Errorf("paged = %v, want %v", paged, want)
		}
	})

	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		rs, c := replicas(t, 5), ctx(t)
		s := rs[0]
		type counter struct {
			N    int    `json:"n"`
			Note string `json:"note,omitempty"`
		}
		r := s.Records("tickets")
		var v counter
		_, err := r.Get(c, "seq", &v)
		want(t, err, store.ErrNotFound, "get missing record")
		rev, err := r.Create(c, "seq", counter{N: 1}, 0)
		must(t, err, "create")
		_, err = r.Create(c, "seq", counter{N: 2}, 0)
		want(t, err, store.ErrExists, "create existing")
		got, err := r.Get(c, "seq", &v)
		if err != nil || got != rev || v.N != 1 {
			t.Fatalf("get = %+v at %d, %v", v, got, err)
		}
		// Records buckets are separate from the store's own, and from each other.
		if _, err := s.Records("contacts").Get(c, "seq", &v); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another records bucket sees the record: %v", err)
		}

		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				r := rs[i%len(rs)].Records("tickets")
				for range 10 {
					var cv counter
					if _, err := r.Update(c, "seq", &cv, 0, func(exists bool) error {
						if !exists {
							return errors.New("record vanished")
						}
						cv.N++
						return nil
					}); err != nil {
						t.Errorf("update: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if _, err := r.Get(c, "seq", &v); err != nil || v.N != 101 {
			t.Fatalf("after 100 increments n = %d, %v", v.N, err)
		}

		var nv counter
		nrev, err := r.Update(c, "new", &nv, 0, func(exists bool) error {
			if exists {
				return errors.New("should not exist")
			}
			nv.Note = "made by update"
			return nil
		})
		must(t, err, "update creating")
		if nrev == 0 || nv.Note != "made by update" {
			t.Fatalf("update creating = %d, %+v", nrev, nv)
		}
		srev, err := r.Update(c, "new", &nv, 0, func(bool) error { return store.ErrSkip })
		if err != nil || srev != nrev {
			t.Fatalf("skipped update = %d, %v; want %d", srev, err, nrev)
		}
		if zrev, err := r.Update(c, "none", &nv, 0, func(bool) error { return store.ErrSkip }); err != nil || zrev != 0 || nv != (counter{}) {
			t.Fatalf("skipped update of a missing record = %d, %+v, %v", zrev, nv, err)
		}
		_, err = r.Update(c, "new", nv, 0, func(bool) error { return nil })
		want(t, err, store.ErrInvalid, "update into a non-pointer")

		_, err = r.Create(c, "sent:sms:42", true, time.Second)
		must(t, err, "create marker with ttl")
		keys, err := r.Keys(c, "")
		if err != nil || !slices.Equal(keys, []string{"new", "sent:sms:42", "seq"}) {
			t.Fatalf("keys = %q, %v", keys, err)
		}
		bustest.Eventually(t, ttlWait, func() error {
			var b bool
			if _, err := r.Get(c, "sent:sms:42", &b); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("marker still there (err %v)", err)
			}
			return nil
		})
		want(t, r.Delete(c, "new", nrev+1000), store.ErrConflict, "delete with wrong revision")
		must(t, r.Delete(c, "new", 0), "delete")
		if keys, err := r.Keys(c, "s"); err != nil || !slices.Equal(keys, []string{"seq"}) {
			t.Fatalf("keys after delete = %q, %v", keys, err)
		}
		_, err = s.Records("bad name").Get(c, "k", &v)
		want(t, err, store.ErrInvalid, "records with an invalid name")
	})
}

// countTrue counts the true values in bs.
func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

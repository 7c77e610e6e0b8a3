package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Firestore-only behaviour: the RPC budget and the lazy client.

// Firestore RPCs as the client library issues them.
const (
	rpcGet    = "BatchGetDocuments" // DocumentRef.Get
	rpcCommit = "Commit"            // Create, Update, Delete
)

func TestFirestoreRPCBudget(t *testing.T) {
	client, counter := smarttest.NewCountingFirestoreClient(t)
	c := newClock()
	f := &store.Firestore{Client: client, Sealer: testSealer(t), Now: c.Now}
	ctx := context.Background()

	l := newLaunch(c.Now())
	sess := newSession(c.Now())
	var read *store.Session
	steps := []struct {
		name string
		op   func() error
		want map[string]int
	}{
		{"CreateLaunch", func() error { return f.CreateLaunch(ctx, l) },
			map[string]int{rpcCommit: 1}},
		{"CreateLaunch duplicate", func() error { return wantErr(f.CreateLaunch(ctx, l), store.ErrExists) },
			map[string]int{rpcCommit: 1}},
		{"ConsumeLaunch", func() error { _, err := f.ConsumeLaunch(ctx, l.State); return err },
			map[string]int{rpcGet: 1, rpcCommit: 1}},
		{"ConsumeLaunch replay", func() error { _, err := f.ConsumeLaunch(ctx, l.State); return wantErr(err, store.ErrConsumed) },
			map[string]int{rpcGet: 1}},
		{"ConsumeLaunch unknown", func() error { _, err := f.ConsumeLaunch(ctx, newState()); return wantErr(err, store.ErrNotFound) },
			map[string]int{rpcGet: 1}},
		{"ConsumeLaunch invalid state", func() error { _, err := f.ConsumeLaunch(ctx, "a/b"); return wantErr(err, store.ErrNotFound) },
			map[string]int{}},
		{"CreateSession", func() error { return f.CreateSession(ctx, sess) },
			map[string]int{rpcCommit: 1}},
		{"GetSession", func() (err error) { read, err = f.GetSession(ctx, sess.ID); return err },
			map[string]int{rpcGet: 1}},
		{"UpdateTokens", func() error { read.AccessToken = "AT-new"; return f.UpdateTokens(ctx, read) },
			map[string]int{rpcCommit: 1}},
		{"UpdateTokens conflict", func() error {
			stale := *sess
			return wantErr(f.UpdateTokens(ctx, &stale), store.ErrConflict)
		}, map[string]int{rpcCommit: 1}},
		{"Touch", func() error { return f.Touch(ctx, read, c.Now()) },
			map[string]int{rpcCommit: 1}},
		{"GetSession after a touch", func() (err error) { read, err = f.GetSession(ctx, sess.ID); return err },
			map[string]int{rpcGet: 1}},
		{"SignOut", func() error { return f.SignOut(ctx, sess.ID) },
			map[string]int{rpcCommit: 1}},
		{"CreateSessionAndLaunch", func() error { return f.CreateSessionAndLaunch(ctx, newSession(c.Now()), newLaunch(c.Now())) },
			map[string]int{rpcCommit: 1}},
	}
	for _, st := range steps {
		counter.Reset()
		if err := st.op(); err != nil {
			t.Errorf("%s: %v", st.name, err)
			continue
		}
		got := counter.Counts()
		total := 0
		for _, n := range st.want {
			total += n
		}
		if counter.Total() != total || !equalCounts(got, st.want) {
			t.Errorf("%s made RPCs %v, want %v", st.name, got, st.want)
		}
	}
}

// TestFirestoreConsumeLoserRPCs checks the budget on the contended path: a
// losing consumer still makes at most a Get and an Update.
func TestFirestoreConsumeLoserRPCs(t *testing.T) {
	client, counter := smarttest.NewCountingFirestoreClient(t)
	c := newClock()
	f := &store.Firestore{Client: client, Sealer: testSealer(t), Now: c.Now}
	l := mustCreateFirestoreLaunch(t, f, c)
	const n = 10
	counter.Reset()
	var wg sync.WaitGroup
	start := make(chan struct{})
	var wins atomic.Int32
	for range n {
		wg.Go(func() {
			<-start
			if _, err := f.ConsumeLaunch(context.Background(), l.State); err == nil {
				wins.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d winners", wins.Load())
	}
	if got := counter.Total(); got > 2*n {
		t.Errorf("%d concurrent consumers made %d RPCs (%v), want ≤ %d", n, got, counter.Counts(), 2*n)
	}
	if counter.Count(rpcGet) != n {
		t.Errorf("%d Gets for %d consumers", counter.Count(rpcGet), n)
	}
}

func mustCreateFirestoreLaunch(t *testing.T, f *store.Firestore, c *smarttest.Clock) *store.Launch {
	t.Helper()
	l := newLaunch(c.Now())
	if err := f.CreateLaunch(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func wantErr(got, want error) error {
	if errors.Is(got, want) {
		return nil
	}
	return errors.Join(errors.New("unexpected result"), got)
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestFirestoreLazyClient(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	fail := true
	var mu sync.Mutex
	f := &store.Firestore{
		Sealer: testSealer(t),
		NewClient: func(context.Context) (*firestore.Client, error) {
			calls.Add(1)
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return nil, errors.New("metadata server unreachable")
			}
			return smarttest.NewFirestoreClient(t), nil
		},
	}
	l := newLaunch(time.Now())
	err := f.CreateLaunch(ctx, l)
	if err == nil || !strings.HasPrefix(err.Error(), "store: firestore client: ") {
		t.Fatalf("CreateLaunch with a failing client = %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()

	// The failure was not cached; concurrent first uses build one client.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := f.CreateSession(ctx, newSession(time.Now())); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := f.CreateLaunch(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ConsumeLaunch(ctx, l.State); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("NewClient called %d times, want 2 (one failure, one success)", n)
	}

	var none store.Firestore
	if err := none.CreateLaunch(ctx, newLaunch(time.Now())); err == nil || !strings.Contains(err.Error(), "no Firestore client") {
		t.Errorf("Firestore without a client: %v", err)
	}
}

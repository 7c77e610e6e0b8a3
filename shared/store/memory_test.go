package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Memory-only behaviour: what it does to stay flat under load.

func TestMemorySweepsExpiredUnderSustainedLoad(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m := store.NewMemory(testSealer(t))
	m.Now = c.Now
	// One launch per simulated second, each valid for 10 minutes, half of
	// them consumed: at most ~600 can be live at once.
	var recent []*store.Launch
	for i := range 20_000 {
		l := newLaunch(c.Now())
		if err := m.CreateLaunch(ctx, l); err != nil {
			t.Fatalf("CreateLaunch %d: %v", i, err)
		}
		if i%2 == 0 {
			if _, err := m.ConsumeLaunch(ctx, l.State); err != nil {
				t.Fatalf("ConsumeLaunch %d: %v", i, err)
			}
		}
		if i >= 19_990 {
			recent = append(recent, l)
		}
		c.Add(time.Second)
	}
	launches, _, queue, _ := m.Sizes()
	if launches > 601 || queue > 601 {
		t.Errorf("after 20000 launches over 5.5 h: %d stored, queue %d; want ≤ 601 (10 minutes' worth)", launches, queue)
	}
	for j, l := range recent {
		_, err := m.ConsumeLaunch(ctx, l.State)
		if j%2 == 1 && err != nil { // recent[j] is launch 19990+j
			t.Errorf("recent launch: %v", err)
		}
		if j%2 == 0 && !errors.Is(err, store.ErrConsumed) {
			t.Errorf("recent consumed launch: %v, want ErrConsumed", err)
		}
	}
}

func TestMemoryEvictsOldestAtBound(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m := store.NewMemory(testSealer(t))
	m.Now = c.Now
	m.MaxLaunches = 100
	var all []*store.Launch
	for i := range 150 {
		l := newLaunch(c.Now())
		l.ExpiresAt = l.ExpiresAt.Add(time.Duration(i) * time.Millisecond)
		if err := m.CreateLaunch(ctx, l); err != nil {
			t.Fatalf("CreateLaunch %d: %v", i, err)
		}
		all = append(all, l)
	}
	if n, _, q, _ := m.Sizes(); n != 100 || q != 100 {
		t.Fatalf("stored %d launches (queue %d), want the bound 100", n, q)
	}
	for i, l := range all {
		_, err := m.ConsumeLaunch(ctx, l.State)
		if i < 50 && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("evicted launch %d: %v, want ErrNotFound", i, err)
		}
		if i >= 50 && err != nil {
			t.Errorf("kept launch %d: %v", i, err)
		}
	}
}

func TestMemorySessionChurnStaysBounded(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m := store.NewMemory(testSealer(t))
	m.Now = c.Now
	m.MaxSessions = 50
	// Log in and out far faster than sessions expire: deleted sessions leave
	// stale queue items, which must not pile up.
	for i := range 10_000 {
		s := newSession(c.Now())
		if err := m.CreateSession(ctx, s); err != nil {
			t.Fatalf("CreateSession %d: %v", i, err)
		}
		if i%10 != 0 {
			if err := m.SignOut(ctx, s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, sessions, _, queue := m.Sizes()
	if sessions > 50 {
		t.Errorf("%d sessions stored, want ≤ 50", sessions)
	}
	if queue > 2*sessions+1025 {
		t.Errorf("expiry queue holds %d items for %d sessions", queue, sessions)
	}

	// Expired sessions are swept by the next insert.
	c.Add(9 * time.Hour)
	if err := m.CreateSession(ctx, newSession(c.Now())); err != nil {
		t.Fatal(err)
	}
	if _, sessions, _, queue := m.Sizes(); sessions != 1 || queue != 1 {
		t.Errorf("after expiry: %d sessions, queue %d; want 1, 1", sessions, queue)
	}
}

func TestMemoryZeroValue(t *testing.T) {
	ctx := context.Background()
	m := &store.Memory{Sealer: testSealer(t)}
	l := newLaunch(time.Now())
	if err := m.CreateLaunch(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ConsumeLaunch(ctx, l.State); err != nil {
		t.Fatal(err)
	}
	s := newSession(time.Now())
	if err := m.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	noKey := &store.Memory{}
	if err := noKey.CreateSession(ctx, newSession(time.Now())); err == nil {
		t.Error("Memory without a Sealer stored a session with tokens")
	}
}

func TestMemoryHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := store.NewMemory(testSealer(t))
	for name, err := range map[string]error{
		"CreateLaunch":  m.CreateLaunch(ctx, newLaunch(time.Now())),
		"CreateSession": m.CreateSession(ctx, newSession(time.Now())),
		"SignOut":       m.SignOut(ctx, "x"),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v", name, err)
		}
	}
	if n, s, _, _ := m.Sizes(); n+s != 0 {
		t.Error("stored despite a cancelled context")
	}
}

func ExampleMemory() {
	ctx := context.Background()
	key := make([]byte, store.SealKeySize) // use a key from Secret Manager
	sealer, _ := store.NewSealer(key)
	st := store.NewMemory(sealer)

	l := &store.Launch{State: "c3RhdGU", Verifier: "v", ExpiresAt: time.Now().Add(10 * time.Minute)}
	_ = st.CreateLaunch(ctx, l)
	_, err := st.ConsumeLaunch(ctx, "c3RhdGU")
	fmt.Println(err)
	_, err = st.ConsumeLaunch(ctx, "c3RhdGU")
	fmt.Println(err)
	// Output:
	// <nil>
	// store: already consumed
}

package store_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// deadHost returns a loopback address nothing listens on.
func deadHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	return host
}

// TestFirestoreUnreachableIsUnavailable: with Firestore unreachable, every
// operation fails within its own deadline with an error that is
// store.ErrUnavailable, even when the caller's context has no deadline.
func TestFirestoreUnreachableIsUnavailable(t *testing.T) {
	client, err := store.NewFirestoreClient(context.Background(), "smarttest-dead", "", deadHost(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c := newClock()
	f := &store.Firestore{Client: client, Sealer: testSealer(t), Now: c.Now, OpTimeout: 300 * time.Millisecond}
	ctx := context.Background()
	sess := newSession(c.Now())
	sess.Version = time.Now().UTC().Format(time.RFC3339Nano)
	ops := []struct {
		name string
		op   func() error
	}{
		{"CreateLaunch", func() error { return f.CreateLaunch(ctx, newLaunch(c.Now())) }},
		{"ConsumeLaunch", func() error { _, err := f.ConsumeLaunch(ctx, newState()); return err }},
		{"CreateSession", func() error { return f.CreateSession(ctx, newSession(c.Now())) }},
		{"GetSession", func() error { _, err := f.GetSession(ctx, sess.ID); return err }},
		{"UpdateTokens", func() error { return f.UpdateTokens(ctx, sess) }},
		{"SignOut", func() error { return f.SignOut(ctx, sess.ID) }},
		{"Ping", func() error { return f.Ping(ctx) }},
		{"UseOnce", func() error { _, err := f.UseOnce(ctx, "iss\x00jti", c.Now().Add(time.Minute), c.Now()); return err }},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("%s = %v, want store.ErrUnavailable", tc.name, err)
			}
			for _, sentinel := range []error{store.ErrNotFound, store.ErrConflict, store.ErrExists, store.ErrConsumed} {
				if errors.Is(err, sentinel) {
					t.Errorf("%s = %v, also %v", tc.name, err, sentinel)
				}
			}
		})
	}
}

// TestFirestorePing: the emulator answers, so the store is ready.
func TestFirestorePing(t *testing.T) {
	f := &store.Firestore{Client: smarttest.NewFirestoreClient(t), Sealer: testSealer(t)}
	if err := f.Ping(context.Background()); err != nil {
		t.Fatalf("Ping = %v, want nil", err)
	}
	if err := store.NewMemory(nil).Ping(context.Background()); err != nil {
		t.Fatalf("Memory.Ping = %v, want nil", err)
	}
}

// TestFirestoreReplayExactlyOnce: of many concurrent uses of one JWT id,
// through separate clients as separate instances would be, exactly one is
// fresh; other ids are independent. The stores share one project, as the
// instances of one deployment share one database.
func TestFirestoreReplayExactlyOnce(t *testing.T) {
	project := smarttest.NewFirestoreClient(t) // one project shared by the "instances"
	now := time.Now()
	exp := now.Add(5 * time.Minute)
	instances := make([]*store.Firestore, 4)
	for i := range instances {
		instances[i] = &store.Firestore{Client: project}
	}
	const callers = 32
	for _, key := range []string{"iss-a\x00jti-1", "iss-a\x00jti-2", "iss-b\x00jti-1", "iss/with/slashes\x00" + strings.Repeat("x", 256)} {
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := instances[i%len(instances)].UseOnce(context.Background(), key, exp, now)
				if err != nil {
					t.Errorf("UseOnce: %v", err)
				}
				if ok {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		if got := fresh.Load(); got != 1 {
			t.Errorf("key %.20q: %d fresh uses of %d, want exactly 1", key, got, callers)
		}
	}
	var rc store.ReplayCache = store.ReplayCache{Store: instances[0]}
	if ok, err := rc.Use(context.Background(), "iss-a\x00jti-1", exp, now); ok || err != nil {
		t.Errorf("replay through ReplayCache = %v, %v; want false, nil", ok, err)
	}
}

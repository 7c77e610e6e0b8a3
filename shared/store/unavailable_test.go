package store_test

import (
	"context"
	"errors"
	"net"
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
		{"DeleteSession", func() error { return f.DeleteSession(ctx, sess.ID) }},
		{"Ping", func() error { return f.Ping(ctx) }},
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

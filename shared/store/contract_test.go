package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// The contract suite: every test here runs against each implementation, the
// in-memory store and the Firestore store on the emulator, which TestMain
// starts and stops.

func TestMain(m *testing.M) {
	os.Exit(smarttest.RunWithFirestore(m))
}

// impl is one store under test plus raw access to what it keeps.
type impl struct {
	store.Store
	// raw returns the stored document as Firestore holds it (field names of
	// the document, tokens sealed), and whether it exists.
	raw func(t *testing.T, coll, id string) (map[string]any, bool)
	// setRawAccessToken writes a stored access token field verbatim.
	setRawAccessToken func(t *testing.T, id, sealed string)
}

var impls = []struct {
	name string
	// open returns a fresh store reading now, whose sessions go idle after
	// idle (zero: the default).
	open func(t *testing.T, now func() time.Time, idle time.Duration) impl
}{
	{"Memory", openMemory},
	{"Firestore", openFirestore},
}

func openMemory(t *testing.T, now func() time.Time, idle time.Duration) impl {
	m := store.NewMemory(testSealer(t))
	m.Now = now
	m.IdleTimeout = idle
	return impl{
		Store: m,
		raw: func(t *testing.T, coll, id string) (map[string]any, bool) {
			return m.RawDoc(coll, id)
		},
		setRawAccessToken: func(t *testing.T, id, sealed string) {
			if !m.SetRawAccessToken(id, sealed) {
				t.Fatalf("no session %s", id)
			}
		},
	}
}

func openFirestore(t *testing.T, now func() time.Time, idle time.Duration) impl {
	client := smarttest.NewFirestoreClient(t)
	f := &store.Firestore{Client: client, Sealer: testSealer(t), Now: now, IdleTimeout: idle}
	return impl{
		Store: f,
		raw: func(t *testing.T, coll, id string) (map[string]any, bool) {
			t.Helper()
			snap, err := client.Collection(coll).Doc(id).Get(context.Background())
			if status.Code(err) == codes.NotFound {
				return nil, false
			}
			if err != nil {
				t.Fatalf("raw get %s/%s: %v", coll, id, err)
			}
			return snap.Data(), true
		},
		setRawAccessToken: func(t *testing.T, id, sealed string) {
			t.Helper()
			_, err := client.Collection(store.SessionCollection).Doc(id).Set(context.Background(),
				map[string]any{store.FieldAccessToken: sealed}, firestore.MergeAll)
			if err != nil {
				t.Fatalf("raw set: %v", err)
			}
		},
	}
}

// forEachStore runs f as a parallel subtest per implementation, each with a
// fresh, empty store and its own clock.
func forEachStore(t *testing.T, f func(t *testing.T, c *smarttest.Clock, s impl)) {
	t.Helper()
	forEachStoreIdle(t, 0, f)
}

// forEachStoreIdle is forEachStore with the stores' IdleTimeout set to idle.
func forEachStoreIdle(t *testing.T, idle time.Duration, f func(t *testing.T, c *smarttest.Clock, s impl)) {
	t.Helper()
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			f(t, c, im.open(t, c.Now, idle))
		})
	}
}

// newClock is the stores' injected clock, which tests move by hand.
func newClock() *smarttest.Clock {
	return smarttest.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 500_000_000, time.UTC))
}

func testSealer(t testing.TB) *store.Sealer {
	key := sha256.Sum256([]byte("smarttest contract sealing key"))
	s, err := store.NewSealer(key[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newState returns a state as the launch function makes one: 256 random
// bits, base64url.
func newState() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// newSessionID returns a session id as the callback makes one: the hex
// SHA-256 of a random handle.
func newSessionID() string {
	h := sha256.Sum256(randomBytes(32))
	return hex.EncodeToString(h[:])
}

// newLaunch returns a launch with every field set, expiring 10 minutes after
// now. CreatedAt carries nanoseconds, which the stores drop.
func newLaunch(now time.Time) *store.Launch {
	return &store.Launch{
		State:          newState(),
		RegistrationID: "sandbox",
		Issuer:         "https://ehr.example/r4/tenant-1",
		Audience:       "https://ehr.example/r4/tenant-1",
		AuthorizeURL:   "https://auth.example/authorize",
		TokenURL:       "https://auth.example/token",
		RedirectURI:    "https://app.example/callback",
		LaunchToken:    "opaque-launch-xyz",
		Scope:          "launch openid fhirUser patient/Observation.rs",
		Verifier:       base64.RawURLEncoding.EncodeToString(randomBytes(32)),
		BindingHash:    hex.EncodeToString(randomBytes(32)),
		CreatedAt:      now.Add(-789 * time.Nanosecond),
		ExpiresAt:      now.Add(10 * time.Minute),

		JWKSURI:            "https://auth.example/jwks",
		DiscoveryIssuer:    "https://auth.example/tenants/tenant-1/",
		RequireResponseIss: true,
	}
}

// newSession returns a session with every field set and distinctive tokens.
func newSession(now time.Time) *store.Session {
	return &store.Session{
		ID:                newSessionID(),
		RegistrationID:    "sandbox",
		FHIRBase:          "https://ehr.example/r4/tenant-1",
		Patient:           "patient-1",
		Encounter:         "encounter-1",
		FHIRUser:          "Practitioner/7",
		Scope:             "launch openid fhirUser patient/Patient.rs patient/Observation.rs",
		NeedPatientBanner: true,
		SmartStyleURL:     "https://ehr.example/style.json",
		Tenant:            "tenant-1",
		AccessToken:       "AT-" + hex.EncodeToString(randomBytes(16)),
		RefreshToken:      "RT-" + hex.EncodeToString(randomBytes(16)),
		TokenURL:          "https://auth.example/token",
		TokenExpiry:       now.Add(time.Hour + 321*time.Nanosecond),
		CreatedAt:         now,
		ExpiresAt:         now.Add(8 * time.Hour),
	}
}

// stored is t as both stores return it: UTC, microseconds.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func wantLaunch(l *store.Launch) store.Launch {
	w := *l
	w.CreatedAt = stored(w.CreatedAt)
	w.ExpiresAt = stored(w.ExpiresAt)
	return w
}

func wantSession(s *store.Session) store.Session {
	w := *s
	w.TokenExpiry = stored(w.TokenExpiry)
	w.CreatedAt = stored(w.CreatedAt)
	w.ExpiresAt = stored(w.ExpiresAt)
	w.LastActiveAt = w.CreatedAt // no activity recorded yet
	return w
}

func checkEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestLaunchRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		l := newLaunch(c.Now())
		if err := s.CreateLaunch(ctx, l); err != nil {
			t.Fatalf("CreateLaunch: %v", err)
		}
		raw, ok := s.raw(t, store.LaunchCollection, l.State)
		if !ok {
			t.Fatal("launch not stored")
		}
		if got := raw[store.FieldVerifier]; got != l.Verifier {
			t.Errorf("stored %s = %v, want the verifier", store.FieldVerifier, got)
		}
		if exp, ok := raw[store.TTLField].(time.Time); !ok || !exp.Equal(stored(l.ExpiresAt)) {
			t.Errorf("stored %s = %#v, want the Timestamp %v", store.TTLField, raw[store.TTLField], l.ExpiresAt)
		}
		// The callback verifies an id_token with what discovery found at
		// launch, under these document fields.
		for field, want := range map[string]string{"jwksUri": l.JWKSURI, "discoveryIssuer": l.DiscoveryIssuer} {
			if got := raw[field]; got != want {
				t.Errorf("stored %s = %#v, want %q", field, got, want)
			}
		}

		got, err := s.ConsumeLaunch(ctx, l.State)
		if err != nil {
			t.Fatalf("ConsumeLaunch: %v", err)
		}
		checkEqual(t, "consumed launch", *got, wantLaunch(l))

		// A tombstone remains, without the verifier.
		raw, ok = s.raw(t, store.LaunchCollection, l.State)
		if !ok {
			t.Fatal("consumed launch left no tombstone")
		}
		if _, has := raw[store.FieldVerifier]; has {
			t.Errorf("tombstone still holds the verifier: %v", raw)
		}
		if _, has := raw[store.FieldConsumedAt]; !has {
			t.Errorf("tombstone has no %s: %v", store.FieldConsumedAt, raw)
		}
	})
}

func TestLaunchCreatedAtDefaultsToNow(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		l := newLaunch(c.Now())
		l.CreatedAt = time.Time{}
		l.BindingHash = ""
		l.LaunchToken = ""                    // standalone launch
		l.JWKSURI, l.DiscoveryIssuer = "", "" // an EHR that publishes neither
		if err := s.CreateLaunch(ctx, l); err != nil {
			t.Fatalf("CreateLaunch: %v", err)
		}
		got, err := s.ConsumeLaunch(ctx, l.State)
		if err != nil {
			t.Fatalf("ConsumeLaunch: %v", err)
		}
		want := wantLaunch(l)
		want.CreatedAt = stored(c.Now())
		checkEqual(t, "consumed launch", *got, want)
	})
}

func TestConsumeLaunchErrors(t *testing.T) {
	tests := []struct {
		name string
		// setup creates what it needs and returns the state to consume.
		setup func(t *testing.T, c *smarttest.Clock, s impl) string
		want  error
		// stillStored: the document must still exist afterwards.
		stillStored bool
	}{
		{
			name:  "unknown state",
			setup: func(*testing.T, *smarttest.Clock, impl) string { return newState() },
			want:  store.ErrNotFound,
		},
		{
			name:  "empty state",
			setup: func(*testing.T, *smarttest.Clock, impl) string { return "" },
			want:  store.ErrNotFound,
		},
		{
			name:  "state that is a path",
			setup: func(*testing.T, *smarttest.Clock, impl) string { return "a/b" },
			want:  store.ErrNotFound,
		},
		{
			name:  "state that is a reserved id",
			setup: func(*testing.T, *smarttest.Clock, impl) string { return "__x__" },
			want:  store.ErrNotFound,
		},
		{
			name: "replay",
			setup: func(t *testing.T, c *smarttest.Clock, s impl) string {
				l := mustCreateLaunch(t, c, s)
				if _, err := s.ConsumeLaunch(context.Background(), l.State); err != nil {
					t.Fatalf("first ConsumeLaunch: %v", err)
				}
				return l.State
			},
			want:        store.ErrConsumed,
			stillStored: true,
		},
		{
			name: "expired exactly at expiresAt",
			setup: func(t *testing.T, c *smarttest.Clock, s impl) string {
				l := mustCreateLaunch(t, c, s)
				c.Add(10 * time.Minute)
				return l.State
			},
			want:        store.ErrExpired,
			stillStored: true,
		},
		{
			name: "expired long ago",
			setup: func(t *testing.T, c *smarttest.Clock, s impl) string {
				l := mustCreateLaunch(t, c, s)
				c.Add(48 * time.Hour)
				return l.State
			},
			want:        store.ErrExpired,
			stillStored: true,
		},
		{
			name: "valid one microsecond before expiresAt",
			setup: func(t *testing.T, c *smarttest.Clock, s impl) string {
				l := mustCreateLaunch(t, c, s)
				c.Add(10*time.Minute - time.Microsecond)
				return l.State
			},
			want:        nil,
			stillStored: true,
		},
		{
			name: "consumed, then replayed after expiry",
			setup: func(t *testing.T, c *smarttest.Clock, s impl) string {
				l := mustCreateLaunch(t, c, s)
				if _, err := s.ConsumeLaunch(context.Background(), l.State); err != nil {
					t.Fatalf("first ConsumeLaunch: %v", err)
				}
				c.Add(time.Hour)
				return l.State
			},
			want:        store.ErrConsumed,
			stillStored: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
				state := tt.setup(t, c, s)
				got, err := s.ConsumeLaunch(context.Background(), state)
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Fatalf("ConsumeLaunch = %v, %v; want error %v", got, err, tt.want)
				}
				if tt.want != nil && got != nil {
					t.Errorf("ConsumeLaunch returned a launch with error %v", err)
				}
				if tt.want == nil && (got == nil || got.State != state) {
					t.Errorf("ConsumeLaunch = %+v, want the launch %s", got, state)
				}
				if tt.stillStored {
					if _, ok := s.raw(t, store.LaunchCollection, state); !ok {
						t.Errorf("document %s no longer stored", state)
					}
				}
			})
		})
	}
}

func mustCreateLaunch(t *testing.T, c *smarttest.Clock, s impl) *store.Launch {
	t.Helper()
	l := newLaunch(c.Now())
	if err := s.CreateLaunch(context.Background(), l); err != nil {
		t.Fatalf("CreateLaunch: %v", err)
	}
	return l
}

func TestCreateLaunchErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		l := mustCreateLaunch(t, c, s)

		dup := newLaunch(c.Now())
		dup.State = l.State
		dup.Verifier = "another verifier"
		if err := s.CreateLaunch(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("duplicate CreateLaunch = %v, want ErrExists", err)
		}
		// The first launch is intact.
		got, err := s.ConsumeLaunch(ctx, l.State)
		if err != nil {
			t.Fatalf("ConsumeLaunch: %v", err)
		}
		if got.Verifier != l.Verifier {
			t.Error("duplicate create overwrote the verifier")
		}
		// A consumed launch still blocks its state.
		if err := s.CreateLaunch(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateLaunch over a tombstone = %v, want ErrExists", err)
		}

		invalid := []struct {
			name   string
			mutate func(*store.Launch)
			msg    string
		}{
			{"no state", func(l *store.Launch) { l.State = "" }, "invalid state"},
			{"state with a slash", func(l *store.Launch) { l.State = "x/y" }, "invalid state"},
			{"no expiry", func(l *store.Launch) { l.ExpiresAt = time.Time{} }, "no expiresAt"},
		}
		for _, tt := range invalid {
			l := newLaunch(c.Now())
			tt.mutate(l)
			err := s.CreateLaunch(ctx, l)
			if err == nil || !strings.HasPrefix(err.Error(), "store: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s: CreateLaunch = %v, want a store: error containing %q", tt.name, err, tt.msg)
			}
			if l.State != "" && !strings.Contains(l.State, "/") {
				if _, ok := s.raw(t, store.LaunchCollection, l.State); ok {
					t.Errorf("%s: invalid launch was stored", tt.name)
				}
			}
		}
	})
}

func TestConsumeLaunchConcurrent(t *testing.T) {
	for _, n := range []int{20, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
				l := mustCreateLaunch(t, c, s)
				var (
					wg      sync.WaitGroup
					start   = make(chan struct{})
					results = make([]*store.Launch, n)
					errs    = make([]error, n)
				)
				for i := range n {
					wg.Go(func() {
						<-start
						results[i], errs[i] = s.ConsumeLaunch(context.Background(), l.State)
					})
				}
				close(start)
				wg.Wait()
				wins := 0
				for i, err := range errs {
					switch {
					case err == nil:
						wins++
						if results[i].Verifier != l.Verifier {
							t.Errorf("winner got verifier %q, want %q", results[i].Verifier, l.Verifier)
						}
					case !errors.Is(err, store.ErrConsumed):
						t.Errorf("loser %d: %v, want ErrConsumed", i, err)
					}
				}
				if wins != 1 {
					t.Errorf("%d of %d concurrent consumers succeeded, want exactly 1", wins, n)
				}
			})
		})
	}
}

func TestSessionRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		sess := newSession(c.Now())
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if sess.Version == "" {
			t.Fatal("CreateSession did not set Version")
		}
		got, err := s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		checkEqual(t, "session", *got, wantSession(sess))

		// Without a refresh token or token expiry.
		bare := newSession(c.Now())
		bare.RefreshToken = ""
		bare.TokenExpiry = time.Time{}
		bare.CreatedAt = time.Time{}
		if err := s.CreateSession(ctx, bare); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		got, err = s.GetSession(ctx, bare.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		want := wantSession(bare)
		want.CreatedAt = stored(c.Now())
		want.LastActiveAt = want.CreatedAt
		checkEqual(t, "session without refresh token", *got, want)

		dup := newSession(c.Now())
		dup.ID = sess.ID
		if err := s.CreateSession(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("duplicate CreateSession = %v, want ErrExists", err)
		}
		if got, err := s.GetSession(ctx, sess.ID); err != nil || got.AccessToken != sess.AccessToken {
			t.Errorf("after duplicate create: %+v, %v; want the original session", got, err)
		}
	})
}

func TestGetSessionErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, c *smarttest.Clock, s impl) string
		want  error
	}{
		{"unknown", func(*testing.T, *smarttest.Clock, impl) string { return newSessionID() }, store.ErrNotFound},
		{"empty id", func(*testing.T, *smarttest.Clock, impl) string { return "" }, store.ErrNotFound},
		{"id that is a path", func(*testing.T, *smarttest.Clock, impl) string { return "../launches/x" }, store.ErrNotFound},
		{"expired", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			c.Add(8 * time.Hour)
			return id
		}, store.ErrExpired},
		{"signed out", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			if err := s.SignOut(context.Background(), id); err != nil {
				t.Fatalf("SignOut: %v", err)
			}
			return id
		}, store.ErrSignedOut},
		{"signed out, then past its lifetime", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			if err := s.SignOut(context.Background(), id); err != nil {
				t.Fatalf("SignOut: %v", err)
			}
			c.Add(8 * time.Hour)
			return id
		}, store.ErrExpired},
		{"valid just before expiry", func(t *testing.T, c *smarttest.Clock, s impl) string {
			// In use every 20 minutes, so never idle.
			sess := mustCreateSession(t, c, s)
			for range 8 * 3 {
				c.Add(20 * time.Minute)
				if err := s.Touch(context.Background(), sess, c.Now()); err != nil {
					t.Fatalf("Touch: %v", err)
				}
			}
			c.Add(-time.Microsecond)
			return sess.ID
		}, nil},
		{"expired while in use", func(t *testing.T, c *smarttest.Clock, s impl) string {
			sess := mustCreateSession(t, c, s)
			for range 8 * 3 {
				c.Add(20 * time.Minute)
				if err := s.Touch(context.Background(), sess, c.Now()); err != nil {
					t.Fatalf("Touch: %v", err)
				}
			}
			return sess.ID
		}, store.ErrExpired},
		{"idle", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			c.Add(store.DefaultIdleTimeout)
			return id
		}, store.ErrIdle},
		{"valid just before idle", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			c.Add(store.DefaultIdleTimeout - time.Microsecond)
			return id
		}, nil},
		{"idle and expired: the lifetime is reported", func(t *testing.T, c *smarttest.Clock, s impl) string {
			id := mustCreateSession(t, c, s).ID
			c.Add(9 * time.Hour)
			return id
		}, store.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
				id := tt.setup(t, c, s)
				got, err := s.GetSession(context.Background(), id)
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Fatalf("GetSession = %+v, %v; want error %v", got, err, tt.want)
				}
				if (err == nil) != (got != nil) {
					t.Errorf("GetSession = %+v, %v", got, err)
				}
			})
		})
	}
}

func mustCreateSession(t *testing.T, c *smarttest.Clock, s impl) *store.Session {
	t.Helper()
	sess := newSession(c.Now())
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess
}

// TestSignOut: a signed-out session keeps no token and answers
// ErrSignedOut (so another tab holding its handle is told why) until it
// expires; signing out what is absent is no error.
func TestSignOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		keep := mustCreateSession(t, c, s)
		gone := mustCreateSession(t, c, s)
		if err := s.SignOut(ctx, gone.ID); err != nil {
			t.Fatalf("SignOut: %v", err)
		}
		if _, err := s.GetSession(ctx, gone.ID); !errors.Is(err, store.ErrSignedOut) {
			t.Errorf("GetSession after SignOut = %v, want ErrSignedOut", err)
		}
		doc, ok := s.raw(t, store.SessionCollection, gone.ID)
		if !ok {
			t.Fatal("SignOut removed the session: a tab still holding its handle could not be told why")
		}
		for _, f := range []string{store.FieldAccessToken, store.FieldRefreshToken} {
			if v := doc[f]; v != nil && v != "" {
				t.Errorf("the signed-out session still holds %s", f)
			}
		}
		if at, _ := doc[store.FieldSignedOutAt].(time.Time); !at.Equal(c.Now().Truncate(time.Microsecond)) {
			t.Errorf("%s = %v, want %v", store.FieldSignedOutAt, doc[store.FieldSignedOutAt], c.Now())
		}
		if _, ok := s.raw(t, store.ActivityCollection, gone.ID); ok {
			t.Error("SignOut left the activity record")
		}
		// Signing out again, or what was never there, is not an error.
		unknown := newSessionID()
		for _, id := range []string{gone.ID, unknown, "", "a/b"} {
			if err := s.SignOut(ctx, id); err != nil {
				t.Errorf("SignOut(%q) = %v, want nil", id, err)
			}
		}
		if _, ok := s.raw(t, store.SessionCollection, unknown); ok {
			t.Error("SignOut of an unknown id created a session document")
		}
		if _, err := s.GetSession(ctx, keep.ID); err != nil {
			t.Errorf("other session: %v", err)
		}
		c.Add(8 * time.Hour)
		if _, err := s.GetSession(ctx, gone.ID); !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession of a signed-out session past its lifetime = %v, want ErrExpired or ErrNotFound", err)
		}
	})
}

func TestTokensSealedAtRest(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		a := mustCreateSession(t, c, s)
		b := mustCreateSession(t, c, s)
		sealer := testSealer(t)

		raw, ok := s.raw(t, store.SessionCollection, a.ID)
		if !ok {
			t.Fatal("session not stored")
		}
		dump := fmt.Sprintf("%#v", raw)
		for _, secret := range []string{a.AccessToken, a.RefreshToken} {
			if strings.Contains(dump, secret) {
				t.Errorf("stored document contains a plaintext token: %s", dump)
			}
		}
		for field, plain := range map[string]string{store.FieldAccessToken: a.AccessToken, store.FieldRefreshToken: a.RefreshToken} {
			sealed, _ := raw[field].(string)
			if !strings.HasPrefix(sealed, "v1.") {
				t.Errorf("stored %s = %q, want a v1 sealed value", field, sealed)
			}
			if got, err := sealer.Open(sealed, a.ID); err != nil || got != plain {
				t.Errorf("Open(stored %s, own id) = %q, %v; want the token", field, got, err)
			}
			if got, err := sealer.Open(sealed, b.ID); err == nil {
				t.Errorf("Open(stored %s, another session's id) = %q, want an error", field, got)
			}
		}

		// A's sealed token copied into B's document does not open there.
		s.setRawAccessToken(t, b.ID, raw[store.FieldAccessToken].(string))
		got, err := s.GetSession(ctx, b.ID)
		if err == nil {
			t.Fatalf("GetSession with a token moved from another session = %+v, want an error", got)
		}
		if errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), a.AccessToken) {
			t.Errorf("GetSession error = %v", err)
		}
		if _, err := s.GetSession(ctx, a.ID); err != nil {
			t.Errorf("GetSession(a) = %v", err)
		}
	})
}

func TestUpdateTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		orig := mustCreateSession(t, c, s)
		created := orig.Version

		read, err := s.GetSession(ctx, orig.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if read.Version != created {
			t.Errorf("GetSession Version = %q, CreateSession set %q", read.Version, created)
		}

		upd := *read
		upd.AccessToken = "AT-refreshed"
		upd.RefreshToken = "RT-rotated"
		upd.TokenExpiry = c.Now().Add(2 * time.Hour)
		upd.Patient = "ignored: only token fields change"
		if err := s.UpdateTokens(ctx, &upd); err != nil {
			t.Fatalf("UpdateTokens: %v", err)
		}
		if upd.Version == created || upd.Version == "" {
			t.Errorf("UpdateTokens left Version %q (was %q)", upd.Version, created)
		}
		got, err := s.GetSession(ctx, orig.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		want := wantSession(orig)
		want.AccessToken = "AT-refreshed"
		want.RefreshToken = "RT-rotated"
		want.TokenExpiry = stored(upd.TokenExpiry)
		want.Version = upd.Version
		checkEqual(t, "session after UpdateTokens", *got, want)
		raw, _ := s.raw(t, store.SessionCollection, orig.ID)
		if strings.Contains(fmt.Sprintf("%#v", raw), "AT-refreshed") {
			t.Error("updated token stored in plaintext")
		}

		// A writer still holding the first revision loses.
		stale := *read
		stale.AccessToken = "AT-stale"
		if err := s.UpdateTokens(ctx, &stale); !errors.Is(err, store.ErrConflict) {
			t.Errorf("UpdateTokens with a stale Version = %v, want ErrConflict", err)
		}
		if stale.Version != created {
			t.Errorf("failed UpdateTokens changed Version to %q", stale.Version)
		}
		for _, v := range []string{"", "not-a-version", "2001-01-01T00:00:00Z", "7"} {
			bad := *got
			bad.Version = v
			bad.AccessToken = "AT-bad"
			if err := s.UpdateTokens(ctx, &bad); !errors.Is(err, store.ErrConflict) {
				t.Errorf("UpdateTokens with Version %q = %v, want ErrConflict", v, err)
			}
		}
		if again, _ := s.GetSession(ctx, orig.ID); again == nil || again.AccessToken != "AT-refreshed" {
			t.Errorf("losing writers changed the stored session: %+v", again)
		}

		// Clearing the refresh token and expiry.
		clear := *got
		clear.RefreshToken = ""
		clear.TokenExpiry = time.Time{}
		if err := s.UpdateTokens(ctx, &clear); err != nil {
			t.Fatalf("UpdateTokens: %v", err)
		}
		got, err = s.GetSession(ctx, orig.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if got.RefreshToken != "" || !got.TokenExpiry.IsZero() || got.AccessToken != "AT-refreshed" || got.Version != clear.Version {
			t.Errorf("after clearing: %+v", got)
		}

		// A signed-out session cannot be updated: its tokens stay erased.
		if err := s.SignOut(ctx, orig.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateTokens(ctx, got); !errors.Is(err, store.ErrConflict) {
			t.Errorf("UpdateTokens of a signed-out session = %v, want ErrConflict", err)
		}
		if _, err := s.GetSession(ctx, orig.ID); !errors.Is(err, store.ErrSignedOut) {
			t.Errorf("reload after that conflict = %v, want ErrSignedOut", err)
		}
		if doc, ok := s.raw(t, store.SessionCollection, orig.ID); ok && doc[store.FieldAccessToken] != nil && doc[store.FieldAccessToken] != "" {
			t.Error("UpdateTokens wrote tokens into a signed-out session")
		}
	})
}

func TestUpdateTokensConcurrent(t *testing.T) {
	for _, n := range []int{2, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
				ctx := context.Background()
				sess := mustCreateSession(t, c, s)
				base, err := s.GetSession(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				var (
					wg      sync.WaitGroup
					start   = make(chan struct{})
					writers = make([]store.Session, n)
					errs    = make([]error, n)
				)
				for i := range n {
					writers[i] = *base
					writers[i].AccessToken = fmt.Sprintf("AT-writer-%d", i)
					writers[i].RefreshToken = fmt.Sprintf("RT-writer-%d", i)
					wg.Go(func() {
						<-start
						errs[i] = s.UpdateTokens(ctx, &writers[i])
					})
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil:
						if winner >= 0 {
							t.Errorf("writers %d and %d both won", winner, i)
						}
						winner = i
					case !errors.Is(err, store.ErrConflict):
						t.Errorf("writer %d: %v, want ErrConflict", i, err)
					}
				}
				if winner < 0 {
					t.Fatal("no writer won")
				}
				got, err := s.GetSession(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				w := writers[winner]
				if got.AccessToken != w.AccessToken || got.RefreshToken != w.RefreshToken || got.Version != w.Version {
					t.Errorf("stored tokens %q/%q version %q, want the winner's %q/%q version %q",
						got.AccessToken, got.RefreshToken, got.Version, w.AccessToken, w.RefreshToken, w.Version)
				}
			})
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 10 * time.Minute
	forEachStoreIdle(t, idle, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		sess := mustCreateSession(t, c, s)
		created := stored(c.Now())

		c.Add(idle - time.Second)
		got, err := s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatalf("GetSession before the idle timeout: %v", err)
		}
		if !got.LastActiveAt.Equal(created) {
			t.Errorf("LastActiveAt = %v, want CreatedAt %v", got.LastActiveAt, created)
		}
		version := got.Version
		if err := s.Touch(ctx, got, c.Now()); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if !got.LastActiveAt.Equal(stored(c.Now())) || got.Version != version {
			t.Errorf("after Touch: LastActiveAt %v, Version %q; want %v and the unchanged %q",
				got.LastActiveAt, got.Version, stored(c.Now()), version)
		}
		raw, ok := s.raw(t, store.ActivityCollection, sess.ID)
		if !ok {
			t.Fatal("Touch stored no activity")
		}
		if exp, _ := raw[store.TTLField].(time.Time); !exp.Equal(stored(sess.ExpiresAt)) {
			t.Errorf("activity %s = %v, want the session's %v", store.TTLField, raw[store.TTLField], sess.ExpiresAt)
		}
		touched := c.Now()

		// The touch restarted the idle clock.
		c.Add(idle - time.Second)
		got, err = s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatalf("GetSession %v after a touch: %v", idle-time.Second, err)
		}
		if !got.LastActiveAt.Equal(stored(touched)) || got.Version != version {
			t.Errorf("read back: LastActiveAt %v, Version %q; want %v and %q", got.LastActiveAt, got.Version, stored(touched), version)
		}
		// A touch does not change what UpdateTokens compares: a writer
		// that read the session before the touch still wins.
		upd := *got
		upd.AccessToken = "AT-after-touch"
		if err := s.UpdateTokens(ctx, &upd); err != nil {
			t.Fatalf("UpdateTokens after a touch: %v", err)
		}
		// The refresh itself is not activity: the session is idle one
		// timeout after the last touch.
		c.Add(time.Second)
		if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, store.ErrIdle) {
			t.Errorf("GetSession %v after the last touch = %v, want ErrIdle", idle, err)
		}

		// Signing out removes the activity record.
		if err := s.SignOut(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.raw(t, store.ActivityCollection, sess.ID); ok {
			t.Error("SignOut left the activity record")
		}
		// Touching a signed-out session (a request that read it just
		// before) does not bring it back.
		if err := s.Touch(ctx, sess, c.Now()); err != nil {
			t.Fatalf("Touch of a signed-out session: %v", err)
		}
		if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, store.ErrSignedOut) {
			t.Errorf("GetSession after touching a signed-out session = %v, want ErrSignedOut", err)
		}
		if doc, ok := s.raw(t, store.SessionCollection, sess.ID); !ok || doc[store.FieldSignedOutAt] == nil {
			t.Error("Touch changed the signed-out session")
		}
		for _, bad := range []*store.Session{nil, {ID: ""}, {ID: "a/b"}} {
			if err := s.Touch(ctx, bad, c.Now()); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("Touch(%+v) = %v, want a store: error", bad, err)
			}
		}
	})
}

// TestTouchDoesNotContendWithUpdateTokens runs touches from other requests
// of the same session while a refresh stores its tokens: the refresh wins
// against touches, every touch succeeds, and the session is neither idle
// nor left with old tokens.
func TestTouchDoesNotContendWithUpdateTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		sess := mustCreateSession(t, c, s)
		read, err := s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		const touchers = 8
		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			touchErrs = make([]error, touchers)
			updErr    error
		)
		c.Add(store.DefaultIdleTimeout / 2)
		at := c.Now()
		for i := range touchers {
			wg.Go(func() {
				<-start
				touchErrs[i] = s.Touch(ctx, &store.Session{ID: sess.ID, ExpiresAt: sess.ExpiresAt}, at)
			})
		}
		upd := *read
		upd.AccessToken = "AT-refreshed-during-touches"
		wg.Go(func() {
			<-start
			updErr = s.UpdateTokens(ctx, &upd)
		})
		close(start)
		wg.Wait()
		for i, err := range touchErrs {
			if err != nil {
				t.Errorf("touch %d: %v", i, err)
			}
		}
		if updErr != nil {
			t.Fatalf("UpdateTokens during touches = %v, want success", updErr)
		}
		c.Add(store.DefaultIdleTimeout/2 + time.Minute) // past the creation's idle timeout, not the touch's
		got, err := s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if got.AccessToken != upd.AccessToken || got.Version != upd.Version || !got.LastActiveAt.Equal(stored(at)) {
			t.Errorf("after touches and a refresh: token %q version %q active %v; want %q %q %v",
				got.AccessToken, got.Version, got.LastActiveAt, upd.AccessToken, upd.Version, stored(at))
		}
	})
}

func TestCreateSessionAndLaunch(t *testing.T) {
	forEachStore(t, func(t *testing.T, c *smarttest.Clock, s impl) {
		ctx := context.Background()
		sess := newSession(c.Now())
		l := newLaunch(c.Now())
		if err := s.CreateSessionAndLaunch(ctx, sess, l); err != nil {
			t.Fatalf("CreateSessionAndLaunch: %v", err)
		}
		if sess.Version == "" {
			t.Error("CreateSessionAndLaunch did not set the session's Version")
		}
		got, err := s.GetSession(ctx, sess.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		checkEqual(t, "session", *got, wantSession(sess))
		gotL, err := s.ConsumeLaunch(ctx, l.State)
		if err != nil {
			t.Fatalf("ConsumeLaunch: %v", err)
		}
		checkEqual(t, "launch", *gotL, wantLaunch(l))
		raw, _ := s.raw(t, store.SessionCollection, sess.ID)
		if strings.Contains(fmt.Sprintf("%#v", raw), sess.AccessToken) {
			t.Error("session stored with a plaintext token")
		}

		// Both or neither: a taken id on either side stores nothing.
		for _, tt := range []struct {
			name string
			edit func(s *store.Session, l *store.Launch)
		}{
			{"session id taken", func(s2 *store.Session, _ *store.Launch) { s2.ID = sess.ID }},
			{"launch id taken", func(_ *store.Session, l2 *store.Launch) { l2.State = l.State }},
		} {
			s2, l2 := newSession(c.Now()), newLaunch(c.Now())
			tt.edit(s2, l2)
			if err := s.CreateSessionAndLaunch(ctx, s2, l2); !errors.Is(err, store.ErrExists) {
				t.Errorf("%s: CreateSessionAndLaunch = %v, want ErrExists", tt.name, err)
			}
			if s2.ID != sess.ID {
				if _, ok := s.raw(t, store.SessionCollection, s2.ID); ok {
					t.Errorf("%s: the session was stored without its launch", tt.name)
				}
			}
			if l2.State != l.State {
				if _, ok := s.raw(t, store.LaunchCollection, l2.State); ok {
					t.Errorf("%s: the launch was stored without its session", tt.name)
				}
			}
		}
		if got, err := s.GetSession(ctx, sess.ID); err != nil || got.AccessToken != sess.AccessToken {
			t.Errorf("the first session after the refused creates: %+v, %v", got, err)
		}

		// Invalid input stores nothing.
		bad := newSession(c.Now())
		bad.ExpiresAt = time.Time{}
		l3 := newLaunch(c.Now())
		if err := s.CreateSessionAndLaunch(ctx, bad, l3); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("CreateSessionAndLaunch without expiresAt = %v, want a store: error", err)
		}
		if _, ok := s.raw(t, store.LaunchCollection, l3.State); ok {
			t.Error("launch stored beside an invalid session")
		}
	})
}

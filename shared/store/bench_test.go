package store_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Memory benchmarks: the /launch and /callback handlers' store cost.
//
//	go test -run '^$' -bench Memory -benchmem ./shared/store/

// benchLaunch is a launch of realistic size; states are made cheaply from a
// counter so that the benchmark measures the store, not crypto/rand.
func benchLaunch(state string, now time.Time) *store.Launch {
	l := newLaunch(now)
	l.State = state
	return l
}

var benchSeq atomic.Uint64

func benchState() string { return "bench-state-" + strconv.FormatUint(benchSeq.Add(1), 36) }

func BenchmarkMemoryCreateLaunch(b *testing.B) {
	ctx := context.Background()
	m := store.NewMemory(testSealer(b))
	tmpl := benchLaunch("", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		l := *tmpl
		l.State = benchState()
		if err := m.CreateLaunch(ctx, &l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryCreateConsume(b *testing.B) {
	ctx := context.Background()
	m := store.NewMemory(testSealer(b))
	tmpl := benchLaunch("", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		l := *tmpl
		l.State = benchState()
		if err := m.CreateLaunch(ctx, &l); err != nil {
			b.Fatal(err)
		}
		if _, err := m.ConsumeLaunch(ctx, l.State); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryCreateConsumeParallel(b *testing.B) {
	ctx := context.Background()
	m := store.NewMemory(testSealer(b))
	tmpl := benchLaunch("", time.Now())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l := *tmpl
			l.State = benchState()
			if err := m.CreateLaunch(ctx, &l); err != nil {
				b.Fatal(err)
			}
			if _, err := m.ConsumeLaunch(ctx, l.State); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMemorySessionCreateGet(b *testing.B) {
	ctx := context.Background()
	m := store.NewMemory(testSealer(b))
	tmpl := newSession(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		s := *tmpl
		s.ID = benchState()
		if err := m.CreateSession(ctx, &s); err != nil {
			b.Fatal(err)
		}
		if _, err := m.GetSession(ctx, s.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirestore measures each operation against the local emulator
// (loopback gRPC, warm JVM), reporting p50 and p99 besides the mean.
//
//	go test -run '^$' -bench Firestore -benchmem ./shared/store/
func BenchmarkFirestore(b *testing.B) {
	ctx := context.Background()
	newStore := func(b *testing.B) *store.Firestore {
		return &store.Firestore{Client: smarttest.NewFirestoreClient(b), Sealer: testSealer(b)}
	}
	// run times op(i) for i in [0, b.N) after setup(b.N) has run untimed.
	run := func(b *testing.B, setup func(n int), op func(i int) error) {
		if setup != nil {
			setup(b.N)
		}
		lat := make([]time.Duration, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if err := op(i); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		b.StopTimer()
		reportPercentiles(b, lat)
	}

	b.Run("CreateLaunch", func(b *testing.B) {
		f := newStore(b)
		tmpl := benchLaunch("", time.Now())
		run(b, nil, func(int) error {
			l := *tmpl
			l.State = newState()
			return f.CreateLaunch(ctx, &l)
		})
	})
	b.Run("ConsumeLaunch", func(b *testing.B) {
		f := newStore(b)
		var states []string
		run(b, func(n int) {
			states = make([]string, n)
			for i := range states {
				l := benchLaunch(newState(), time.Now())
				if err := f.CreateLaunch(ctx, l); err != nil {
					b.Fatal(err)
				}
				states[i] = l.State
			}
		}, func(i int) error {
			_, err := f.ConsumeLaunch(ctx, states[i])
			return err
		})
	})
	b.Run("CreateSession", func(b *testing.B) {
		f := newStore(b)
		tmpl := newSession(time.Now())
		run(b, nil, func(int) error {
			s := *tmpl
			s.ID = newSessionID()
			return f.CreateSession(ctx, &s)
		})
	})
	b.Run("CreateSessionAndLaunch", func(b *testing.B) {
		f := newStore(b)
		tmpl, ltmpl := newSession(time.Now()), benchLaunch("", time.Now())
		run(b, nil, func(int) error {
			s, l := *tmpl, *ltmpl
			s.ID, l.State = newSessionID(), newState()
			return f.CreateSessionAndLaunch(ctx, &s, &l)
		})
	})
	b.Run("Touch", func(b *testing.B) {
		f := newStore(b)
		s := newSession(time.Now())
		run(b, func(int) {
			if err := f.CreateSession(ctx, s); err != nil {
				b.Fatal(err)
			}
		}, func(int) error {
			return f.Touch(ctx, s, time.Now())
		})
	})
	b.Run("GetSession", func(b *testing.B) {
		f := newStore(b)
		s := newSession(time.Now())
		run(b, func(int) {
			if err := f.CreateSession(ctx, s); err != nil {
				b.Fatal(err)
			}
		}, func(int) error {
			_, err := f.GetSession(ctx, s.ID)
			return err
		})
	})
	b.Run("UpdateTokens", func(b *testing.B) {
		f := newStore(b)
		s := newSession(time.Now())
		run(b, func(int) {
			if err := f.CreateSession(ctx, s); err != nil {
				b.Fatal(err)
			}
		}, func(i int) error {
			s.AccessToken = "AT-" + strconv.Itoa(i)
			return f.UpdateTokens(ctx, s) // sets s.Version for the next one
		})
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}

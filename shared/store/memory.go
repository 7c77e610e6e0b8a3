package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Default bounds of a Memory store.
const (
	DefaultMaxLaunches = 100_000
	DefaultMaxSessions = 10_000
)

// Memory is the in-memory store of the local runner and of handler tests. It
// behaves like Firestore: tokens are kept sealed (only the sealed form sits
// in the map), a launch is consumed exactly once and then kept, without its
// verifier, as a tombstone until it expires so that a replay gives
// ErrConsumed, and expiry is checked on every read.
//
// Memory stays flat under sustained load. Every insert first sweeps entries
// whose expiresAt has passed (the counterpart of Firestore's TTL deletion),
// then, if the collection is still at its bound, evicts the oldest entries.
// An evicted launch or session then reads as ErrNotFound, so the user gets
// the ordinary "relaunch from the EHR" path rather than a wrong answer.
//
// The fields are read on every call; set them before first use. A Memory
// must not be copied after first use. It is safe for concurrent use.
type Memory struct {
	// Sealer seals the token fields. Required for sessions.
	Sealer *Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxLaunches and MaxSessions bound the number of stored entries,
	// tombstones included; zero means DefaultMaxLaunches and
	// DefaultMaxSessions.
	MaxLaunches, MaxSessions int
	// IdleTimeout ends a session this long after its last recorded
	// activity; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration

	mu       sync.Mutex
	launches map[string]memLaunch
	sessions map[string]memSession
	launchQ  expiryQueue
	sessionQ expiryQueue
	seq      uint64 // insertion counter, tells a live entry from a stale queue item
	rev      uint64 // session revision counter, the source of Version
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory that seals tokens with sealer, reads
// time.Now and uses the default bounds.
func NewMemory(sealer *Sealer) *Memory {
	return &Memory{
		Sealer:      sealer,
		Now:         time.Now,
		MaxLaunches: DefaultMaxLaunches,
		MaxSessions: DefaultMaxSessions,
	}
}

type memLaunch struct {
	l        Launch // Verifier cleared once consumed
	consumed bool
	seq      uint64
}

type memSession struct {
	s   Session // AccessToken and RefreshToken sealed; Version set
	seq uint64
	// active is the activity Touch recorded (zero if none), kept apart
	// from s as Firestore keeps it in another document: it never
	// changes s.Version.
	active time.Time
	// signedOut is when SignOut ended the session (zero if it did not).
	signedOut time.Time
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// CreateLaunch implements Launches. A zero l.CreatedAt is set to now.
func (m *Memory) CreateLaunch(ctx context.Context, l *Launch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: create launch: %w", err)
	}
	now := m.now()
	if err := prepareLaunch(l, now); err != nil {
		return err
	}
	stored := normLaunch(l)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLaunches(now)
	if _, ok := m.launches[l.State]; ok {
		return ErrExists
	}
	m.insertLaunch(stored)
	return nil
}

// insertLaunch adds stored (a launch as normLaunch gives it). Called with
// m.mu held, after the sweep.
func (m *Memory) insertLaunch(stored Launch) {
	if m.launches == nil {
		m.launches = make(map[string]memLaunch)
	}
	m.seq++
	m.launches[stored.State] = memLaunch{l: stored, seq: m.seq}
	m.launchQ.push(stored.State, stored.ExpiresAt, m.seq)
}

// sweepLaunches drops expired launches and, at the bound, the oldest,
// leaving room for one more. Called with m.mu held.
func (m *Memory) sweepLaunches(now time.Time) {
	limit := m.MaxLaunches
	if limit <= 0 {
		limit = DefaultMaxLaunches
	}
	sweep(&m.launchQ, m.launches, now, limit)
}

// sweepSessions is sweepLaunches for sessions.
func (m *Memory) sweepSessions(now time.Time) {
	limit := m.MaxSessions
	if limit <= 0 {
		limit = DefaultMaxSessions
	}
	sweep(&m.sessionQ, m.sessions, now, limit)
}

// ConsumeLaunch implements Launches.
func (m *Memory) ConsumeLaunch(ctx context.Context, state string) (*Launch, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: consume launch: %w", err)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.launches[state]
	switch {
	case !ok:
		return nil, ErrNotFound
	case rec.consumed:
		return nil, ErrConsumed
	case expired(now, rec.l.ExpiresAt):
		return nil, ErrExpired
	}
	l := rec.l
	rec.consumed = true
	rec.l.Verifier = ""
	m.launches[state] = rec
	return &l, nil
}

// CreateSession implements Sessions. A zero s.CreatedAt is set to now.
func (m *Memory) CreateSession(ctx context.Context, s *Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	now := m.now()
	if err := prepareSession(s, now); err != nil {
		return err
	}
	stored, err := sealedSession(m.Sealer, s)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepSessions(now)
	if _, ok := m.sessions[s.ID]; ok {
		return ErrExists
	}
	m.insertSession(s, stored)
	return nil
}

// sealedSession is s as Memory keeps it: normalised, tokens sealed.
func sealedSession(sl *Sealer, s *Session) (Session, error) {
	stored := normSession(s)
	var err error
	if stored.AccessToken, stored.RefreshToken, err = sealTokens(sl, s); err != nil {
		return Session{}, fmt.Errorf("store: create session: %w", err)
	}
	return stored, nil
}

// insertSession adds stored (s sealed) and sets s.Version. Called with m.mu
// held, after the sweep.
func (m *Memory) insertSession(s *Session, stored Session) {
	if m.sessions == nil {
		m.sessions = make(map[string]memSession)
	}
	m.seq++
	m.rev++
	stored.Version = strconv.FormatUint(m.rev, 10)
	m.sessions[s.ID] = memSession{s: stored, seq: m.seq}
	m.sessionQ.push(s.ID, stored.ExpiresAt, m.seq)
	s.Version = stored.Version
}

// CreateSessionAndLaunch implements Store: both under one lock, or neither.
func (m *Memory) CreateSessionAndLaunch(ctx context.Context, s *Session, l *Launch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: create session and launch: %w", err)
	}
	now := m.now()
	if err := prepareSession(s, now); err != nil {
		return err
	}
	if err := prepareLaunch(l, now); err != nil {
		return err
	}
	stored, err := sealedSession(m.Sealer, s)
	if err != nil {
		return err
	}
	storedLaunch := normLaunch(l)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepSessions(now)
	m.sweepLaunches(now)
	_, sessionTaken := m.sessions[s.ID]
	_, launchTaken := m.launches[l.State]
	if sessionTaken || launchTaken {
		return ErrExists
	}
	m.insertSession(s, stored)
	m.insertLaunch(storedLaunch)
	return nil
}

// GetSession implements Sessions.
func (m *Memory) GetSession(ctx context.Context, id string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: get session: %w", err)
	}
	now := m.now()
	m.mu.Lock()
	rec, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	last := lastActive(rec.s.CreatedAt, rec.active)
	switch {
	case expired(now, rec.s.ExpiresAt):
		return nil, ErrExpired
	case !rec.signedOut.IsZero():
		return nil, ErrSignedOut
	case idle(now, last, m.IdleTimeout):
		return nil, ErrIdle
	}
	s := rec.s
	s.LastActiveAt = last
	var err error
	if s.AccessToken, s.RefreshToken, err = openTokens(m.Sealer, id, rec.s.AccessToken, rec.s.RefreshToken); err != nil {
		return nil, fmt.Errorf("store: get session: %w", err)
	}
	return &s, nil
}

// Touch implements Sessions. Like Firestore's, it does not change the
// session's Version; a session that is absent is left absent.
func (m *Memory) Touch(ctx context.Context, s *Session, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: touch: %w", err)
	}
	if s == nil || !validID(s.ID) {
		return fmt.Errorf("store: touch: invalid session")
	}
	at = normTime(at)
	m.mu.Lock()
	if rec, ok := m.sessions[s.ID]; ok {
		rec.active = at
		m.sessions[s.ID] = rec
	}
	m.mu.Unlock()
	s.LastActiveAt = at
	return nil
}

// UpdateTokens implements Sessions. It replaces AccessToken, RefreshToken and
// TokenExpiry. Like the Firestore store it does not check expiry (the caller
// has just read the session), and a session deleted meanwhile gives
// ErrConflict.
func (m *Memory) UpdateTokens(ctx context.Context, s *Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: update tokens: %w", err)
	}
	if s == nil {
		return fmt.Errorf("store: update tokens: nil session")
	}
	if s.Version == "" {
		// Not a revision this store handed out: make the caller reload.
		return ErrConflict
	}
	access, refresh, err := sealTokens(m.Sealer, s)
	if err != nil {
		return fmt.Errorf("store: update tokens: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.sessions[s.ID]
	if !ok || rec.s.Version != s.Version {
		// A deleted session is a conflict too, as on Firestore, whose
		// precondition cannot tell the two apart in one RPC.
		return ErrConflict
	}
	m.rev++
	rec.s.AccessToken = access
	rec.s.RefreshToken = refresh
	rec.s.TokenExpiry = normTime(s.TokenExpiry)
	rec.s.Version = strconv.FormatUint(m.rev, 10)
	m.sessions[s.ID] = rec
	s.Version = rec.s.Version
	return nil
}

// SignOut implements Sessions: like Firestore's, it keeps the session,
// without its tokens and marked signed out, until it expires, and changes
// its Version.
func (m *Memory) SignOut(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: sign out: %w", err)
	}
	now := normTime(m.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.sessions[id]
	if !ok {
		return nil
	}
	m.rev++
	rec.s.AccessToken, rec.s.RefreshToken = "", ""
	rec.s.Version = strconv.FormatUint(m.rev, 10)
	rec.active = time.Time{}
	rec.signedOut = now
	m.sessions[id] = rec
	return nil
}

// expiryQueue holds (key, expiresAt) in insertion order, so that sweeping
// finds expired entries without scanning the map. The functions give every
// launch and every session the same lifetime, so insertion order is expiry
// order; an entry that expires before those inserted ahead of it is swept
// late (its reads still check expiry, and the bound still holds). Items whose
// entry was deleted or replaced are skipped as they surface (their seq no
// longer matches).
type expiryQueue struct {
	items []expiryItem
	head  int // items[:head] are popped
}

type expiryItem struct {
	exp int64 // expiresAt, Unix nanoseconds
	seq uint64
	key string
}

// entry is a stored launch or session.
type entry interface{ seqNo() uint64 }

func (e memLaunch) seqNo() uint64  { return e.seq }
func (e memSession) seqNo() uint64 { return e.seq }

func (q *expiryQueue) len() int { return len(q.items) - q.head }

func (q *expiryQueue) push(key string, exp time.Time, seq uint64) {
	q.items = append(q.items, expiryItem{exp: exp.UnixNano(), seq: seq, key: key})
}

func (q *expiryQueue) pop() {
	q.items[q.head] = expiryItem{}
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && 2*q.head >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// sweep removes from m the entries at the front of q that have expired and,
// while m is at limit, the oldest live entries, leaving room for one insert.
// If stale items pile up (sessions deleted long before expiry), q is rebuilt
// from the live ones.
func sweep[V entry](q *expiryQueue, m map[string]V, now time.Time, limit int) {
	n := now.UnixNano()
	for q.len() > 0 {
		top := q.items[q.head]
		e, ok := m[top.key]
		live := ok && e.seqNo() == top.seq
		if live && top.exp > n && len(m) < limit {
			break
		}
		q.pop()
		if live {
			delete(m, top.key)
		}
	}
	if q.len() > 2*len(m)+1024 {
		kept := q.items[:0]
		for _, it := range q.items[q.head:] {
			if e, ok := m[it.key]; ok && e.seqNo() == it.seq {
				kept = append(kept, it)
			}
		}
		clear(q.items[len(kept):])
		q.items, q.head = kept, 0
	}
}

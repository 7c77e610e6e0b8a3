package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore is the store of the deployed functions. Each operation costs a
// fixed number of RPCs, which the tests count:
//
//	CreateLaunch            1  Create (AlreadyExists → ErrExists)
//	ConsumeLaunch           2  Get, then Update with a LastUpdateTime precondition
//	CreateSession           1  Create
//	CreateSessionAndLaunch  1  one Commit of both Creates
//	GetSession              1  BatchGetDocuments of the session and its activity
//	Touch                   1  Set of the activity document (blind)
//	UpdateTokens            1  Update with a LastUpdateTime precondition
//	SignOut                 1  one Commit: the session's tokens erased and signedOutAt set, its activity deleted
//
// A consumed launch stays behind as a tombstone (consumedAt set, verifier
// deleted) until the TTL policy removes it, so a replay gives ErrConsumed
// rather than ErrNotFound. Session.Version is the document's update time.
//
// Set either Client or NewClient. A Firestore must not be copied after first
// use. It is safe for concurrent use.
type Firestore struct {
	// Client is the Firestore client. If nil, NewClient builds one on first
	// use (never in init); a failed build is retried on the next call.
	Client *firestore.Client
	// NewClient builds the client lazily when Client is nil.
	NewClient func(ctx context.Context) (*firestore.Client, error)
	// Sealer seals the token fields. Required for sessions.
	Sealer *Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OpTimeout is the deadline of each operation, all its RPCs and
	// retries included; zero means DefaultOpTimeout. When it passes, or
	// Firestore answers Unavailable, the operation fails with an error
	// that wraps ErrUnavailable.
	OpTimeout time.Duration
	// IdleTimeout ends a session this long after its last recorded
	// activity; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration

	mu   sync.Mutex
	lazy *firestore.Client
}

var _ Store = (*Firestore)(nil)

// Document field names. TTLField ("expiresAt") is shared with Terraform.
const (
	fieldConsumedAt   = "consumedAt"
	fieldVerifier     = "codeVerifier"
	fieldAccessToken  = "accessToken"
	fieldRefreshToken = "refreshToken"
	fieldTokenExpiry  = "tokenExpiry"
	fieldSignedOutAt  = "signedOutAt"
)

// launchDoc is the shape of launches/{state}.
type launchDoc struct {
	RegistrationID string    `firestore:"registrationId"`
	Issuer         string    `firestore:"iss"`
	Audience       string    `firestore:"aud"`
	AuthorizeURL   string    `firestore:"authorizeUrl"`
	TokenURL       string    `firestore:"tokenUrl"`
	RedirectURI    string    `firestore:"redirectUri"`
	LaunchToken    string    `firestore:"launch"`
	Scope          string    `firestore:"scope"`
	Verifier       string    `firestore:"codeVerifier,omitempty"`
	BindingHash    string    `firestore:"bindingHash,omitempty"`
	CreatedAt      time.Time `firestore:"createdAt"`
	ExpiresAt      time.Time `firestore:"expiresAt"`
	ConsumedAt     time.Time `firestore:"consumedAt,omitempty"`

	JWKSURI            string `firestore:"jwksUri,omitempty"`
	DiscoveryIssuer    string `firestore:"discoveryIssuer,omitempty"`
	RequireResponseIss bool   `firestore:"requireResponseIss,omitempty"`
	NonceHash          string `firestore:"nonceHash,omitempty"`
}

// sessionDoc is the shape of sessions/{sha256(handle)}. The token fields
// hold Sealer output bound to the document id.
type sessionDoc struct {
	RegistrationID    string    `firestore:"registrationId"`
	FHIRBase          string    `firestore:"fhirBase"`
	Patient           string    `firestore:"patient"`
	Encounter         string    `firestore:"encounter"`
	FHIRUser          string    `firestore:"fhirUser"`
	Scope             string    `firestore:"scope"`
	NeedPatientBanner bool      `firestore:"needPatientBanner"`
	SmartStyleURL     string    `firestore:"smartStyleUrl"`
	Tenant            string    `firestore:"tenant"`
	AccessToken       string    `firestore:"accessToken"`
	RefreshToken      string    `firestore:"refreshToken"`
	TokenURL          string    `firestore:"tokenUrl"`
	TokenExpiry       time.Time `firestore:"tokenExpiry,omitempty"`
	CreatedAt         time.Time `firestore:"createdAt"`
	ExpiresAt         time.Time `firestore:"expiresAt"`
	// SignedOutAt is set by SignOut, which also erases the tokens.
	SignedOutAt time.Time `firestore:"signedOutAt,omitempty"`
}

// activityDoc is the shape of activity/{session id}. It expires with its
// session.
type activityDoc struct {
	LastActiveAt time.Time `firestore:"lastActiveAt"`
	ExpiresAt    time.Time `firestore:"expiresAt"`
}

func (f *Firestore) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Firestore) client(ctx context.Context) (*firestore.Client, error) {
	if f.Client != nil {
		return f.Client, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lazy != nil {
		return f.lazy, nil
	}
	if f.NewClient == nil {
		return nil, errors.New("store: no Firestore client configured")
	}
	c, err := f.NewClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: firestore client: %w", err)
	}
	f.lazy = c
	return c, nil
}

func (f *Firestore) doc(ctx context.Context, coll, id string) (*firestore.DocumentRef, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Collection(coll).Doc(id), nil
}

// CreateLaunch implements Launches. A zero l.CreatedAt is set to now.
func (f *Firestore) CreateLaunch(ctx context.Context, l *Launch) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if err := prepareLaunch(l, f.now()); err != nil {
		return err
	}
	ref, err := f.doc(ctx, LaunchCollection, l.State)
	if err != nil {
		return err
	}
	_, err = ref.Create(ctx, newLaunchDoc(l))
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.AlreadyExists:
		return ErrExists
	}
	return wrapErr("create launch", err)
}

// newLaunchDoc is the document of l.
func newLaunchDoc(l *Launch) launchDoc {
	n := normLaunch(l)
	return launchDoc{
		RegistrationID: n.RegistrationID,
		Issuer:         n.Issuer,
		Audience:       n.Audience,
		AuthorizeURL:   n.AuthorizeURL,
		TokenURL:       n.TokenURL,
		RedirectURI:    n.RedirectURI,
		LaunchToken:    n.LaunchToken,
		Scope:          n.Scope,
		Verifier:       n.Verifier,
		BindingHash:    n.BindingHash,
		CreatedAt:      n.CreatedAt,
		ExpiresAt:      n.ExpiresAt,

		JWKSURI:            n.JWKSURI,
		DiscoveryIssuer:    n.DiscoveryIssuer,
		RequireResponseIss: n.RequireResponseIss,
		NonceHash:          n.NonceHash,
	}
}

// ConsumeLaunch implements Launches with a Get and an Update that carries a
// LastUpdateTime precondition, so that of concurrent callers only the first
// write lands; the others see FailedPrecondition and get ErrConsumed.
func (f *Firestore) ConsumeLaunch(ctx context.Context, state string) (*Launch, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if !validID(state) {
		return nil, ErrNotFound
	}
	ref, err := f.doc(ctx, LaunchCollection, state)
	if err != nil {
		return nil, err
	}
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrapErr("consume launch", err)
	}
	var d launchDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("store: consume launch: decode: %w", err)
	}
	now := f.now()
	switch {
	case !d.ConsumedAt.IsZero():
		return nil, ErrConsumed
	case expired(now, d.ExpiresAt):
		return nil, ErrExpired
	}
	_, err = ref.Update(ctx, []firestore.Update{
		{Path: fieldConsumedAt, Value: normTime(now)},
		{Path: fieldVerifier, Value: firestore.Delete},
	}, firestore.LastUpdateTime(snap.UpdateTime))
	switch status.Code(err) {
	case codes.OK:
	case codes.FailedPrecondition, codes.NotFound:
		return nil, ErrConsumed
	default:
		return nil, wrapErr("consume launch", err)
	}
	return &Launch{
		State:          state,
		RegistrationID: d.RegistrationID,
		Issuer:         d.Issuer,
		Audience:       d.Audience,
		AuthorizeURL:   d.AuthorizeURL,
		TokenURL:       d.TokenURL,
		RedirectURI:    d.RedirectURI,
		LaunchToken:    d.LaunchToken,
		Scope:          d.Scope,
		Verifier:       d.Verifier,
		BindingHash:    d.BindingHash,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      d.ExpiresAt,

		JWKSURI:            d.JWKSURI,
		DiscoveryIssuer:    d.DiscoveryIssuer,
		RequireResponseIss: d.RequireResponseIss,
		NonceHash:          d.NonceHash,
	}, nil
}

// CreateSession implements Sessions. A zero s.CreatedAt is set to now.
func (f *Firestore) CreateSession(ctx context.Context, s *Session) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if err := prepareSession(s, f.now()); err != nil {
		return err
	}
	doc, err := f.newSessionDoc(s)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	ref, err := f.doc(ctx, SessionCollection, s.ID)
	if err != nil {
		return err
	}
	wr, err := ref.Create(ctx, doc)
	switch status.Code(err) {
	case codes.OK:
		s.Version = encodeVersion(wr.UpdateTime)
		return nil
	case codes.AlreadyExists:
		return ErrExists
	}
	return wrapErr("create session", err)
}

// newSessionDoc is the document of s, its tokens sealed.
func (f *Firestore) newSessionDoc(s *Session) (sessionDoc, error) {
	access, refresh, err := sealTokens(f.Sealer, s)
	if err != nil {
		return sessionDoc{}, err
	}
	n := normSession(s)
	return sessionDoc{
		RegistrationID:    n.RegistrationID,
		FHIRBase:          n.FHIRBase,
		Patient:           n.Patient,
		Encounter:         n.Encounter,
		FHIRUser:          n.FHIRUser,
		Scope:             n.Scope,
		NeedPatientBanner: n.NeedPatientBanner,
		SmartStyleURL:     n.SmartStyleURL,
		Tenant:            n.Tenant,
		AccessToken:       access,
		RefreshToken:      refresh,
		TokenURL:          n.TokenURL,
		TokenExpiry:       n.TokenExpiry,
		CreatedAt:         n.CreatedAt,
		ExpiresAt:         n.ExpiresAt,
	}, nil
}

// CreateSessionAndLaunch implements Store with one Commit holding both
// Creates. It uses WriteBatch, which the client library marks deprecated
// in favour of transactions: a transaction would add a BeginTransaction
// RPC, and the callback's budget is 3 (two to consume its launch, this
// one).
func (f *Firestore) CreateSessionAndLaunch(ctx context.Context, s *Session, l *Launch) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	now := f.now()
	if err := prepareSession(s, now); err != nil {
		return err
	}
	if err := prepareLaunch(l, now); err != nil {
		return err
	}
	doc, err := f.newSessionDoc(s)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	c, err := f.client(ctx)
	if err != nil {
		return err
	}
	b := c.Batch()
	b.Create(c.Collection(SessionCollection).Doc(s.ID), doc)
	b.Create(c.Collection(LaunchCollection).Doc(l.State), newLaunchDoc(l))
	res, err := b.Commit(ctx)
	switch status.Code(err) {
	case codes.OK:
		s.Version = encodeVersion(res[0].UpdateTime)
		return nil
	case codes.AlreadyExists:
		return ErrExists
	}
	return wrapErr("create session and launch", err)
}

// GetSession implements Sessions.
func (f *Firestore) GetSession(ctx context.Context, id string) (*Session, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if !validID(id) {
		return nil, ErrNotFound
	}
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	// One BatchGetDocuments RPC for the session and its activity.
	snaps, err := c.GetAll(ctx, []*firestore.DocumentRef{
		c.Collection(SessionCollection).Doc(id),
		c.Collection(ActivityCollection).Doc(id),
	})
	if err != nil {
		return nil, wrapErr("get session", err)
	}
	snap := snaps[0]
	if !snap.Exists() {
		return nil, ErrNotFound
	}
	var d sessionDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("store: get session: decode: %w", err)
	}
	var a activityDoc
	if snaps[1].Exists() {
		if err := snaps[1].DataTo(&a); err != nil {
			return nil, fmt.Errorf("store: get session: decode activity: %w", err)
		}
	}
	now := f.now()
	last := lastActive(d.CreatedAt, a.LastActiveAt)
	switch {
	case expired(now, d.ExpiresAt):
		return nil, ErrExpired
	case !d.SignedOutAt.IsZero():
		return nil, ErrSignedOut
	case idle(now, last, f.IdleTimeout):
		return nil, ErrIdle
	}
	access, refresh, err := openTokens(f.Sealer, id, d.AccessToken, d.RefreshToken)
	if err != nil {
		return nil, fmt.Errorf("store: get session: %w", err)
	}
	return &Session{
		ID:                id,
		RegistrationID:    d.RegistrationID,
		FHIRBase:          d.FHIRBase,
		Patient:           d.Patient,
		Encounter:         d.Encounter,
		FHIRUser:          d.FHIRUser,
		Scope:             d.Scope,
		NeedPatientBanner: d.NeedPatientBanner,
		SmartStyleURL:     d.SmartStyleURL,
		Tenant:            d.Tenant,
		AccessToken:       access,
		RefreshToken:      refresh,
		TokenURL:          d.TokenURL,
		TokenExpiry:       d.TokenExpiry,
		CreatedAt:         d.CreatedAt,
		ExpiresAt:         d.ExpiresAt,
		LastActiveAt:      last,
		Version:           encodeVersion(snap.UpdateTime),
	}, nil
}

// Touch implements Sessions with one blind Set of activity/{s.ID}: no read,
// no precondition, and the session document (whose update time is
// UpdateTokens' precondition) is not written.
func (f *Firestore) Touch(ctx context.Context, s *Session, at time.Time) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if s == nil || !validID(s.ID) {
		return fmt.Errorf("store: touch: invalid session")
	}
	ref, err := f.doc(ctx, ActivityCollection, s.ID)
	if err != nil {
		return err
	}
	at = normTime(at)
	if _, err := ref.Set(ctx, activityDoc{LastActiveAt: at, ExpiresAt: normTime(s.ExpiresAt)}); err != nil {
		return wrapErr("touch", err)
	}
	s.LastActiveAt = at
	return nil
}

// UpdateTokens implements Sessions. It replaces AccessToken, RefreshToken
// and TokenExpiry with an Update whose LastUpdateTime precondition is
// s.Version, so of two refreshes that read the same revision only one lands.
func (f *Firestore) UpdateTokens(ctx context.Context, s *Session) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if s == nil {
		return fmt.Errorf("store: update tokens: nil session")
	}
	prev, err := time.Parse(time.RFC3339Nano, s.Version)
	if err != nil {
		// Not a revision this store handed out: make the caller reload.
		return ErrConflict
	}
	if !validID(s.ID) {
		return ErrConflict
	}
	access, refresh, err := sealTokens(f.Sealer, s)
	if err != nil {
		return fmt.Errorf("store: update tokens: %w", err)
	}
	ref, err := f.doc(ctx, SessionCollection, s.ID)
	if err != nil {
		return err
	}
	var expiry any = firestore.Delete
	if !s.TokenExpiry.IsZero() {
		expiry = normTime(s.TokenExpiry)
	}
	wr, err := ref.Update(ctx, []firestore.Update{
		{Path: fieldAccessToken, Value: access},
		{Path: fieldRefreshToken, Value: refresh},
		{Path: fieldTokenExpiry, Value: expiry},
	}, firestore.LastUpdateTime(prev))
	switch status.Code(err) {
	case codes.OK:
		s.Version = encodeVersion(wr.UpdateTime)
		return nil
	case codes.FailedPrecondition, codes.NotFound:
		// Either another writer got there first or the session was deleted
		// (the precondition reports both as FailedPrecondition); the caller
		// reloads and finds out which.
		return ErrConflict
	}
	return wrapErr("update tokens", err)
}

// SignOut implements Sessions.
func (f *Firestore) SignOut(ctx context.Context, id string) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if !validID(id) {
		return nil
	}
	c, err := f.client(ctx)
	if err != nil {
		return err
	}
	// One Commit (WriteBatch: see CreateSessionAndLaunch). The Update
	// needs the session to exist, so an absent one fails the whole
	// Commit with NotFound and nothing is written; it also changes the
	// update time, so a concurrent UpdateTokens gets ErrConflict.
	b := c.Batch()
	b.Update(c.Collection(SessionCollection).Doc(id), []firestore.Update{
		{Path: fieldSignedOutAt, Value: normTime(f.now())},
		{Path: fieldAccessToken, Value: firestore.Delete},
		{Path: fieldRefreshToken, Value: firestore.Delete},
	})
	b.Delete(c.Collection(ActivityCollection).Doc(id))
	if _, err := b.Commit(ctx); err != nil && status.Code(err) != codes.NotFound {
		return wrapErr("sign out", err)
	}
	return nil
}

// encodeVersion turns a document update time into Session.Version.
func encodeVersion(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

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
//	CreateLaunch   1  Create (AlreadyExists → ErrExists)
//	ConsumeLaunch  2  Get, then Update with a LastUpdateTime precondition
//	CreateSession  1  Create
//	GetSession     1  Get
//	UpdateTokens   1  Update with a LastUpdateTime precondition
//	DeleteSession  1  Delete
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
	n := normLaunch(l)
	_, err = ref.Create(ctx, launchDoc{
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
	})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.AlreadyExists:
		return ErrExists
	}
	return wrapErr("create launch", err)
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
	access, refresh, err := sealTokens(f.Sealer, s)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	ref, err := f.doc(ctx, SessionCollection, s.ID)
	if err != nil {
		return err
	}
	n := normSession(s)
	wr, err := ref.Create(ctx, sessionDoc{
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
	})
	switch status.Code(err) {
	case codes.OK:
		s.Version = encodeVersion(wr.UpdateTime)
		return nil
	case codes.AlreadyExists:
		return ErrExists
	}
	return wrapErr("create session", err)
}

// GetSession implements Sessions.
func (f *Firestore) GetSession(ctx context.Context, id string) (*Session, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if !validID(id) {
		return nil, ErrNotFound
	}
	ref, err := f.doc(ctx, SessionCollection, id)
	if err != nil {
		return nil, err
	}
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrapErr("get session", err)
	}
	var d sessionDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("store: get session: decode: %w", err)
	}
	if expired(f.now(), d.ExpiresAt) {
		return nil, ErrExpired
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
		Version:           encodeVersion(snap.UpdateTime),
	}, nil
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

// DeleteSession implements Sessions.
func (f *Firestore) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	if !validID(id) {
		return nil
	}
	ref, err := f.doc(ctx, SessionCollection, id)
	if err != nil {
		return err
	}
	if _, err := ref.Delete(ctx); err != nil && status.Code(err) != codes.NotFound {
		return wrapErr("delete session", err)
	}
	return nil
}

// encodeVersion turns a document update time into Session.Version.
func encodeVersion(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

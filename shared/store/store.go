// Package store keeps the two kinds of short-lived documents that SMART Calc's
// functions share: launches (the PKCE verifier and state between launch and
// callback) and sessions (the sealed tokens between callback and calculate).
//
// Nothing crosses function steps in process memory: every step may run on a
// different instance, so both the Firestore store and the in-memory store used
// by the local runner implement the same contract, checked by one test suite.
// Firestore's TTL deletion can lag by a day, so every read checks expiresAt in
// code and treats an expired document as absent.
package store

import (
	"context"
	"errors"
	"time"
)

// Collection names, shared with Terraform's TTL policies.
const (
	LaunchCollection  = "launches"
	SessionCollection = "sessions"
	// TTLField is the Timestamp field both collections' TTL policies use.
	TTLField = "expiresAt"
)

// Sentinel errors. Callers decide with errors.Is.
var (
	// ErrNotFound means no such document exists (never created, or deleted).
	ErrNotFound = errors.New("store: not found")
	// ErrExpired means the document exists but its expiresAt has passed.
	ErrExpired = errors.New("store: expired")
	// ErrConsumed means the launch was already consumed by an earlier or
	// concurrent callback.
	ErrConsumed = errors.New("store: already consumed")
	// ErrExists means a document with that id already exists.
	ErrExists = errors.New("store: already exists")
	// ErrConflict means another writer changed the document first (for
	// example a concurrent token refresh); the caller should reload.
	ErrConflict = errors.New("store: conflict")
)

// Launch is one authorization attempt, created by the launch function and
// consumed exactly once by the callback. It is keyed by its state.
type Launch struct {
	State          string    // document id; at least 256 random bits, base64url
	RegistrationID string    // which EHR registration started it
	Issuer         string    // the iss the EHR sent (validated)
	Audience       string    // aud sent at authorize (the FHIR base)
	AuthorizeURL   string    // discovered authorization_endpoint
	TokenURL       string    // discovered token_endpoint
	RedirectURI    string    // the exact redirect_uri sent at authorize
	LaunchToken    string    // the EHR's opaque launch parameter ("" for standalone)
	Scope          string    // the requested scope
	Verifier       string    // PKCE code_verifier (secret)
	BindingHash    string    // optional sha256 of a browser-binding nonce
	CreatedAt      time.Time //
	ExpiresAt      time.Time // TTL field

	// JWKSURI and DiscoveryIssuer are the jwks_uri and issuer of the EHR's
	// smart-configuration as discovered at launch ("" where it published
	// none). The callback verifies an id_token with them, so it needs no
	// discovery fetch of its own on a cold instance.
	JWKSURI         string
	DiscoveryIssuer string
	// RequireResponseIss is set when the EHR's discovery advertised
	// authorization_response_iss_parameter_supported: the callback then
	// refuses an authorization response without iss (RFC 9207).
	RequireResponseIss bool
	// NonceHash is the sha256 of the OIDC nonce sent with openid ("" when
	// openid was not requested); the id_token must carry the nonce.
	NonceHash string
}

// Session is an app session created by the callback. It is keyed by the
// SHA-256 of the handle the browser holds, so a store dump does not reveal
// usable handles. AccessToken and RefreshToken are plaintext in memory and
// sealed with AES-GCM whenever they are persisted.
type Session struct {
	ID                string // hex sha256 of the handle
	RegistrationID    string
	FHIRBase          string
	Patient           string
	Encounter         string
	FHIRUser          string
	Scope             string // granted scope
	NeedPatientBanner bool
	SmartStyleURL     string
	Tenant            string
	AccessToken       string // sealed at rest
	RefreshToken      string // sealed at rest
	TokenURL          string // for refresh
	TokenExpiry       time.Time
	CreatedAt         time.Time
	ExpiresAt         time.Time // TTL field
	// Version identifies the stored revision. Stores set it on every read and
	// write; UpdateTokens succeeds only if it still matches (one writer wins).
	Version string
}

// Launches stores launches.
type Launches interface {
	// CreateLaunch stores l. It fails with ErrExists if l.State is taken.
	CreateLaunch(ctx context.Context, l *Launch) error
	// ConsumeLaunch returns the launch and marks it consumed, atomically:
	// among concurrent callers exactly one succeeds and the others get
	// ErrConsumed. An unknown state gives ErrNotFound, a consumed one
	// ErrConsumed, an expired one ErrExpired.
	ConsumeLaunch(ctx context.Context, state string) (*Launch, error)
}

// Sessions stores sessions.
type Sessions interface {
	// CreateSession stores s (ErrExists if s.ID is taken) and sets s.Version.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with that id: ErrNotFound if absent,
	// ErrExpired if expired.
	GetSession(ctx context.Context, id string) (*Session, error)
	// UpdateTokens replaces the token fields of s (AccessToken, RefreshToken,
	// TokenExpiry) if the stored version still equals s.Version, and sets
	// s.Version to the new revision. Otherwise it returns ErrConflict and
	// leaves the stored session as the other writer left it. A session
	// deleted meanwhile also gives ErrConflict (Firestore's precondition
	// cannot tell the two apart in one RPC); reloading then gives
	// ErrNotFound.
	UpdateTokens(ctx context.Context, s *Session) error
	// DeleteSession removes the session (logout). Deleting an absent session
	// is not an error.
	DeleteSession(ctx context.Context, id string) error
}

// Store is both.
type Store interface {
	Launches
	Sessions
}

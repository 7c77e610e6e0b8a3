// Package store keeps the short-lived documents that SMART Calc's functions
// share: launches (the PKCE verifier and state between launch and callback,
// and the callback's one-time hand-offs), sessions (the sealed tokens between
// callback and calculate) and each session's last activity.
//
// Nothing crosses function steps in process memory: every step may run on a
// different instance, so both the Firestore store and the in-memory store used
// by the local runner implement the same contract, checked by one test suite.
// Firestore's TTL deletion can lag by a day, so every read checks expiresAt in
// code and treats an expired document as absent.
//
// # Idle timeout
//
// A session ends at its expiresAt (the absolute lifetime, 8 hours by
// default) or once it has gone IdleTimeout (30 minutes by default) without
// recorded activity, whichever comes first; GetSession checks both on every
// read, on every instance, and answers ErrExpired or ErrIdle.
//
// Activity is recorded by Touch, which the API calls at most once a minute
// per session (shared/assess), so that an API call stays one Firestore RPC
// (the session read) in all but one call a minute. Touch writes a separate
// document, activity/{session id}, blind: no read and no precondition. The
// token refresh's one-writer-wins check is an update-time precondition on
// the session document, which a touch therefore never changes, so a touch
// and a refresh never conflict. GetSession reads both documents in the one
// BatchGetDocuments RPC it already makes. Because the touch is throttled,
// the recorded activity may lag the real one by up to the throttle interval:
// a session can end up to a minute before IdleTimeout has passed since its
// last request, never after.
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
	// ActivityCollection holds each session's last recorded activity,
	// activity/{session id}, apart from the session so that recording it
	// never touches the session document (see the package comment).
	ActivityCollection = "activity"
	// TTLField is the Timestamp field both collections' TTL policies use.
	TTLField = "expiresAt"
)

// DefaultIdleTimeout is a store's IdleTimeout when its field is zero.
const DefaultIdleTimeout = 30 * time.Minute

// Sentinel errors. Callers decide with errors.Is.
var (
	// ErrNotFound means no such document exists (never created, or deleted).
	ErrNotFound = errors.New("store: not found")
	// ErrExpired means the document exists but its expiresAt has passed:
	// for a session, its absolute lifetime is over.
	ErrExpired = errors.New("store: expired")
	// ErrIdle means the session exists and its lifetime is not over, but
	// it has gone IdleTimeout without recorded activity.
	ErrIdle = errors.New("store: session idle")
	// ErrSignedOut means the session was ended by SignOut before its
	// expiresAt: another tab that still holds its handle (a duplicated
	// tab keeps a copy of sessionStorage) is told why.
	ErrSignedOut = errors.New("store: signed out")
	// ErrUnsealable means a sealed value does not open under this
	// Sealer's key and the document's id: the token-sealing key was
	// rotated since the value was sealed, instances hold different keys,
	// or the value was altered (AES-GCM cannot tell these apart).
	ErrUnsealable = errors.New("store: open: sealed value does not authenticate")
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
	ExpiresAt         time.Time // TTL field: the absolute lifetime
	// LastActiveAt is the last activity Touch recorded; CreatedAt until the
	// first. The session is idle once IdleTimeout has passed since it.
	LastActiveAt time.Time
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
	// CreateSession stores s (ErrExists if s.ID is taken) and sets
	// s.Version. Its CreatedAt is its first activity: a LastActiveAt given
	// is replaced by CreatedAt.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with that id: ErrNotFound if absent,
	// ErrExpired past its expiresAt, ErrSignedOut once SignOut ended it,
	// ErrIdle once IdleTimeout has passed since its LastActiveAt (checked
	// in that order).
	GetSession(ctx context.Context, id string) (*Session, error)
	// Touch records at as s's last activity and sets s.LastActiveAt. It
	// never reads, never changes the session itself (s.Version stays
	// valid for UpdateTokens) and does not check that s still exists: a
	// touch of a deleted session leaves only an activity record that
	// expires with it.
	Touch(ctx context.Context, s *Session, at time.Time) error
	// UpdateTokens replaces the token fields of s (AccessToken, RefreshToken,
	// TokenExpiry) if the stored version still equals s.Version, and sets
	// s.Version to the new revision. Otherwise it returns ErrConflict and
	// leaves the stored session as the other writer left it. A session
	// deleted meanwhile also gives ErrConflict (Firestore's precondition
	// cannot tell the two apart in one RPC); reloading then gives
	// ErrNotFound.
	UpdateTokens(ctx context.Context, s *Session) error
	// SignOut ends the session at once, on every instance: its tokens are
	// erased, its activity removed and, until its expiresAt, GetSession
	// answers ErrSignedOut; then it is absent. The session's other fields
	// stay until expiresAt, as any ended session's do. A concurrent
	// UpdateTokens gets ErrConflict. Signing out an absent session is not
	// an error.
	SignOut(ctx context.Context, id string) error
}

// Store is both.
type Store interface {
	Launches
	Sessions
	// CreateSessionAndLaunch stores s and l in one atomic write (one RPC
	// on Firestore): both or neither, ErrExists if either id is taken.
	// The callback stores a session and its one-time hand-off this way.
	CreateSessionAndLaunch(ctx context.Context, s *Session, l *Launch) error
}

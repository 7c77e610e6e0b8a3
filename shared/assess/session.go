// Package assess runs a bleeding-risk assessment for an app session: it
// loads the session, keeps its access token fresh (one refresh, one writer
// wins across instances), fetches the patient's record in one concurrent
// round of FHIR requests, maps it to calculator inputs and runs every
// calculator on that one fetch. The calculate function's handlers are thin
// wrappers around it, and the CDS Hooks services share its mapping.
package assess

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// ErrNoSession means the request carries no session handle, or one that is
// unknown or has ended: the clinician must relaunch from the EHR (401).
var ErrNoSession = errors.New("assess: no session")

// ErrIdle, ErrLifetime and ErrSignedOut say why a session ended: it went
// the idle timeout without a request, it reached its absolute lifetime, or
// the clinician signed out (in this tab or in another one holding the same
// handle, such as a duplicated tab). All wrap ErrNoSession.
var (
	ErrIdle      = fmt.Errorf("%w: the session ended after the idle timeout", ErrNoSession)
	ErrLifetime  = fmt.Errorf("%w: the session reached its lifetime", ErrNoSession)
	ErrSignedOut = fmt.Errorf("%w: the session was signed out", ErrNoSession)
)

// ErrUnsealed means the session's tokens do not open under the current
// token-sealing key: it was rotated while the session was open (or
// instances hold different keys). The session cannot be used, but a
// relaunch makes one sealed under the current key, so it wraps
// ErrNoSession (401, relaunch) rather than failing as a fault.
var ErrUnsealed = fmt.Errorf("%w: the session's tokens do not open under the current key", ErrNoSession)

// DefaultTouchEvery is how often, at most, Load records a session's
// activity when Service.TouchEvery is zero.
const DefaultTouchEvery = time.Minute

// ErrEHRUnavailable means renewing the session's token failed for a reason
// that may pass (the EHR's token endpoint failed or did not answer): the
// clinician should try again, not relaunch (502).
var ErrEHRUnavailable = errors.New("assess: the EHR's sign-in service failed")

// ErrSessionExpired means the EHR no longer accepts the session's token and
// it cannot be refreshed: the clinician must relaunch from the EHR (401).
var ErrSessionExpired = errors.New("assess: the EHR session has expired")

// Service runs assessments. Its zero optional fields take defaults.
type Service struct {
	Sessions store.Sessions
	// Refresh renews a session's tokens (smart.Flow.Refresh); nil means
	// sessions cannot be refreshed.
	Refresh func(context.Context, *store.Session) (*store.Session, error)
	Engine  *calc.Engine
	Scoring *calc.Config
	// HTTPClient is used for FHIR requests; default: a 20 s timeout.
	HTTPClient *http.Client
	Now        func() time.Time
	// LabLookback bounds the lab search; default 1 year.
	LabLookback time.Duration
	// RefreshMargin refreshes a token this long before it expires; default
	// 30 s. A token obtained by the session's own refresh is refreshed only
	// once expired, whatever its lifetime.
	RefreshMargin time.Duration
	// AssessTimeout bounds one assessment's FHIR reads, retries included,
	// well under the platform's 60 s; default DefaultAssessTimeout. What
	// was not read by then is reported as unavailable.
	AssessTimeout time.Duration
	// TouchEvery throttles the recording of a session's activity: Load
	// records it only when the last record is at least this old, so that
	// an API call costs one store read and, at most once in this interval,
	// one blind write (see shared/store's idle timeout). Zero means
	// DefaultTouchEvery.
	TouchEvery time.Duration
	// MaxConcurrentFHIR returns how many FHIR requests this instance may
	// have open at once to the EHR of a registration (shared by every
	// assessment on the instance); nil or 0 means DefaultMaxConcurrentFHIR.
	MaxConcurrentFHIR func(registrationID string) int

	limitsMu sync.Mutex
	limits   map[string]chan struct{}
}

// DefaultAssessTimeout bounds one assessment's FHIR reads.
const DefaultAssessTimeout = 25 * time.Second

// DefaultMaxConcurrentFHIR is the per-EHR limit on concurrent FHIR requests
// from one instance.
const DefaultMaxConcurrentFHIR = 4

// limit returns the instance-wide semaphore of a registration's EHR,
// sized on first use.
func (s *Service) limit(registrationID string) chan struct{} {
	s.limitsMu.Lock()
	defer s.limitsMu.Unlock()
	if l, ok := s.limits[registrationID]; ok {
		return l
	}
	n := 0
	if s.MaxConcurrentFHIR != nil {
		n = s.MaxConcurrentFHIR(registrationID)
	}
	if n <= 0 {
		n = DefaultMaxConcurrentFHIR
	}
	if s.limits == nil {
		s.limits = map[string]chan struct{}{}
	}
	l := make(chan struct{}, n)
	s.limits[registrationID] = l
	return l
}

func (s *Service) assessTimeout() time.Duration {
	if s.AssessTimeout > 0 {
		return s.AssessTimeout
	}
	return DefaultAssessTimeout
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Session is a loaded app session, safe for concurrent use by the FHIR
// requests of one assessment.
type Session struct {
	svc *Service
	mu  sync.Mutex
	st  *store.Session
	// failErr is the error of a refresh that failed while failedFor was
	// the access token. The session's other requests holding that token
	// get the same error instead of each asking the EHR again.
	failedFor string
	failErr   error
	// renewed is the access token this Session's own refresh obtained. It
	// is refreshed again only once it has actually expired, never for
	// being inside the margin: a token that lives less than the margin
	// would otherwise be refreshed before every request.
	renewed string
	// activityErr is why Load could not record this request as the
	// session's activity (nil if it did, or had no need to).
	activityErr error
}

// ActivityError is why Load could not record the request as the session's
// activity, or nil. The request is served all the same; the caller logs it.
func (ss *Session) ActivityError() error { return ss.activityErr }

// Store returns the session's current stored form.
func (ss *Session) Store() *store.Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.st
}

// Load returns the session for a handle from an Authorization header value
// ("Bearer <handle>") and records the request as the session's activity.
// One store read; when the recorded activity is TouchEvery old or older,
// also one blind store write (Sessions.Touch), which never conflicts with a
// token refresh. An ended session gives ErrIdle, ErrLifetime or
// ErrSignedOut, an unknown one ErrNoSession, one whose tokens no longer
// open under the sealing key ErrUnsealed.
//
// A failed activity write does not fail the request: the read just proved
// the session live, and the write is not retried (an API call stays within
// one read and at most one write). Session.ActivityError says why, for the
// caller's log. The recorded activity then stays where it was, so the next
// request tries again, and until one succeeds the session can only end
// earlier than its idle timeout after its last request, never later.
func (s *Service) Load(ctx context.Context, authorization string) (*Session, error) {
	scheme, handle, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	handle = strings.TrimSpace(handle)
	if !ok || !strings.EqualFold(scheme, "Bearer") || handle == "" || len(handle) > 256 {
		return nil, ErrNoSession
	}
	st, err := s.Sessions.GetSession(ctx, smart.SessionID(handle))
	switch {
	case errors.Is(err, store.ErrIdle):
		return nil, ErrIdle
	case errors.Is(err, store.ErrExpired):
		return nil, ErrLifetime
	case errors.Is(err, store.ErrSignedOut):
		return nil, ErrSignedOut
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNoSession
	case errors.Is(err, store.ErrUnsealable):
		return nil, fmt.Errorf("%w (%w)", ErrUnsealed, err)
	case err != nil:
		return nil, fmt.Errorf("assess: load session: %w", err)
	}
	every := s.TouchEvery
	if every <= 0 {
		every = DefaultTouchEvery
	}
	ss := &Session{svc: s, st: st}
	if now := s.now(); now.Sub(st.LastActiveAt) >= every {
		if err := s.Sessions.Touch(ctx, st, now); err != nil {
			ss.activityErr = fmt.Errorf("assess: record session activity: %w", err)
		}
	}
	return ss, nil
}

// token returns a usable access token, refreshing first when it is about to
// expire and a refresh token exists.
func (ss *Session) token(ctx context.Context) (string, error) {
	ss.mu.Lock()
	st := ss.st
	ss.mu.Unlock()
	margin := ss.svc.RefreshMargin
	if margin == 0 {
		margin = 30 * time.Second
	}
	ss.mu.Lock()
	renewed := ss.renewed == st.AccessToken
	ss.mu.Unlock()
	if renewed {
		margin = 0
	}
	if !st.TokenExpiry.IsZero() && !ss.svc.now().Add(margin).Before(st.TokenExpiry) && st.RefreshToken != "" {
		return ss.refresh(ctx, st.AccessToken)
	}
	return st.AccessToken, nil
}

// refresh renews the tokens unless another request of this session already
// did (the token differs from stale) or already failed to. Across instances,
// the store's UpdateTokens precondition lets exactly one writer win;
// smart.Flow.Refresh returns the winner's tokens to the losers.
func (ss *Session) refresh(ctx context.Context, stale string) (string, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.st.AccessToken != stale {
		return ss.st.AccessToken, nil
	}
	if ss.failErr != nil && ss.failedFor == stale {
		return "", ss.failErr
	}
	if ss.svc.Refresh == nil || ss.st.RefreshToken == "" {
		return "", ErrSessionExpired
	}
	next, err := ss.svc.Refresh(ctx, ss.st)
	if err != nil {
		var se *smart.Error
		if errors.As(err, &se) && se.Kind == smart.RefreshUnavailable {
			err = fmt.Errorf("%w: %v", ErrSessionExpired, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrEHRUnavailable, err)
		}
		// One caller's cancellation says nothing about the EHR; the
		// others may still try.
		if ctx.Err() == nil {
			ss.failedFor, ss.failErr = stale, err
		}
		return "", err
	}
	ss.st = next
	ss.renewed = next.AccessToken
	return next.AccessToken, nil
}

// FHIR returns a FHIR client for the session's patient compartment. A 401
// from the EHR triggers one refresh and one retry. The refresh is skipped
// when another request of this session has already replaced every token
// this client sent: the refused token is then no longer the session's, and
// the retry uses the current one.
func (ss *Session) FHIR() *fhir.Client {
	hc := ss.svc.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	st := ss.Store()
	var mu sync.Mutex
	sent := map[string]bool{} // the access tokens this client's requests carried
	return &fhir.Client{
		Base:       st.FHIRBase,
		HTTPClient: hc,
		Limit:      ss.svc.limit(st.RegistrationID),
		Token: func(ctx context.Context) (string, error) {
			t, err := ss.token(ctx)
			if err == nil {
				mu.Lock()
				sent[t] = true
				mu.Unlock()
			}
			return t, err
		},
		OnUnauthorized: func(ctx context.Context) (string, error) {
			ss.mu.Lock()
			cur := ss.st.AccessToken
			ss.mu.Unlock()
			mu.Lock()
			refused := sent[cur]
			mu.Unlock()
			if !refused {
				return cur, nil
			}
			return ss.refresh(ctx, cur)
		},
	}
}

// End signs the session out: the clinician signed out. The handle stops
// working at once on every instance (its tokens are erased; another tab
// holding it is told it was signed out); the EHR's own tokens simply expire
// (SMART defines no revocation an app can rely on).
func (s *Service) End(ctx context.Context, ss *Session) error {
	if err := s.Sessions.SignOut(ctx, ss.Store().ID); err != nil {
		return fmt.Errorf("assess: end session: %w", err)
	}
	return nil
}

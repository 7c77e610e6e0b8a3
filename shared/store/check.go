package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxIDBytes is Firestore's limit on a document id.
const maxIDBytes = 1500

// validID reports whether id can name a Firestore document. Both stores use
// it, so an id that Firestore could not hold (from a forged state parameter,
// say) reads as ErrNotFound everywhere instead of reaching another path.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDBytes && utf8.ValidString(id) &&
		!strings.Contains(id, "/") && id != "." && id != ".." &&
		!(len(id) >= 4 && strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"))
}

// expired reports whether a document with expiresAt exp counts as absent at
// now. A document is valid strictly before its expiresAt.
func expired(now, exp time.Time) bool {
	return !now.Before(exp)
}

// idle reports whether a session last active at last counts as ended at
// now under timeout (zero means DefaultIdleTimeout).
func idle(now, last time.Time, timeout time.Duration) bool {
	if timeout <= 0 {
		timeout = DefaultIdleTimeout
	}
	return expired(now, last.Add(timeout))
}

// lastActive is a session's last activity: the later of its creation and
// its recorded activity (zero when none was recorded).
func lastActive(created, recorded time.Time) time.Time {
	if recorded.After(created) {
		return recorded
	}
	return created
}

// normTime stores times the way Firestore returns them: UTC, microsecond
// precision, no monotonic reading. Both stores apply it, so a value read back
// from either compares equal.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// prepareLaunch validates l before it is created and sets a zero CreatedAt to
// now.
func prepareLaunch(l *Launch, now time.Time) error {
	switch {
	case l == nil:
		return fmt.Errorf("store: create launch: nil launch")
	case !validID(l.State):
		return fmt.Errorf("store: create launch: invalid state")
	case l.ExpiresAt.IsZero():
		// Without expiresAt the TTL policy would never delete it.
		return fmt.Errorf("store: create launch: no expiresAt")
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = now
	}
	return nil
}

// prepareSession validates s before it is created and sets a zero CreatedAt
// to now.
func prepareSession(s *Session, now time.Time) error {
	switch {
	case s == nil:
		return fmt.Errorf("store: create session: nil session")
	case !validID(s.ID):
		return fmt.Errorf("store: create session: invalid id")
	case s.ExpiresAt.IsZero():
		return fmt.Errorf("store: create session: no expiresAt")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.LastActiveAt = s.CreatedAt
	return nil
}

func normLaunch(l *Launch) Launch {
	c := *l
	c.CreatedAt = normTime(c.CreatedAt)
	c.ExpiresAt = normTime(c.ExpiresAt)
	return c
}

func normSession(s *Session) Session {
	c := *s
	c.TokenExpiry = normTime(c.TokenExpiry)
	c.CreatedAt = normTime(c.CreatedAt)
	c.ExpiresAt = normTime(c.ExpiresAt)
	c.LastActiveAt = normTime(c.LastActiveAt)
	c.Version = ""
	return c
}

// sealTokens seals s's tokens, bound to s.ID.
func sealTokens(sl *Sealer, s *Session) (access, refresh string, err error) {
	if access, err = sl.Seal(s.AccessToken, s.ID); err != nil {
		return "", "", err
	}
	if refresh, err = sl.Seal(s.RefreshToken, s.ID); err != nil {
		return "", "", err
	}
	return access, refresh, nil
}

// openTokens opens the sealed tokens of session id.
func openTokens(sl *Sealer, id, access, refresh string) (string, string, error) {
	a, err := sl.Open(access, id)
	if err != nil {
		return "", "", fmt.Errorf("access token: %w", err)
	}
	r, err := sl.Open(refresh, id)
	if err != nil {
		return "", "", fmt.Errorf("refresh token: %w", err)
	}
	return a, r, nil
}

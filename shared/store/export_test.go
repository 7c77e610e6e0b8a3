package store

// Test-only access to Memory's internals, for the contract tests in package
// store_test (external, so that shared/smarttest may import this package).

// RawDoc returns what Memory holds for coll/id, under the Firestore field
// names, exactly as stored: tokens sealed, a consumed launch without its
// verifier.
func (m *Memory) RawDoc(coll, id string) (map[string]any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch coll {
	case LaunchCollection:
		rec, ok := m.launches[id]
		if !ok {
			return nil, false
		}
		l := rec.l
		d := map[string]any{
			"registrationId": l.RegistrationID,
			"iss":            l.Issuer,
			"aud":            l.Audience,
			"authorizeUrl":   l.AuthorizeURL,
			"tokenUrl":       l.TokenURL,
			"redirectUri":    l.RedirectURI,
			"launch":         l.LaunchToken,
			"scope":          l.Scope,
			"createdAt":      l.CreatedAt,
			"expiresAt":      l.ExpiresAt,
		}
		if l.Verifier != "" {
			d[fieldVerifier] = l.Verifier
		}
		if l.BindingHash != "" {
			d["bindingHash"] = l.BindingHash
		}
		if l.JWKSURI != "" {
			d["jwksUri"] = l.JWKSURI
		}
		if l.DiscoveryIssuer != "" {
			d["discoveryIssuer"] = l.DiscoveryIssuer
		}
		if rec.consumed {
			d[fieldConsumedAt] = true
		}
		return d, true
	case SessionCollection:
		rec, ok := m.sessions[id]
		if !ok {
			return nil, false
		}
		s := rec.s
		d := map[string]any{
			"registrationId":    s.RegistrationID,
			"fhirBase":          s.FHIRBase,
			"patient":           s.Patient,
			"encounter":         s.Encounter,
			"fhirUser":          s.FHIRUser,
			"scope":             s.Scope,
			"needPatientBanner": s.NeedPatientBanner,
			"smartStyleUrl":     s.SmartStyleURL,
			"tenant":            s.Tenant,
			fieldAccessToken:    s.AccessToken,
			fieldRefreshToken:   s.RefreshToken,
			"tokenUrl":          s.TokenURL,
			"createdAt":         s.CreatedAt,
			"expiresAt":         s.ExpiresAt,
		}
		if !s.TokenExpiry.IsZero() {
			d[fieldTokenExpiry] = s.TokenExpiry
		}
		if !rec.signedOut.IsZero() {
			d[fieldSignedOutAt] = rec.signedOut
		}
		return d, true
	case ActivityCollection:
		rec, ok := m.sessions[id]
		if !ok || rec.active.IsZero() {
			return nil, false
		}
		return map[string]any{"lastActiveAt": rec.active, "expiresAt": rec.s.ExpiresAt}, true
	}
	return nil, false
}

// SetRawAccessToken overwrites the stored (sealed) access token of session
// id without sealing it, as someone with write access to the store could.
func (m *Memory) SetRawAccessToken(id, sealed string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.sessions[id]
	if !ok {
		return false
	}
	rec.s.AccessToken = sealed
	m.sessions[id] = rec
	return true
}

// Sizes returns the number of stored launches and sessions and the lengths
// of their expiry queues.
func (m *Memory) Sizes() (launches, sessions, launchQueue, sessionQueue int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.launches), len(m.sessions), m.launchQ.len(), m.sessionQ.len()
}

// Field names of the Firestore documents, for tests that read them raw.
const (
	FieldConsumedAt   = fieldConsumedAt
	FieldVerifier     = fieldVerifier
	FieldAccessToken  = fieldAccessToken
	FieldRefreshToken = fieldRefreshToken
	FieldSignedOutAt  = fieldSignedOutAt
)

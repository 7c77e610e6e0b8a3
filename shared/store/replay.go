package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ReplayCollection holds one document per JWT id seen (CDS Hooks client
// JWTs), keyed by the SHA-256 of the id, so that a JWT is accepted exactly
// once across every instance. Its TTL policy on expiresAt removes them.
const ReplayCollection = "jtis"

// replayDoc is the shape of jtis/{sha256(key)}.
type replayDoc struct {
	ExpiresAt time.Time `firestore:"expiresAt"`
	CreatedAt time.Time `firestore:"createdAt"`
}

// UseOnce records key until exp with one Create, and reports whether it
// was new: of any number of callers on any instances, exactly one gets
// true. A key still stored past exp (TTL deletion lags) is reported as
// used too: the JWT it belongs to has expired, so the caller refuses it
// on exp anyway. It implements cds.ReplayCache's Use. A store that does not
// answer gives an error that wraps ErrUnavailable; callers must then
// refuse the JWT (fail closed).
func (f *Firestore) UseOnce(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	ref, err := f.doc(ctx, ReplayCollection, hex.EncodeToString(sum[:]))
	if err != nil {
		return false, err
	}
	_, err = ref.Create(ctx, replayDoc{ExpiresAt: normTime(exp), CreatedAt: normTime(now)})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists:
		return false, nil
	}
	return false, wrapErr("use jti", err)
}

// ReplayCache adapts a Firestore store to cds.ReplayCache.
type ReplayCache struct{ Store *Firestore }

// Use implements cds.ReplayCache with Firestore.UseOnce.
func (r ReplayCache) Use(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	return r.Store.UseOnce(ctx, key, exp, now)
}

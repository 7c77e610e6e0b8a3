package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// ErrUnavailable means the store did not answer in time or could not be
// reached. It is transient: handlers answer 503 with Retry-After and the
// "try again in a moment" page or JSON. Errors that wrap it also wrap the
// underlying gRPC error.
var ErrUnavailable = errors.New("store: unavailable")

// DefaultOpTimeout is the deadline of one store operation (all its RPCs and
// the client library's retries) when Firestore.OpTimeout is zero. It is short
// so that a Firestore outage answers within seconds instead of holding every
// instance for a minute.
const DefaultOpTimeout = 5 * time.Second

// RetryAfterSeconds is the Retry-After handlers send with ErrUnavailable.
const RetryAfterSeconds = 2

// ReconnectBackoff caps gRPC's reconnect backoff (120 s by default), so that
// a connection that failed during an outage is retried within about a
// second of Firestore's return.
var ReconnectBackoff = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   time.Second,
	},
	MinConnectTimeout: 2 * time.Second,
}

// NewFirestoreClient builds a Firestore client whose connection reconnects
// with ReconnectBackoff. With emulatorHost set it dials the emulator itself
// (the client library ignores dial options under the emulator), with the
// emulator's insecure transport and administrator credentials.
func NewFirestoreClient(ctx context.Context, project, database, emulatorHost string) (*firestore.Client, error) {
	var opts []option.ClientOption
	if emulatorHost != "" {
		conn, err := grpc.NewClient("passthrough:///"+emulatorHost,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(emulatorOwner{}),
			grpc.WithConnectParams(ReconnectBackoff))
		if err != nil {
			return nil, fmt.Errorf("store: dial firestore emulator: %w", err)
		}
		opts = append(opts, option.WithGRPCConn(conn))
	} else {
		opts = append(opts, option.WithGRPCDialOption(grpc.WithConnectParams(ReconnectBackoff)))
	}
	var (
		c   *firestore.Client
		err error
	)
	if database != "" && database != firestore.DefaultDatabaseID {
		c, err = firestore.NewClientWithDatabase(ctx, project, database, opts...)
	} else {
		c, err = firestore.NewClient(ctx, project, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("store: firestore client: %w", err)
	}
	return c, nil
}

// emulatorOwner authenticates as the emulator's administrator, as the client
// library does under FIRESTORE_EMULATOR_HOST.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }

// opContext gives one store operation its own deadline, never later than
// the caller's.
func (f *Firestore) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := f.OpTimeout
	if d <= 0 {
		d = DefaultOpTimeout
	}
	return context.WithTimeout(ctx, d)
}

// unavailable reports whether err means the store could not answer:
// gRPC Unavailable or DeadlineExceeded, or the operation's deadline.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// wrapErr prefixes err with the operation and marks it ErrUnavailable when
// the store could not answer.
func wrapErr(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// Pinger is a store that can say whether it answers, for a readiness check.
type Pinger interface {
	Ping(ctx context.Context) error
}

// pingCollection holds no documents; Ping reads an absent one.
const pingCollection = "readiness"

// Ping implements Pinger with one read of an absent document, inside the
// operation deadline. NotFound means Firestore answered.
func (f *Firestore) Ping(ctx context.Context) error {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	ref, err := f.doc(ctx, pingCollection, "ping")
	if err != nil {
		return err
	}
	_, err = ref.Get(ctx)
	if err == nil || status.Code(err) == codes.NotFound {
		return nil
	}
	return wrapErr("ping", err)
}

// Ping implements Pinger: memory always answers.
func (m *Memory) Ping(ctx context.Context) error { return ctx.Err() }

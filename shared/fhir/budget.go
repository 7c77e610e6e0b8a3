package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// errTooLarge marks a response over the per-response cap or the record
// budget.
var errTooLarge = errors.New("response too large")

// budget is one FetchRecord's byte budget, shared by its concurrent
// requests through the context. It holds the bytes of the responses the
// record keeps: a response is charged once it has been read whole (commit),
// never while it is being read, so a page that turns out too large and is
// dropped never takes the budget from the record's other searches, whatever
// the order in which their bytes arrive. While a response is read, it is
// checked against what the record already keeps (fits), so reading stops
// as soon as it can no longer fit. The bytes being read at once are bounded
// by the per-response cap times the requests open to the EHR.
type budget struct {
	mu        sync.Mutex
	committed int64
	total     int64
}

type budgetKey struct{}

// fits reports whether a response of n bytes could still be kept beside
// what the record keeps already.
func (b *budget) fits(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.committed+n <= b.total
}

// commit keeps n bytes if they fit, so the budget is never overdrawn.
func (b *budget) commit(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.committed+n > b.total {
		return false
	}
	b.committed += n
	return true
}

func (b *budget) spent() error {
	return fmt.Errorf("%w: the record's %d-byte budget is spent", errTooLarge, b.total)
}

// body is a 2xx response body as the client reads it: at most limit bytes,
// and no more than the record budget could keep beside what it keeps
// already, so nothing past a cap is read. A caller that keeps what it read
// calls commit.
type body struct {
	rc      io.ReadCloser
	limit   int64
	b       *budget
	read    int64 // bytes handed to the reader
	err     error // sticky: the cap or the budget was reached
	readErr error // the connection failed while the body was read
}

func (c *Client) newBody(ctx context.Context, rc io.ReadCloser) *body {
	b, _ := ctx.Value(budgetKey{}).(*budget)
	return &body{rc: rc, limit: c.maxResponseBytes(), b: b}
}

func (r *body) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	// Read one byte past the cap, to tell "exactly the cap" from "more".
	if room := r.limit + 1 - r.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		r.readErr = err
	}
	if r.read+int64(n) > r.limit {
		r.err = fmt.Errorf("%w: response exceeds the %d-byte limit", errTooLarge, r.limit)
		n = int(r.limit - r.read)
	}
	if r.b != nil && n > 0 && !r.b.fits(r.read+int64(n)) {
		r.err = r.b.spent()
		return 0, r.err
	}
	r.read += int64(n)
	if r.err != nil {
		return n, r.err
	}
	return n, err
}

// commit charges what was read of this body to the record budget: the
// caller keeps it. It fails, charging nothing, when the budget cannot hold
// it beside what was kept meanwhile; the caller then drops what it read.
func (r *body) commit() error {
	if r.b == nil || r.read == 0 {
		return nil
	}
	if !r.b.commit(r.read) {
		return r.b.spent()
	}
	return nil
}

func (r *body) Close() error { return r.rc.Close() }

// readAll reads the whole body within the caps, closes it and keeps it
// (commit). A body over either cap is not read further, nothing of it is
// kept, and the error matches errTooLarge; any other failure is "reading
// the response failed".
func (r *body) readAll() ([]byte, error) {
	defer r.Close()
	data, err := io.ReadAll(r)
	if err == nil {
		err = r.commit()
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, err
		}
		return nil, errors.New("reading the response failed")
	}
	return data, nil
}

// readAll reads a whole response body (an error response) within the caps
// (body.readAll), and closes it.
func (c *Client) readAll(ctx context.Context, resp *http.Response) ([]byte, error) {
	if limit := c.maxResponseBytes(); resp.ContentLength > limit {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: response of %d bytes exceeds the %d-byte limit", errTooLarge, resp.ContentLength, limit)
	}
	return c.newBody(ctx, resp.Body).readAll()
}

func (c *Client) maxResponseBytes() int64 {
	if c.MaxResponseBytes > 0 {
		return c.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

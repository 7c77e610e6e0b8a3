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
// requests through the context.
type budget struct {
	mu    sync.Mutex
	left  int64
	total int64
}

type budgetKey struct{}

// take charges n bytes to the budget if it still holds them; a read that
// would overdraw it is refused whole, so the budget never goes negative.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// give returns n bytes to the budget (a page that was dropped).
func (b *budget) give(n int64) {
	b.mu.Lock()
	b.left += n
	b.mu.Unlock()
}

// body is a 2xx response body as the client reads it: at most limit bytes,
// each charged to the record budget (if any) as it arrives, so concurrent
// responses share the budget exactly and nothing past a cap is read. A
// caller that drops what it read calls refund.
type body struct {
	rc      io.ReadCloser
	limit   int64
	b       *budget
	read    int64 // bytes handed to the reader
	charged int64 // bytes charged to b
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
	if r.b != nil && n > 0 {
		if !r.b.take(int64(n)) {
			r.err = fmt.Errorf("%w: the record's %d-byte budget is spent", errTooLarge, r.b.total)
			return 0, r.err
		}
		r.charged += int64(n)
	}
	r.read += int64(n)
	if r.err != nil {
		return n, r.err
	}
	return n, err
}

// refund gives back to the budget what this body was charged.
func (r *body) refund() {
	if r.b != nil && r.charged > 0 {
		r.b.give(r.charged)
		r.charged = 0
	}
}

func (r *body) Close() error { return r.rc.Close() }

// readAll reads a whole response body (a resource read, or an error
// response) within the caps, and closes it. A body over either cap is not
// read further, and what was read of it is given back to the budget.
func (c *Client) readAll(ctx context.Context, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if limit := c.maxResponseBytes(); resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: response of %d bytes exceeds the %d-byte limit", errTooLarge, resp.ContentLength, limit)
	}
	r := c.newBody(ctx, resp.Body)
	data, err := io.ReadAll(r)
	if err != nil {
		r.refund()
		if errors.Is(err, errTooLarge) {
			return nil, err
		}
		return nil, errors.New("reading the response failed")
	}
	return data, nil
}

func (c *Client) maxResponseBytes() int64 {
	if c.MaxResponseBytes > 0 {
		return c.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

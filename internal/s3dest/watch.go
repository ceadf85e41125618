package s3dest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// errStalled is the cause of a request the stall guard cancelled.
var errStalled = errors.New("request body stalled")

// stallError says that a request was cancelled because its body stopped moving.
type stallError struct {
	after time.Duration
	err   error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("no byte of the request body was sent for %s: %v", e.after, e.err)
}
func (e *stallError) Unwrap() error { return e.err }

// bodyWatch follows the body of one S3 request as the HTTP transport sends it: it reports
// the bytes to onProgress and cancels the request when no byte has been taken for timeout.
// It watches bytes leaving, not bytes read: the SDK reads a body once more to hash it
// before sending it over plain HTTP, and that is no progress of the upload.
type bodyWatch struct {
	onProgress func(n int64)
	timeout    time.Duration
	stalled    func() // cancels the request

	mu    sync.Mutex
	timer *time.Timer
}

type bodyWatchKey struct{}

// withBodyWatch makes the S3 request run with ctx watch its body.
func withBodyWatch(ctx context.Context, w *bodyWatch) context.Context {
	return context.WithValue(ctx, bodyWatchKey{}, w)
}

func bodyWatchFrom(ctx context.Context) *bodyWatch {
	w, _ := ctx.Value(bodyWatchKey{}).(*bodyWatch)
	return w
}

// touch (re)starts the stall timer: a read of the body began.
func (w *bodyWatch) touch() {
	if w.timeout <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.AfterFunc(w.timeout, w.stalled)
	} else {
		w.timer.Reset(w.timeout)
	}
}

// disarm stops the stall timer: the body is sent (the response is the transport's
// ResponseHeaderTimeout's business) or the attempt is over (a retry's backoff is no stall).
func (w *bodyWatch) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// sending wraps one attempt's body; call finish when the attempt is over. The timer starts
// at the first read, not before: waiting for a pooled connection or for credentials from STS
// is no stall of the body.
func (w *bodyWatch) sending(r io.Reader, length int64) *watchedBody {
	return &watchedBody{r: r, w: w, left: length}
}

type watchedBody struct {
	r    io.Reader
	w    *bodyWatch
	left int64 // bytes still to send; negative when unknown
	// over is set when the attempt has returned: a late read by the transport (it may still
	// be writing when an early error response arrived) must not re-arm the timer.
	over atomic.Bool
}

// Read is called by the transport's writing goroutine.
func (b *watchedBody) Read(p []byte) (int, error) {
	if b.over.Load() {
		return b.r.Read(p)
	}
	b.w.touch()
	n, err := b.r.Read(p)
	if n > 0 {
		if b.w.onProgress != nil {
			b.w.onProgress(int64(n))
		}
		b.left -= int64(n)
	}
	if err != nil || b.left == 0 {
		b.w.disarm()
	}
	return n, err
}

// finish ends the attempt.
func (b *watchedBody) finish() {
	b.over.Store(true)
	b.w.disarm()
}

// fencedError is Object.Fence's refusal. The SDK's retryer must not try the request again
// (a refusal does not pass), and Put hands the caller its own error back unwrapped.
type fencedError struct{ err error }

func (e *fencedError) Error() string        { return e.err.Error() }
func (e *fencedError) Unwrap() error        { return e.err }
func (e *fencedError) RetryableError() bool { return false }

type fenceKey struct{}

func withFence(ctx context.Context, fence func() error) context.Context {
	return context.WithValue(ctx, fenceKey{}, fence)
}

func fenceFrom(ctx context.Context) func() error {
	f, _ := ctx.Value(fenceKey{}).(func() error)
	return f
}

// checkFence asks the fence, if any; nil means go on.
func checkFence(fence func() error) error {
	if fence == nil {
		return nil
	}
	if err := fence(); err != nil {
		return &fencedError{err: err}
	}
	return nil
}

// fencedBody asks the fence before every read of a request body: a writer that lost its
// right to write stops in the middle of a body, and a truncated request stores nothing.
type fencedBody struct {
	r     io.Reader
	fence func() error
}

func (b *fencedBody) Read(p []byte) (int, error) {
	if err := checkFence(b.fence); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

// bodyWatchMiddleware hands the watched body to the transport. It sits last in the
// deserialize step, after retries, signing and checksums (finalize step), so it sees each
// attempt's bytes as they go on the wire.
type bodyWatchMiddleware struct{}

func (bodyWatchMiddleware) ID() string { return "s3dest.BodyWatch" }

func (bodyWatchMiddleware) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	fence := fenceFrom(ctx)
	// Every attempt of every request asks the fence, after the SDK's retry backoff.
	if err := checkFence(fence); err != nil {
		return middleware.DeserializeOutput{}, middleware.Metadata{}, err
	}
	w := bodyWatchFrom(ctx)
	req, ok := in.Request.(*smithyhttp.Request)
	if (w == nil && fence == nil) || !ok || req.GetStream() == nil {
		return next.HandleDeserialize(ctx, in)
	}
	var stream io.Reader = req.GetStream()
	if fence != nil {
		stream = &fencedBody{r: stream, fence: fence}
	}
	if w != nil {
		body := w.sending(stream, req.ContentLength)
		defer body.finish()
		stream = body
	}
	// The wrappers are no io.Seeker, so SetStream keeps the ContentLength already set; the
	// retry middleware rewinds its own copy of the request, never this one.
	rc, err := req.SetStream(stream)
	if err != nil {
		return middleware.DeserializeOutput{}, middleware.Metadata{}, fmt.Errorf("watch request body: %w", err)
	}
	in.Request = rc
	return next.HandleDeserialize(ctx, in)
}

// addBodyWatch registers bodyWatchMiddleware on an S3 client's stack (s3.Options.APIOptions).
func addBodyWatch(stack *middleware.Stack) error {
	return stack.Deserialize.Add(bodyWatchMiddleware{}, middleware.After)
}

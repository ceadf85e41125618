package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// recorder is Temporal's side of heartbeats: it confirms them, or answers err.
type recorder struct {
	mu    sync.Mutex
	err   error
	calls atomic.Int32
	// after, when set, is asked on every call: from then on the recorder answers err.
	after func(n int32) bool
}

func (r *recorder) RecordActivityHeartbeat(_ context.Context, _ []byte, _ ...interface{}) error {
	n := r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.after != nil && !r.after(n) {
		return nil
	}
	return r.err
}

func (r *recorder) answer(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// An attempt writes only while Temporal confirms its heartbeats: the lease lapses when they
// go unconfirmed (Temporal may have timed the attempt out and started another), and a
// confirmed heartbeat renews it.
func TestLeaseLapsesWithoutConfirmedHeartbeatsAndRenews(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	span := 400 * time.Millisecond
	h := newHeartbeater(ctx, "events", lease{rec: rec, span: span}, export.Progress{}, time.Hour, time.Now, cancel)
	defer h.stop()
	if err := h.fence(); err != nil {
		t.Fatalf("fresh lease: %v", err)
	}
	rec.answer(serviceerror.NewUnavailable("frontend down"))
	time.Sleep(span + 100*time.Millisecond)
	err := h.fence()
	if failure.KindOf(err) != failure.KindLeaseLost {
		t.Fatalf("after %s without a confirmed heartbeat: %v, want %s", span, err, failure.KindLeaseLost)
	}
	t.Logf("lapsed: %v", err)
	if ctx.Err() != nil {
		t.Fatal("an unconfirmed heartbeat is no reason to end the attempt")
	}
	rec.answer(nil)
	h.record(export.Progress{Reserved: 8})
	waitFor(t, "a confirmed heartbeat renews the lease", func() bool { return h.fence() == nil })
}

// Temporal no longer knows the attempt (it timed out and was retried): the attempt stops
// for good, at once, whatever it is doing.
func TestLeaseEndsWhenTemporalDisownsTheAttempt(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	h := newHeartbeater(ctx, "events", lease{rec: rec, span: time.Hour}, export.Progress{}, time.Hour, time.Now, cancel)
	defer h.stop()
	rec.answer(serviceerror.NewNotFound("invalid activityID or activity already timed out or invoking workflow is completed"))
	h.record(export.Progress{Reserved: 8})
	waitFor(t, "the attempt is cancelled", func() bool { return ctx.Err() != nil })
	if !errors.Is(context.Cause(ctx), errAbandoned) {
		t.Errorf("cause %v", context.Cause(ctx))
	}
	if failure.KindOf(h.fence()) != failure.KindLeaseLost {
		t.Errorf("fence: %v", h.fence())
	}
	rec.answer(nil) // nothing brings it back
	h.record(export.Progress{Reserved: 16})
	time.Sleep(50 * time.Millisecond)
	if h.fence() == nil {
		t.Error("a disowned attempt got its lease back")
	}
}

func TestLeaseEndsBeforeTheAttemptTimesOut(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	h := newHeartbeater(ctx, "events", lease{rec: rec, span: time.Hour, end: time.Now().Add(-time.Second)}, export.Progress{}, time.Hour, time.Now, cancel)
	defer h.stop()
	if failure.KindOf(h.fence()) != failure.KindLeaseLost {
		t.Errorf("fence past the attempt's end: %v", h.fence())
	}
	// The end is a margin before the timeout Temporal counts from the attempt's start.
	started := time.Now()
	info := activityInfo(time.Date(2023, 3, 14, 4, 0, 0, 0, time.UTC), 6*time.Hour)
	if got, want := attemptEnd(info, started), started.Add(6*time.Hour-attemptDeadlineGap); !got.Equal(want) {
		t.Errorf("attempt end %s, want %s", got, want)
	}
	info = activityInfo(time.Date(2023, 3, 14, 4, 0, 0, 0, time.UTC), 2*time.Minute)
	if got, want := attemptEnd(info, started), started.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("short attempt end %s, want %s", got, want)
	}
}

// A table export whose attempt Temporal disowns mid-table writes no shard after that.
func TestExportTableStopsWritingOnceDisowned(t *testing.T) {
	b := &bucket{delay: 10 * time.Millisecond} // 400 shards take over 4 s: heartbeats go every second
	a := newActivities(&source{rows: 400}, b)
	rec := &recorder{err: serviceerror.NewNotFound("activity already timed out")}
	var stopAt atomic.Int32
	rec.after = func(n int32) bool {
		if n < 3 {
			return false
		}
		b.mu.Lock()
		stopAt.CompareAndSwap(0, int32(len(b.objects)))
		b.mu.Unlock()
		return true
	}
	a.Heartbeats = rec
	h := newHarness(t, a)
	_, err := h.run(input())
	if err == nil {
		t.Fatal("the export finished after Temporal disowned it")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := int32(len(b.objects)); got > stopAt.Load()+1 {
		// At most the upload already past the fence when the heartbeat came back lands.
		t.Errorf("%d shards written, %d when Temporal disowned the attempt", got, stopAt.Load())
	}
	var appErr *temporal.ApplicationError
	t.Logf("stopped with %d of 400 shards: %v (%v)", len(b.objects), err, errors.As(err, &appErr))
}

func activityInfo(started time.Time, timeout time.Duration) activity.Info {
	return activity.Info{StartedTime: started, Deadline: started.Add(timeout)}
}

// reservingRecorder confirms heartbeats and remembers the highest shard reservation it holds.
type reservingRecorder struct {
	held atomic.Int64
}

func (r *reservingRecorder) RecordActivityHeartbeat(_ context.Context, _ []byte, details ...interface{}) error {
	if len(details) == 1 {
		if p, ok := details[0].(export.Progress); ok && int64(p.Reserved) > r.held.Load() {
			r.held.Store(int64(p.Reserved))
		}
	}
	return nil
}

// reservationCheck fails the test when a shard is written at an index Temporal does not hold
// a reservation beyond.
type reservationCheck struct {
	*bucket
	t   *testing.T
	rec *reservingRecorder
}

func (c reservationCheck) Writer(s3dest.Target) s3dest.Writer { return c }
func (c reservationCheck) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	var index int
	if _, err := fmt.Sscanf(o.Key[strings.LastIndex(o.Key, "_")+1:], "%d", &index); err != nil {
		c.t.Errorf("key %s: %v", o.Key, err)
	}
	if held := c.rec.held.Load(); int64(index) >= held {
		c.t.Errorf("shard %d written while Temporal held a reservation up to %d only", index, held)
	}
	return c.bucket.Put(ctx, o)
}

// With heartbeats through the client, every upload waits until Temporal holds a reservation
// beyond its index: a successor always knows every index that may exist.
func TestEveryUploadIsCoveredByAConfirmedReservation(t *testing.T) {
	rec := &reservingRecorder{}
	b := &bucket{}
	a := newActivities(&source{rows: 300}, b)
	a.Destinations = reservationCheck{bucket: b, t: t, rec: rec}
	a.Heartbeats = rec
	res, err := newHarness(t, a).run(input())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 300 {
		t.Fatalf("%d files", len(res.Files))
	}
	t.Logf("300 shards, reservation held up to %d", rec.held.Load())
}

package bqsource

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// openFake serves a table of rows on streams and opens a session of it.
func openFake(t *testing.T, rows int64, streams int) (*FakeBigQuery, *Client, *Session) {
	t.Helper()
	f := &FakeBigQuery{Rows: rows, MaxStreams: streams}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, streams)
	if err != nil {
		t.Fatal(err)
	}
	return f, c, s
}

// TestReadReopensStalledStream: a server that stops sending mid-stream without ending the call
// is given up after the stall timeout and read again from the row after the last one
// delivered: every row arrives once, in order.
func TestReadReopensStalledStream(t *testing.T) {
	f, c, s := openFake(t, 20000, 2)
	c.stallTimeout = 300 * time.Millisecond
	st := s.Streams[1]
	from, to := f.StreamRange(st)
	f.Stall(st, 3000)
	f.Stall(st, 0) // stalls again at once: no progress in between
	f.Break(st, 1000, codes.Unavailable)
	started := time.Now()
	ids, err := readStream(t, c, s, st, 200)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, ids, from+200, to)
	offs := f.ReadOffsets(st)
	if len(offs) != 4 || offs[0] != 200 || offs[1] < 3200 || offs[2] != offs[1] || offs[3] < offs[2]+1000 {
		t.Errorf("ReadRows offsets %v", offs)
	}
	if d := time.Since(started); d < 2*c.stallTimeout {
		t.Errorf("two stalls took %s, less than two stall timeouts", d)
	}
}

// TestStallNotWhileFnRuns: the time the caller holds a batch (backpressure while shards
// upload) is no stall, however long.
func TestStallNotWhileFnRuns(t *testing.T) {
	f, c, s := openFake(t, 5000, 1)
	c.stallTimeout = 200 * time.Millisecond
	st := s.Streams[0]
	var rows int64
	batches := 0
	err := c.Read(context.Background(), s, st, 0, func(rec arrow.RecordBatch) error {
		if batches++; batches <= 2 {
			time.Sleep(3 * c.stallTimeout)
		}
		rows += rec.NumRows()
		return nil
	})
	if err != nil || rows != 5000 || len(f.ReadOffsets(st)) != 1 {
		t.Fatalf("read %d rows in %d calls: %v", rows, len(f.ReadOffsets(st)), err)
	}
}

// TestReadGivesUpOnEndlessStall: a stream that stalls every time fails as KindStalled, naming
// the stream, the row and the timeout, after ReadRetries new calls.
func TestReadGivesUpOnEndlessStall(t *testing.T) {
	f, c, s := openFake(t, 5000, 1)
	c.stallTimeout = 100 * time.Millisecond
	st := s.Streams[0]
	f.Stall(st, 1200)
	for range ReadRetries + 5 {
		f.Stall(st, 0)
	}
	_, err := readStream(t, c, s, st, 0)
	offs := f.ReadOffsets(st)
	if failure.KindOf(err) != failure.KindStalled || len(offs) != ReadRetries+1 {
		t.Fatalf("endless stall: %v after ReadRows at %v", err, offs)
	}
	resumed := offs[len(offs)-1]
	for _, want := range []string{st, "at row " + strconv.FormatInt(resumed, 10), "100ms", "p.d.events"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if fe, _ := failure.As(err); fe.Permanent() {
		t.Error("a stall must stay retryable")
	}
}

// TestReadRetriesResourceExhausted: RESOURCE_EXHAUSTED, BigQuery's throttling signal, is
// retried in place with backoff; if it lasts, the read fails as KindBigQueryThrottled.
func TestReadRetriesResourceExhausted(t *testing.T) {
	f, c, s := openFake(t, 8000, 1)
	st := s.Streams[0]
	f.Break(st, 2000, codes.ResourceExhausted)
	f.Break(st, 0, codes.ResourceExhausted)
	ids, err := readStream(t, c, s, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, ids, 0, 8000)
	if offs := f.ReadOffsets(st); len(offs) != 3 || offs[1] < 2000 || offs[2] != offs[1] {
		t.Errorf("ReadRows offsets %v", offs)
	}

	for range ReadRetries + 1 {
		f.Break(st, 0, codes.ResourceExhausted)
	}
	before := len(f.ReadOffsets(st))
	_, err = readStream(t, c, s, st, 0)
	if failure.KindOf(err) != failure.KindBigQueryThrottled || status.Code(errors.Unwrap(err)) != codes.ResourceExhausted || len(f.ReadOffsets(st))-before != ReadRetries+1 {
		t.Errorf("endless RESOURCE_EXHAUSTED: %v after %d calls", err, len(f.ReadOffsets(st))-before)
	}
}

// TestReadStreamErrorKinds: failures a new ReadRows call cannot fix are not retried in place,
// and say what they are.
func TestReadStreamErrorKinds(t *testing.T) {
	f, c, s := openFake(t, 5000, 1)
	st := s.Streams[0]
	calls := func() int { return len(f.ReadOffsets(st)) }

	cases := []struct {
		name  string
		code  codes.Code
		sess  func(Session) *Session
		kind  failure.Kind
		names string
	}{
		{"PERMISSION_DENIED", codes.PermissionDenied, nil, failure.KindBigQueryPermission, "p.d.events"},
		{"UNAUTHENTICATED", codes.Unauthenticated, nil, failure.KindBigQueryPermission, "credentials"},
		{"FAILED_PRECONDITION", codes.FailedPrecondition, nil, failure.KindSessionExpired, st},
		{"INVALID_ARGUMENT past expiry", codes.InvalidArgument, func(s Session) *Session { s.ExpireTime = time.Now().Add(-time.Minute); return &s }, failure.KindSessionExpired, "new session"},
		{"INVALID_ARGUMENT", codes.InvalidArgument, nil, failure.KindTransient, st},
		{"PERMISSION_DENIED, old session", codes.PermissionDenied, func(s Session) *Session { s.Table = TableRef{}; return &s }, failure.KindBigQueryPermission, s.Name},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess := s
			if tc.sess != nil {
				sess = tc.sess(*s)
			}
			f.Break(st, 700, tc.code)
			before := calls()
			_, err := readStream(t, c, sess, st, 0)
			if failure.KindOf(err) != tc.kind || status.Code(errors.Unwrap(err)) != tc.code || calls()-before != 1 {
				t.Errorf("%v after %d calls", err, calls()-before)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("%q does not say %q", err, tc.names)
			}
		})
	}

	// NOT_FOUND on ReadRows is the session or stream gone, not the table.
	before := calls()
	gone := s.Name + "/streams/99"
	err := c.Read(context.Background(), s, gone, 0, func(arrow.RecordBatch) error { return nil })
	if failure.KindOf(err) != failure.KindSessionExpired || !strings.Contains(err.Error(), gone) || len(f.ReadOffsets(gone)) != 1 || calls() != before {
		t.Errorf("stream gone: %v after %d calls", err, len(f.ReadOffsets(gone)))
	}
}

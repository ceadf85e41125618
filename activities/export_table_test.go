package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

var idSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)

// source serves one stream of rows 0..rows-1 per session, counts sessions opened, and can
// fail or hang on demand.
type source struct {
	rows     int64
	openErr  error
	openWait time.Duration
	expires  time.Time
	hang     bool
	opened   atomic.Int32
	// streams, when set, is the most streams a session gets (as many as asked, up to it);
	// each stream serves rows of its own. estBytes is the session's size estimate.
	streams  int
	estBytes int64
	readErr  error // every Read fails with it
}

func (s *source) Open(ctx context.Context, ref bqsource.TableRef, snapshot time.Time, maxStreams int) (*bqsource.Session, error) {
	if s.openWait > 0 {
		time.Sleep(s.openWait)
	}
	if s.openErr != nil {
		return nil, s.openErr
	}
	n := s.opened.Add(1)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(idSchema))
	_ = w.Close()
	expires := s.expires
	if expires.IsZero() {
		expires = time.Now().Add(6 * time.Hour)
	}
	sess := &bqsource.Session{Name: fmt.Sprintf("sessions/s%d", n), Streams: []string{"st0"}, ArrowSchema: buf.Bytes()[:buf.Len()-8],
		ExpireTime: expires, EstimatedBytes: s.estBytes}
	for i := 1; i < min(s.streams, maxStreams); i++ {
		sess.Streams = append(sess.Streams, fmt.Sprintf("st%d", i))
	}
	return sess, nil
}

func (s *source) Read(ctx context.Context, sess *bqsource.Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error {
	if s.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.readErr != nil {
		return s.readErr
	}
	var base int64 // stream k serves rows k*rows ... (k+1)*rows-1
	if _, err := fmt.Sscanf(stream, "st%d", &base); err == nil {
		base *= s.rows
	}
	for off := offset; off < s.rows; off += 100 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, idSchema)
		for i := off; i < min(off+100, s.rows); i++ {
			b.Field(0).(*array.Int64Builder).Append(base + i)
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// bucket is an in-memory write-only destination that can fail from the nth put on.
type bucket struct {
	mu      sync.Mutex
	objects map[string]int64
	puts    int
	failAt  int // 0: never
	failErr error
	delay   time.Duration // each put takes this long
}

func (b *bucket) CheckAccess(context.Context, s3dest.Target) error { return nil }
func (b *bucket) Writer(s3dest.Target) s3dest.Writer               { return b }
func (b *bucket) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	if o.Fence != nil {
		if err := o.Fence(); err != nil {
			return s3dest.PutResult{}, err // as s3dest does: nothing is stored
		}
	}
	time.Sleep(b.delay)
	data, err := io.ReadAll(o.Body)
	if err != nil {
		return s3dest.PutResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.puts++
	if b.failAt > 0 && b.puts >= b.failAt {
		return s3dest.PutResult{}, b.failErr
	}
	if b.objects == nil {
		b.objects = map[string]int64{}
	}
	b.objects[o.Key] = int64(len(data))
	return s3dest.PutResult{}, nil
}

func testAccount() config.Account {
	a := config.Account{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/r",
		BigQuery: config.BigQuerySource{Project: "platform", Dataset: "d"}, Tables: []string{"events"}}
	a.ApplyDefaults()
	return a
}

func input() ExportTableInput {
	return ExportTableInput{Account: testAccount(), Table: "events", DumpFolder: "2023-03-14T04:03", SnapshotTime: time.Date(2023, 3, 14, 4, 3, 0, 0, time.UTC)}
}

type harness struct {
	env        *testsuite.TestActivityEnvironment
	heartbeats []export.Progress
	mu         sync.Mutex
}

func newHarness(t *testing.T, a *Activities) *harness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	h := &harness{env: s.NewTestActivityEnvironment()}
	h.env.RegisterActivity(a)
	h.env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var p export.Progress
		if d.Get(&p) == nil {
			h.mu.Lock()
			h.heartbeats = append(h.heartbeats, p)
			h.mu.Unlock()
		}
	})
	return h
}

func (h *harness) run(in ExportTableInput) (TableResult, error) {
	var a *Activities
	v, err := h.env.ExecuteActivity(a.ExportTable, in)
	if err != nil {
		return TableResult{}, err
	}
	var res TableResult
	return res, v.Get(&res)
}

// tiny shards: every row is a row group and a shard.
func newActivities(src *source, b *bucket) *Activities {
	return &Activities{Source: src, Destinations: b, TargetShardBytes: 1, RowGroupBytes: 1}
}

func TestExportTableHappyPathReservesAhead(t *testing.T) {
	src, b := &source{rows: 1000}, &bucket{}
	h := newHarness(t, newActivities(src, b))
	res, err := h.run(input())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1000 || res.RowCount != 1000 || len(b.objects) != 1000 {
		t.Fatalf("files %d rows %d objects %d, want 1000 one-row shards", len(res.Files), res.RowCount, len(b.objects))
	}
	if len(res.Schema) != 1 || res.Schema[0].Type != "INTEGER" {
		t.Errorf("schema from the session: %+v", res.Schema)
	}
	// Every heartbeat that reached Temporal covers its uploads with a reservation beyond them
	// (heartbeats are throttled, so not every snapshot arrives).
	for _, p := range h.heartbeats {
		if len(p.Files) > 0 && p.Reserved <= len(p.Files) {
			t.Fatalf("a heartbeat shows %d files with only %d reserved", len(p.Files), p.Reserved)
		}
	}
}

// A retried attempt resumes from the recorded progress on the same session: no new session,
// the shards before it are not uploaded again.
func TestExportTableResumesFromHeartbeat(t *testing.T) {
	src, b := &source{rows: 1000}, &bucket{}
	first := newHarness(t, newActivities(src, &bucket{failAt: 5, failErr: errors.New("connection reset")}))
	if _, err := first.run(input()); err == nil {
		t.Fatal("the first attempt should fail")
	}
	last := first.heartbeats[len(first.heartbeats)-1]
	if len(last.Files) != 4 || last.Session == nil {
		t.Fatalf("last heartbeat: %d files, session %v", len(last.Files), last.Session)
	}
	second := newHarness(t, newActivities(src, b))
	second.env.SetHeartbeatDetails(last)
	res, err := second.run(input())
	if err != nil {
		t.Fatal(err)
	}
	if src.opened.Load() != 1 {
		t.Errorf("%d sessions opened, want 1: a retry resumes its session", src.opened.Load())
	}
	if len(res.Files) != 1000 || res.RowCount != 1000 || b.puts != 996 {
		t.Errorf("resumed: %d files, %d rows, %d puts (want 1000, 1000, 996)", len(res.Files), res.RowCount, b.puts)
	}
}

// A retry that finds its session about to expire starts the table again on a new session and
// pads up to the recorded high-water mark, so no stale index of the old session survives.
func TestExportTableSessionRestartPadsToHighWater(t *testing.T) {
	src, b := &source{rows: 10}, &bucket{}
	old := &bqsource.Session{Name: "sessions/old", Streams: []string{"st0"}, ExpireTime: time.Now().Add(5 * time.Minute)}
	h := newHarness(t, newActivities(src, b))
	h.env.SetHeartbeatDetails(export.Progress{Session: old, Stream: 0, Offset: 700, Reserved: 15})
	res, err := h.run(input())
	if err != nil {
		t.Fatal(err)
	}
	if src.opened.Load() != 1 {
		t.Errorf("a new session must be opened")
	}
	if len(res.Files) != 15 || res.RowCount != 10 {
		t.Fatalf("%d files, %d rows; want 15 files (10 with a row each, padded to the high-water mark) and 10 rows", len(res.Files), res.RowCount)
	}
	for i := range 15 {
		if _, ok := b.objects[layout.ShardKey("", "2023-03-14T04:03", "events", i, ".parquet.gz")]; !ok {
			t.Errorf("index %d not overwritten", i)
		}
	}
}

// An attempt never starts an upload when its session is about to expire: a successor may
// start the table again on a new session.
func TestExportTableStopsUploadingNearSessionExpiry(t *testing.T) {
	src, b := &source{rows: 300, expires: time.Now().Add(20 * time.Minute)}, &bucket{}
	h := newHarness(t, newActivities(src, b))
	_, err := h.run(input())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindSessionExpired) || appErr.NonRetryable() {
		t.Fatalf("want a retryable %s, got %v", failure.KindSessionExpired, err)
	}
	if b.puts != 0 {
		t.Errorf("%d uploads started on an expiring session", b.puts)
	}
}

// Failures before any shard (Open) carry the high-water mark too, with a non-retryable type
// for a misconfiguration.
func TestExportTableErrorMapping(t *testing.T) {
	cases := map[string]struct {
		err          error
		kind         failure.Kind
		nonRetryable bool
	}{
		"table not found":  {failure.New(failure.KindTableNotFound, nil, "BigQuery table x does not exist"), failure.KindTableNotFound, true},
		"throttled":        {failure.New(failure.KindBigQueryThrottled, nil, "quota"), failure.KindBigQueryThrottled, false},
		"invalid request":  {failure.New(failure.KindBigQueryInvalid, nil, "bad project"), failure.KindBigQueryInvalid, true},
		"unclassified":     {errors.New("connection reset by peer"), failure.KindTransient, false},
		"permission":       {failure.New(failure.KindBigQueryPermission, nil, "denied"), failure.KindBigQueryPermission, true},
		"unsupported type": {failure.New(failure.KindUnsupportedSchema, nil, "map"), failure.KindUnsupportedSchema, true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, newActivities(&source{openErr: c.err}, &bucket{}))
			in := input()
			in.MinShards = 9
			_, err := h.run(in)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("not an application error: %v", err)
			}
			if appErr.Type() != string(c.kind) || appErr.NonRetryable() != c.nonRetryable {
				t.Errorf("type %s nonRetryable %v, want %s %v", appErr.Type(), appErr.NonRetryable(), c.kind, c.nonRetryable)
			}
			var d FailureDetails
			if err := appErr.Details(&d); err != nil || d.Reserved != 9 {
				t.Errorf("details %+v (%v): the high-water mark must ride on every failure", d, err)
			}
		})
	}
}

// A KMS denial mid-table parks with where to resume, on the same session.
func TestExportTableParkableFailureCarriesResume(t *testing.T) {
	denied := failure.New(failure.KindKMSDenied, nil, "writing failed on the KMS key")
	h := newHarness(t, newActivities(&source{rows: 1000}, &bucket{failAt: 4, failErr: denied}))
	_, err := h.run(input())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindKMSDenied) || !appErr.NonRetryable() {
		t.Fatalf("got %v", err)
	}
	var d FailureDetails
	if err := appErr.Details(&d); err != nil || d.Resume == nil || d.Resume.Session == nil {
		t.Fatalf("details %+v (%v)", d, err)
	}
	if len(d.Resume.Files) != 3 || d.Reserved < 4 {
		t.Errorf("resume at %d files, reserved %d: want 3 files and a mark past the failed 4th", len(d.Resume.Files), d.Reserved)
	}
}

// A stalled read fails the attempt with a clear, retryable error instead of hanging for the
// activity's six-hour timeout.
func TestExportTableStallWatchdog(t *testing.T) {
	a := newActivities(&source{rows: 1000, hang: true}, &bucket{})
	a.StallTimeout = 400 * time.Millisecond
	h := newHarness(t, a)
	start := time.Now()
	_, err := h.run(input())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindStalled) || appErr.NonRetryable() {
		t.Fatalf("want a retryable %s, got %v", failure.KindStalled, err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("the watchdog took %s", time.Since(start))
	}
}

// A slow CreateReadSession is heartbeated through.
func TestExportTableHeartbeatsWhileOpening(t *testing.T) {
	a := newActivities(&source{rows: 100, openWait: 1200 * time.Millisecond}, &bucket{})
	a.StallTimeout = 2 * time.Second
	h := newHarness(t, a)
	if _, err := h.run(input()); err != nil {
		t.Fatal(err)
	}
	opening := 0
	for _, p := range h.heartbeats {
		if p.Session == nil {
			opening++
		}
	}
	if opening < 1 {
		t.Errorf("%d heartbeats while the session was being opened, want at least 1", opening)
	}
}

// Progress an earlier attempt recorded that cannot be read stops the table: guessing the
// shard count could leave a stale shard beside the receipt.
func TestExportTableUnreadableProgress(t *testing.T) {
	h := newHarness(t, newActivities(&source{rows: 100}, &bucket{}))
	h.env.SetHeartbeatDetails("not a progress")
	_, err := h.run(input())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindProgressUnreadable) || !appErr.NonRetryable() {
		t.Fatalf("got %v", err)
	}
}

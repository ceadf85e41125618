// Package activities holds the side effects of a dump: assuming the customer's role,
// exporting one table, writing the receipt. Each is idempotent, so Temporal may retry it.
//
// Credentials are assumed here, inside the worker, and cached there; nothing secret ever
// enters an activity's input, result, heartbeat or error, all of which the Temporal UI shows.
package activities

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/metrics"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Destinations gives access to customers' buckets.
type Destinations interface {
	CheckAccess(ctx context.Context, t s3dest.Target) error
	Writer(t s3dest.Target) s3dest.Writer
}

// Source is the BigQuery side.
type Source interface {
	Open(ctx context.Context, ref bqsource.TableRef, snapshot time.Time, maxStreams int) (*bqsource.Session, error)
	Read(ctx context.Context, s *bqsource.Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error
}

// Activities carries the worker's clients. Register it once per worker.
type Activities struct {
	Destinations Destinations
	Source       Source
	// TargetShardBytes, RowGroupBytes and TempDir tune the export; zero means the defaults.
	TargetShardBytes int64
	RowGroupBytes    int64
	TempDir          string
	// MaxStreams is how many read streams a table's session asks BigQuery for (it may grant
	// fewer) and how many are read and encoded at once; zero means export.DefaultMaxStreams.
	MaxStreams int
	// SplitBytes is the estimated session size one stream group is given, and
	// MaxStreamGroups the most groups a table is split into; zero means DefaultSplitBytes and
	// DefaultMaxStreamGroups (see SplitPlan).
	SplitBytes      int64
	MaxStreamGroups int
	// BufferBytes bounds the finished shards of one export waiting on local disk for an
	// earlier stream's upload; zero means export.DefaultBufferBytes. The worker derives it
	// from its staging budget.
	BufferBytes int64
	// StallTimeout fails a table export in which no row was read and no byte sent for this
	// long; zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics records throughput and failures; nil records nothing.
	Metrics *metrics.Exporter
	// Heartbeats sends table exports' heartbeats and reports whether Temporal confirmed them
	// (the worker's client.Client). With it, an attempt writes only while its heartbeat
	// lease holds (see leaseShare), so a worker Temporal gave up on cannot land a late
	// write. Nil uses the SDK's heartbeats and no lease: tests only.
	Heartbeats HeartbeatRecorder
	// Projects caps the table exports this worker runs at once per BigQuery billing
	// project; nil: no cap beyond the worker's activity slots.
	Projects *ProjectLimiter
}

// HeartbeatRecorder records an activity attempt's heartbeat and says whether Temporal took
// it; client.Client is one.
type HeartbeatRecorder interface {
	RecordActivityHeartbeat(ctx context.Context, taskToken []byte, details ...interface{}) error
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Target turns an account into the bucket it writes to.
func Target(acc config.Account) s3dest.Target {
	return s3dest.Target{AccountID: acc.ID, RoleARN: acc.RoleARN, Bucket: acc.Bucket, Prefix: acc.Prefix, Region: acc.Region, KMSKeyID: acc.KMSKeyARN}
}

// CheckAccessInput names the account whose role is checked.
type CheckAccessInput struct {
	Account config.Account
}

// CheckAccess assumes the customer's role, so a broken trust policy stops the dump before any
// table is read.
func (a *Activities) CheckAccess(ctx context.Context, in CheckAccessInput) error {
	if err := in.Account.Validate(); err != nil {
		return a.failed("", failure.New(failure.KindInvalidAccount, nil, "account %s is invalid: %v", in.Account.ID, err))
	}
	activity.GetLogger(ctx).Info("assuming customer role", "account", in.Account.ID, "role", in.Account.RoleARN)
	defer keepAlive(ctx)()
	return a.failed("", a.Destinations.CheckAccess(ctx, Target(in.Account)))
}

// WriteReceiptInput is a complete dump: its tables as their exports returned them (packed,
// so the input stays small whatever the shard count); the activity renders the receipt.
type WriteReceiptInput struct {
	Account    config.Account
	DumpFolder string
	// Started is the dump's time: the receipt's timestamp and default snapshot time.
	Started time.Time
	Tables  map[string]TableResult
}

// BuildReceipt renders the receipt of a complete dump.
func BuildReceipt(accountID string, started time.Time, tables map[string]TableResult) receipt.Receipt {
	r := receipt.Receipt{
		Timestamp:     receipt.Timestamp(started),
		FormatVersion: receipt.FormatVersion,
		AccountID:     accountID,
		SnapshotTime:  receipt.Timestamp(started),
		Tables:        map[string]receipt.Table{},
	}
	for name, res := range tables {
		snap := res.SnapshotTime
		if snap.IsZero() {
			snap = started
		}
		r.Tables[name] = receipt.Table{Folder: res.Folder, TotalFileCount: len(res.Files), RowCount: res.RowCount,
			Schema: res.Schema, Files: []receipt.File(res.Files), SnapshotTime: receipt.Timestamp(snap)}
	}
	return r
}

// WriteReceipt writes the dump folder's copy first, then overwrites the root receipt.json:
// the root write is the dump's last write, the one customers' triggers fire on.
func (a *Activities) WriteReceipt(ctx context.Context, in WriteReceiptInput) error {
	r := BuildReceipt(in.Account.ID, in.Started, in.Tables)
	body, err := r.Marshal()
	if err != nil {
		return a.failed("", failure.New(failure.KindInvalidReceipt, err, "the receipt of dump %s is inconsistent", in.DumpFolder))
	}
	defer keepAlive(ctx)()
	w := a.Destinations.Writer(Target(in.Account))
	// An attempt Temporal timed out must not write late: its retry wrote this receipt, and a
	// later dump may have written its own root receipt since.
	fence := attemptFence(ctx, fmt.Sprintf("the receipt of dump %s was", in.DumpFolder))
	for _, key := range []string{layout.DumpReceiptKey(in.Account.Prefix, in.DumpFolder), layout.ReceiptKey(in.Account.Prefix)} {
		if _, err := w.Put(ctx, s3dest.Object{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), ContentType: "application/json", Fence: fence}); err != nil {
			return a.failed("", err)
		}
	}
	a.Metrics.ReceiptWritten(in.Account.ID)
	activity.GetLogger(ctx).Info("receipt written", "account", in.Account.ID, "dump", in.DumpFolder, "tables", len(r.Tables))
	return nil
}

// attemptFence refuses writes once a short activity's attempt is close to its timeout, when
// Temporal may have started a retry that writes the same keys. what names the writes.
func attemptFence(ctx context.Context, what string) func() error {
	end := attemptEnd(activity.GetInfo(ctx), time.Now())
	return func() error {
		if !end.IsZero() && !time.Now().Before(end) {
			return failure.New(failure.KindLeaseLost, nil, "%s not written before its attempt's timeout; it is retried", what)
		}
		return nil
	}
}

// keepAliveEvery is how often a short activity heartbeats: well within the heartbeat
// timeout the workflow gives it, so a worker that dies mid-attempt is noticed in seconds,
// not at the start-to-close timeout.
const keepAliveEvery = 5 * time.Second

// keepAlive heartbeats until the returned stop is called.
func keepAlive(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// failed counts a failed attempt by its kind and turns it into the Temporal error the
// workflow and the retry policy read (see ApplicationError).
func (a *Activities) failed(table string, err error, details ...any) error {
	if err == nil {
		return nil
	}
	a.Metrics.Failed(table, string(failure.KindOf(err)))
	return ApplicationError(err, details...)
}

// ApplicationError turns a failure into a Temporal ApplicationError whose type is its kind:
// non-retryable when the kind is parkable or fatal, retryable otherwise. Details ride along
// either way (the workflow reads them from a final failure).
func ApplicationError(err error, details ...any) error {
	if err == nil {
		return nil
	}
	kind := failure.KindOf(err)
	opts := temporal.ApplicationErrorOptions{NonRetryable: kind.Class() != failure.Transient, Details: details}
	msg := err.Error()
	if fe, ok := failure.As(err); ok && fe.Kind == kind {
		// Lead with the cause and the fix; the wrapped detail follows.
		msg = fe.Error()
	}
	return temporal.NewApplicationErrorWithOptions(msg, string(kind), opts)
}

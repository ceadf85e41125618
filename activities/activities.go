// Package activities holds the side effects of a dump: assuming the customer's role,
// exporting one table, writing the receipt. Each is idempotent, so Temporal may retry it.
//
// Credentials are assumed here, inside the worker, and cached there; nothing secret ever
// enters an activity's input, result, heartbeat or error, all of which the Temporal UI shows.
package activities

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/arrow-go/v18/arrow"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/metrics"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Error types of non-retryable failures that are not S3's (those are s3dest.Kind values).
const (
	ErrTableNotFound       = "TableNotFound"
	ErrBigQueryPermission  = "BigQueryPermissionDenied"
	ErrUnsupportedSchema   = "UnsupportedSchema"
	ErrInvalidAccount      = "InvalidAccount"
	sessionRefreshMargin   = 15 * time.Minute
	keepAliveHeartbeatEach = 20 * time.Second
)

// NonRetryableErrorTypes lists every error type a retry cannot fix.
func NonRetryableErrorTypes() []string {
	out := []string{ErrTableNotFound, ErrBigQueryPermission, ErrUnsupportedSchema, ErrInvalidAccount}
	for _, k := range s3dest.PermanentKinds {
		out = append(out, string(k))
	}
	return out
}

// Parkable reports whether a failure type is a misconfiguration a person can fix while the
// dump waits (in state waiting_for_fix) rather than fail it outright.
func Parkable(errType string) bool {
	switch errType {
	case ErrTableNotFound, ErrBigQueryPermission:
		return true
	}
	for _, k := range s3dest.PermanentKinds {
		if errType == string(k) {
			return true
		}
	}
	return false
}

// FailureDetails ride on a failed ExportTable's error: how many shards it had uploaded, so a
// later pass of the table overwrites at least as many indexes.
type FailureDetails struct {
	ShardsWritten int `json:"shards_written"`
}

// Destinations gives access to customers' buckets.
type Destinations interface {
	CheckAccess(ctx context.Context, t s3dest.Target) error
	Writer(t s3dest.Target) s3dest.Writer
}

// Source is the BigQuery side.
type Source interface {
	Metadata(ctx context.Context, ref bqsource.TableRef) (*bigquery.TableMetadata, error)
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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics records throughput and failures; nil records nothing.
	Metrics *metrics.Exporter
}

// failed counts a failed attempt by its class (the non-retryable type, or Transient) and
// returns err unchanged.
func (a *Activities) failed(table string, err error) error {
	if err == nil {
		return nil
	}
	class := "Transient"
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		class = appErr.Type()
	}
	a.Metrics.Failed(table, class)
	return err
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Target turns an account into the bucket it writes to.
func Target(acc config.Account) s3dest.Target {
	return s3dest.Target{AccountID: acc.ID, RoleARN: acc.RoleARN, Bucket: acc.Bucket, Region: acc.Region, KMSKeyID: acc.KMSKeyARN}
}

// CheckAccessInput names the account whose role is checked.
type CheckAccessInput struct {
	Account config.Account
}

// CheckAccess assumes the customer's role, so a broken trust policy stops the dump before any
// table is read.
func (a *Activities) CheckAccess(ctx context.Context, in CheckAccessInput) error {
	if err := in.Account.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidAccount, nil)
	}
	t := Target(in.Account)
	activity.GetLogger(ctx).Info("assuming customer role", "account", in.Account.ID, "role", in.Account.RoleARN)
	return a.failed("", temporalError(a.Destinations.CheckAccess(ctx, t)))
}

// ExportTableInput is one table of one dump.
type ExportTableInput struct {
	Account      config.Account
	Table        string
	DumpFolder   string
	SnapshotTime time.Time
	// MinShards: see export.Job.MinShards.
	MinShards int
}

// TableResult is what a finished table contributes to the receipt.
type TableResult struct {
	Table    string          `json:"table"`
	Folder   string          `json:"folder"`
	Files    []receipt.File  `json:"files"`
	RowCount int64           `json:"row_count"`
	Schema   []receipt.Field `json:"schema"`
}

// ExportTable reads the table at the dump's snapshot and uploads it as parquet shards. It
// heartbeats after every shard with where to resume, and resumes from there when retried.
func (a *Activities) ExportTable(ctx context.Context, in ExportTableInput) (res TableResult, err error) {
	acc := in.Account
	log := tlog.With(activity.GetLogger(ctx), "account", acc.ID, "dump", in.DumpFolder, "table", in.Table)
	started := a.now()
	defer func() {
		if err != nil {
			err = a.failed(in.Table, err)
		} else {
			a.Metrics.TableExported(in.Table, a.now().Sub(started))
		}
	}()
	ref := bqsource.TableRef{Project: acc.BigQuery.Project, Dataset: acc.BigQuery.Dataset, Table: in.Table}
	md, err := a.Source.Metadata(ctx, ref)
	if err != nil {
		return TableResult{}, temporalError(err)
	}

	var p export.Progress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			log.Warn("ignoring unreadable heartbeat details", "error", err)
			p = export.Progress{}
		}
	}
	minShards := in.MinShards
	if p.Session != nil && !p.Session.ExpireTime.IsZero() && a.now().Add(sessionRefreshMargin).After(p.Session.ExpireTime) {
		// The read session is about to expire: start the table again on a new session. Shards
		// already written get overwritten, and padding covers any index the new pass won't reach.
		log.Warn("read session expiring, restarting table", "shards_done", len(p.Files))
		minShards = max(minShards, len(p.Files))
		p = export.Progress{}
	}
	maxStreams := a.MaxStreams
	if maxStreams <= 0 {
		maxStreams = export.DefaultMaxStreams
	}
	if p.Session == nil {
		s, err := a.Source.Open(ctx, ref, in.SnapshotTime, maxStreams)
		if err != nil {
			return TableResult{}, temporalError(err)
		}
		p.Session = s
		activity.RecordHeartbeat(ctx, p)
		log.Info("read session opened", "streams", len(s.Streams))
	} else {
		log.Info("resuming table export", "shards_done", len(p.Files), "stream", p.Stream, "offset", p.Offset)
	}

	// Keep heartbeating while shards are encoded or uploaded, with the latest progress. One
	// mutex orders both senders, so a keep-alive never re-sends an older snapshot after a
	// newer one; each snapshot is consistent (Run hands out copies, taken after each upload).
	var hbMu sync.Mutex
	last := p
	heartbeat := func(next *export.Progress) {
		hbMu.Lock()
		defer hbMu.Unlock()
		if next != nil {
			last = *next
		}
		activity.RecordHeartbeat(ctx, last)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(keepAliveHeartbeatEach)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				heartbeat(nil)
			}
		}
	}()

	e := &export.Exporter{
		Reader:           a.Source,
		Writer:           a.Destinations.Writer(Target(acc)),
		TargetShardBytes: a.TargetShardBytes,
		RowGroupBytes:    a.RowGroupBytes,
		TempDir:          a.TempDir,
		MaxStreams:       maxStreams,
	}
	job := export.Job{Table: in.Table, Prefix: acc.Prefix, DumpFolder: in.DumpFolder, Extension: acc.FileExtension, MinShards: minShards}
	files, err := e.Run(ctx, job, &p, func(p export.Progress) {
		heartbeat(&p)
		if n := len(p.Files); n > 0 {
			a.Metrics.ShardUploaded(in.Table, p.Files[n-1].Rows, p.Files[n-1].Bytes)
		}
		log.Info("shard uploaded", "shards", len(p.Files), "rows", p.Rows())
	})
	if err != nil {
		// Shards go up one at a time, so at most one more than recorded may have landed.
		return TableResult{}, temporalError(err, FailureDetails{ShardsWritten: len(p.Files) + 1})
	}
	res = TableResult{
		Table:  in.Table,
		Folder: layout.TableFolder(acc.Prefix, in.DumpFolder, in.Table),
		Files:  files,
		Schema: receiptSchema(md.Schema),
	}
	for _, f := range files {
		res.RowCount += f.Rows
	}
	log.Info("table exported", "files", len(files), "rows", res.RowCount)
	return res, nil
}

func receiptSchema(s bigquery.Schema) []receipt.Field {
	out := make([]receipt.Field, 0, len(s))
	for _, f := range s {
		mode := "NULLABLE"
		switch {
		case f.Repeated:
			mode = "REPEATED"
		case f.Required:
			mode = "REQUIRED"
		}
		out = append(out, receipt.Field{Name: f.Name, Type: string(f.Type), Mode: mode, Fields: receiptSchema(f.Schema)})
	}
	return out
}

// WriteReceiptInput is the receipt of a complete dump.
type WriteReceiptInput struct {
	Account    config.Account
	DumpFolder string
	Receipt    receipt.Receipt
}

// WriteReceipt writes the dump folder's copy first, then overwrites the root receipt.json:
// the root write is the dump's last write, the one customers' triggers fire on.
func (a *Activities) WriteReceipt(ctx context.Context, in WriteReceiptInput) error {
	body, err := in.Receipt.Marshal()
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidReceipt", nil)
	}
	w := a.Destinations.Writer(Target(in.Account))
	for _, key := range []string{layout.DumpReceiptKey(in.Account.Prefix, in.DumpFolder), layout.ReceiptKey(in.Account.Prefix)} {
		if _, err := w.Put(ctx, s3dest.Object{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), ContentType: "application/json"}); err != nil {
			return temporalError(err)
		}
	}
	a.Metrics.ReceiptWritten(in.Account.ID)
	activity.GetLogger(ctx).Info("receipt written", "account", in.Account.ID, "dump", in.DumpFolder, "tables", len(in.Receipt.Tables))
	return nil
}

// temporalError turns classified failures into non-retryable application errors whose type
// names the cause, carrying details; everything else stays retryable.
func temporalError(err error, details ...interface{}) error {
	if err == nil {
		return nil
	}
	if e, ok := s3dest.AsError(err); ok {
		if e.Permanent() {
			return temporal.NewNonRetryableApplicationError(e.Error(), string(e.Kind), nil, details...)
		}
		return err
	}
	var nf *bqsource.NotFoundError
	if errors.As(err, &nf) {
		return temporal.NewNonRetryableApplicationError(nf.Error(), ErrTableNotFound, nil, details...)
	}
	var pe *bqsource.PermissionError
	if errors.As(err, &pe) {
		return temporal.NewNonRetryableApplicationError(pe.Error(), ErrBigQueryPermission, nil, details...)
	}
	var se *export.SchemaError
	if errors.As(err, &se) {
		return temporal.NewNonRetryableApplicationError(se.Error(), ErrUnsupportedSchema, nil, details...)
	}
	return err
}

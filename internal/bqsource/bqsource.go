// Package bqsource reads BigQuery tables through the BigQuery Storage Read API in Arrow format,
// at one snapshot time, stream by stream, resumable at any row offset.
package bqsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/bigquery"
	bqstorage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// MaxResponseBytes bounds one ReadRows response. BigQuery sends up to about 100 MiB per
// response, far above gRPC's 4 MiB default.
const MaxResponseBytes = 256 << 20

// ReadRetries is how many times in a row Read opens a stream again after a transient failure
// (UNAVAILABLE, INTERNAL, ABORTED, RESOURCE_EXHAUSTED, or a stall: see StallTimeout) that
// delivered no row since the previous one; waits start at ReadRetryBackoff and double. Long
// reads, and readers that pause (the exporter holds a stream open while its shards wait for
// upload), may be broken off by the server or the network: this resumes them in place instead
// of failing the whole table.
const (
	ReadRetries      = 4
	ReadRetryBackoff = time.Second
)

// StallTimeout is how long Read waits for the next ReadRows response before it gives the call
// up as stalled (a half-open connection, a hung server), cancels it and opens the stream again
// at the next row. Only the wait in Recv counts, never the time the caller's fn takes: the
// exporter blocks in fn while its shards upload, and BigQuery then has nothing to send. A
// healthy stream answers within seconds; two minutes leaves room for a slow first response.
const StallTimeout = 2 * time.Minute

// keepaliveParams make gRPC ping a connection that carries a ReadRows call but has been quiet
// for Time, and close it when no ack comes within Timeout: the half-open connection that would
// otherwise hang Recv until the stall watchdog fires is then failed as UNAVAILABLE, and read
// again. Google's front ends answer pings more frequent than about every 30 s with GOAWAY
// too_many_pings, which would break the very streams this protects, hence 60 s; without a
// call in flight nothing needs detecting (PermitWithoutStream false), and idle pings count
// against the same limit.
var keepaliveParams = keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: false}

// Settings say how to reach BigQuery. Zero values mean Google's endpoints with the
// application default credentials.
type Settings struct {
	// BillingProject is the project read sessions are created (and billed) in; empty means
	// the table's own project.
	BillingProject string
	// Endpoint (REST) and StorageEndpoint (gRPC host:port) point at a local emulator; with
	// them set, no credentials are sent and gRPC runs without TLS.
	Endpoint        string
	StorageEndpoint string
}

// TableRef names one table.
type TableRef struct {
	Project, Dataset, Table string
}

func (r TableRef) String() string { return r.Project + "." + r.Dataset + "." + r.Table }

func (r TableRef) path() string {
	return fmt.Sprintf("projects/%s/datasets/%s/tables/%s", r.Project, r.Dataset, r.Table)
}

// Client reads tables. It is safe for concurrent use.
type Client struct {
	settings Settings
	meta     *bigquery.Client
	read     *bqstorage.BigQueryReadClient
	// retryBackoff is the first wait before a stream is opened again (ReadRetryBackoff).
	retryBackoff time.Duration
	// stallTimeout is StallTimeout, shorter in tests.
	stallTimeout time.Duration
	// now is time.Now, to tell an expired session.
	now func() time.Time
}

// New connects to BigQuery. project is the default project of the metadata client.
func New(ctx context.Context, project string, s Settings) (*Client, error) {
	var restOpts, grpcOpts []option.ClientOption
	if s.Endpoint != "" {
		restOpts = append(restOpts, option.WithEndpoint(s.Endpoint), option.WithoutAuthentication())
	}
	if s.StorageEndpoint != "" {
		grpcOpts = append(grpcOpts, option.WithEndpoint(s.StorageEndpoint), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	} else {
		// Only towards Google: a local emulator is never half-open, and gRPC servers with the
		// default enforcement (5 minutes between pings) would GOAWAY a stream paused longer.
		grpcOpts = append(grpcOpts, option.WithGRPCDialOption(grpc.WithKeepaliveParams(keepaliveParams)))
	}
	grpcOpts = append(grpcOpts, option.WithGRPCDialOption(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes))))
	meta, err := bigquery.NewClient(ctx, project, restOpts...)
	if err != nil {
		return nil, fmt.Errorf("bigquery client: %w", err)
	}
	read, err := bqstorage.NewBigQueryReadClient(ctx, grpcOpts...)
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("bigquery storage read client: %w", err)
	}
	return &Client{settings: s, meta: meta, read: read, retryBackoff: ReadRetryBackoff, stallTimeout: StallTimeout, now: time.Now}, nil
}

// Close releases the connections.
func (c *Client) Close() error {
	return errors.Join(c.read.Close(), c.meta.Close())
}

// billing is the project read sessions of ref are created (and billed) in.
func (c *Client) billing(ref TableRef) string {
	if c.settings.BillingProject != "" {
		return c.settings.BillingProject
	}
	return ref.Project
}

// Metadata returns the table's metadata. The schema of an export comes from its read session
// (Session.Fields), which is the snapshot's; Metadata is a cheap check that the table exists
// and is readable.
func (c *Client) Metadata(ctx context.Context, ref TableRef) (*bigquery.TableMetadata, error) {
	md, err := c.meta.DatasetInProject(ref.Project, ref.Dataset).Table(ref.Table).Metadata(ctx)
	if err != nil {
		return nil, classify(err, ref, c.billing(ref))
	}
	return md, nil
}

// Session is an open read session: a consistent snapshot of one table split into streams.
// It stays readable for six hours on BigQuery; everything needed to resume reading is here.
type Session struct {
	Name string
	// Table is the table read; zero in sessions recorded before it was kept.
	Table   TableRef
	Streams []string
	// ArrowSchema is the serialized Arrow IPC schema message every batch is decoded with.
	ArrowSchema []byte
	ExpireTime  time.Time
	// Opened is when the session was created (zero in sessions recorded before it was kept):
	// with ExpireTime, how long the session lives.
	Opened time.Time `json:",omitzero"`
	// EstimatedRows is BigQuery's estimate of the rows the session reads (0: none given);
	// `starter status` shows progress against it.
	EstimatedRows int64 `json:",omitempty"`
	// EstimatedBytes is BigQuery's estimate of the bytes the session scans (0: none given);
	// the exporter splits a table this big into stream groups on several workers.
	EstimatedBytes int64 `json:",omitempty"`
}

// Group is the part of the session stream group g of n reads: streams g, g+n, g+2n, ...
// (BigQuery balances its streams, so dealing them round robin balances the groups).
func (s *Session) Group(g, n int) *Session {
	out := *s
	out.Streams = nil
	for i := g; i < len(s.Streams); i += max(n, 1) {
		out.Streams = append(out.Streams, s.Streams[i])
	}
	return &out
}

// Open creates a read session of the whole table as it was at snapshot.
func (c *Client) Open(ctx context.Context, ref TableRef, snapshot time.Time, maxStreams int) (*Session, error) {
	req := &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + c.billing(ref),
		ReadSession: &storagepb.ReadSession{
			Table:      ref.path(),
			DataFormat: storagepb.DataFormat_ARROW,
		},
		MaxStreamCount: int32(maxStreams),
	}
	if !snapshot.IsZero() {
		req.ReadSession.TableModifiers = &storagepb.ReadSession_TableModifiers{SnapshotTime: timestamppb.New(snapshot)}
	}
	s, err := c.read.CreateReadSession(ctx, req)
	if err != nil {
		return nil, classify(err, ref, c.billing(ref))
	}
	out := &Session{Name: s.GetName(), Table: ref, Opened: c.now(), ArrowSchema: s.GetArrowSchema().GetSerializedSchema(), EstimatedRows: s.GetEstimatedRowCount(),
		EstimatedBytes: s.GetEstimatedTotalBytesScanned()}
	if s.GetExpireTime() != nil {
		out.ExpireTime = s.GetExpireTime().AsTime()
	}
	for _, st := range s.GetStreams() {
		out.Streams = append(out.Streams, st.GetName())
	}
	if len(out.ArrowSchema) == 0 {
		return nil, fmt.Errorf("read session of %s has no Arrow schema", ref)
	}
	return out, nil
}

// Schema decodes the session's Arrow schema.
func (s *Session) Schema() (*arrow.Schema, error) {
	r, err := ipc.NewReader(bytes.NewReader(s.ArrowSchema))
	if err != nil {
		return nil, fmt.Errorf("decode session Arrow schema: %w", err)
	}
	defer r.Release()
	return r.Schema(), nil
}

// Read streams the rows of one stream from offset, handing each record batch to fn. fn must
// not keep the batch after it returns, and fn's error is returned as is. An empty table's
// session may have no stream at all. Read is safe for concurrent use, one call per stream.
// Callers that track progress count the rows of the batches fn receives.
//
// A stream that breaks with a transient error (see ReadRetries), or stalls (see
// StallTimeout), is opened again at the row after the last one fn received, so fn sees every
// row once, in order. Other failures are *failure.Error where a kind names them: a session or
// stream gone (KindSessionExpired: read the table again from a new session), denied
// (KindBigQueryPermission), throttled or stalled past the retries (KindBigQueryThrottled,
// KindStalled); the rest are transient errors naming the stream and row.
func (c *Client) Read(ctx context.Context, s *Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error {
	dec := decoder{schema: s.ArrowSchema, mem: memory.DefaultAllocator}
	failures := 0
	for {
		n, err := c.readFrom(ctx, dec, stream, offset, fn)
		offset += n
		if err == nil {
			return nil
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		if n > 0 {
			failures = 0
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read stream %s at row %d: %w", stream, offset, err)
		}
		if !retryInPlace(err) || failures >= ReadRetries {
			return c.streamError(err, s, stream, offset, failures+1)
		}
		wait := retryWait(err, c.retryBackoff<<failures)
		failures++
		select {
		case <-ctx.Done():
			return fmt.Errorf("read stream %s at row %d: %w", stream, offset, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// errStalled is the cause a ReadRows call is cancelled with when no response came for the
// stall timeout.
var errStalled = errors.New("no ReadRows response within the stall timeout")

// readFrom is one ReadRows call: it returns how many rows fn accepted.
func (c *Client) readFrom(ctx context.Context, dec decoder, stream string, offset int64, fn func(arrow.RecordBatch) error) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil) // ends the call on the server too when we stop early
	// The watchdog runs while we wait for BigQuery (opening the call, Recv), never while fn
	// runs: a caller holding a batch is backpressure, not a stall.
	watchdog := time.AfterFunc(c.stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	stalled := func(err error) error {
		if errors.Is(context.Cause(ctx), errStalled) {
			return fmt.Errorf("%w (%s): %w", errStalled, c.stallTimeout, err)
		}
		return err
	}
	rs, err := c.read.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
	if err != nil {
		return 0, stalled(err)
	}
	var rows int64
	for {
		resp, err := rs.Recv()
		// A response that raced the watchdog is delivered all the same: its rows count, and
		// the cancelled call fails at the next Recv.
		watchdog.Stop()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, stalled(err)
		}
		batch := resp.GetArrowRecordBatch()
		var got int64
		if batch != nil && len(batch.GetSerializedRecordBatch()) > 0 {
			err = dec.each(batch.GetSerializedRecordBatch(), func(rec arrow.RecordBatch) error {
				if err := fn(rec); err != nil {
					return fnError{err}
				}
				got += rec.NumRows()
				rows += rec.NumRows()
				return nil
			})
			if err != nil {
				return rows, err
			}
		}
		// A response whose rows do not decode (another framing, say) must fail loudly: reading
		// on would lose its rows and shift every later offset.
		if want := resp.GetRowCount(); want > 0 && got != want {
			return rows, fmt.Errorf("ReadRows response at row %d declares %d rows, %d decoded: %w", offset+rows-got, want, got, errFraming)
		}
		watchdog.Reset(c.stallTimeout)
	}
}

// fnError carries the caller's own error through the decoder, so it is never retried.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

var errFraming = errors.New("Arrow record batch does not match the response's row count")

// retryInPlace reports a stream failure worth reading again from the last row received: the
// connection or the server broke off (BigQuery resets long or slow streams), BigQuery asks us
// to slow down (RESOURCE_EXHAUSTED is its throttling signal on ReadRows), or nothing came for
// the stall timeout; not a misconfiguration or bad request, which a retry cannot fix.
func retryInPlace(err error) bool {
	if errors.Is(err, errStalled) {
		return true
	}
	code, ok := grpcCode(err)
	if !ok {
		return false
	}
	switch code {
	case codes.Unavailable, codes.Internal, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// streamError classifies the failure Read gives up on, after attempts ReadRows calls in a row
// without a row, at offset.
func (c *Client) streamError(err error, s *Session, stream string, offset int64, attempts int) error {
	table, billing := s.Table.String(), c.billing(s.Table)
	if s.Table == (TableRef{}) { // a session recorded before Table was kept
		table = "of read session " + s.Name
		if billing == "" {
			billing = "(the table's project)"
		}
	}
	if errors.Is(err, errStalled) {
		return failure.New(failure.KindStalled, err,
			"BigQuery sent nothing on read stream %s (table %s) at row %d for %s, on %d ReadRows calls in a row: the connection is likely half-open or the server hung; retrying",
			stream, table, offset, c.stallTimeout, attempts)
	}
	switch streamCause(err, s, c.now()) {
	case causeSessionGone:
		return failure.New(failure.KindSessionExpired, err,
			"the BigQuery read session of table %s is gone (expired, or stream %s no longer exists) at row %d: the table is read again from a new session",
			table, stream, offset)
	case causeDenied:
		return deniedError(err, table, billing)
	case causeUnauthenticated:
		return unauthenticatedError(err, table)
	case causeThrottled:
		return throttledError(err, table, billing)
	}
	return fmt.Errorf("read stream %s at row %d: %w", stream, offset, err)
}

// decoder turns one ArrowRecordBatch message into records. BigQuery sends the schema once,
// in the session, and each response holds one IPC record batch message; the IPC stream reader
// wants both, so they are read back to back.
type decoder struct {
	schema []byte
	mem    memory.Allocator
}

func (d decoder) each(batch []byte, fn func(arrow.RecordBatch) error) error {
	r, err := ipc.NewReader(io.MultiReader(bytes.NewReader(d.schema), bytes.NewReader(batch)), ipc.WithAllocator(d.mem))
	if err != nil {
		return fmt.Errorf("decode Arrow record batch: %w", err)
	}
	defer r.Release()
	for r.Next() {
		if err := fn(r.RecordBatch()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("decode Arrow record batch: %w", err)
	}
	return nil
}

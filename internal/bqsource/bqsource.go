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
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxResponseBytes bounds one ReadRows response. BigQuery sends up to about 100 MiB per
// response, far above gRPC's 4 MiB default.
const MaxResponseBytes = 256 << 20

// ReadRetries is how many times in a row Read opens a stream again after a transient failure
// (UNAVAILABLE, INTERNAL, ABORTED) that delivered no row since the previous one; waits start
// at ReadRetryBackoff and double. Long reads, and readers that pause (the exporter holds a
// stream open while its shards wait for upload), may be broken off by the server or the
// network: this resumes them in place instead of failing the whole table.
const (
	ReadRetries      = 4
	ReadRetryBackoff = time.Second
)

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
	return &Client{settings: s, meta: meta, read: read, retryBackoff: ReadRetryBackoff}, nil
}

// Close releases the connections.
func (c *Client) Close() error {
	return errors.Join(c.read.Close(), c.meta.Close())
}

// Metadata returns the table's schema and metadata.
func (c *Client) Metadata(ctx context.Context, ref TableRef) (*bigquery.TableMetadata, error) {
	md, err := c.meta.DatasetInProject(ref.Project, ref.Dataset).Table(ref.Table).Metadata(ctx)
	if err != nil {
		return nil, classify(err, ref)
	}
	return md, nil
}

// Session is an open read session: a consistent snapshot of one table split into streams.
// It stays readable for six hours on BigQuery; everything needed to resume reading is here.
type Session struct {
	Name    string
	Streams []string
	// ArrowSchema is the serialized Arrow IPC schema message every batch is decoded with.
	ArrowSchema []byte
	ExpireTime  time.Time
}

// Open creates a read session of the whole table as it was at snapshot.
func (c *Client) Open(ctx context.Context, ref TableRef, snapshot time.Time, maxStreams int) (*Session, error) {
	billing := c.settings.BillingProject
	if billing == "" {
		billing = ref.Project
	}
	req := &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + billing,
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
		return nil, classify(err, ref)
	}
	out := &Session{Name: s.GetName(), ArrowSchema: s.GetArrowSchema().GetSerializedSchema()}
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
//
// A stream that breaks with a transient error (see ReadRetries) is opened again at the row
// after the last one fn received, so fn sees every row once, in order.
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
		if ctx.Err() != nil || !transient(err) || failures >= ReadRetries {
			return classifyStream(err, stream)
		}
		wait := c.retryBackoff << failures
		failures++
		select {
		case <-ctx.Done():
			return classifyStream(ctx.Err(), stream)
		case <-time.After(wait):
		}
	}
}

// readFrom is one ReadRows call: it returns how many rows fn accepted.
func (c *Client) readFrom(ctx context.Context, dec decoder, stream string, offset int64, fn func(arrow.RecordBatch) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call on the server too when we stop early
	rs, err := c.read.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
	if err != nil {
		return 0, err
	}
	var rows int64
	for {
		resp, err := rs.Recv()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
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
	}
}

// fnError carries the caller's own error through the decoder, so it is never retried.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

var errFraming = errors.New("Arrow record batch does not match the response's row count")

// transient reports a stream failure worth reading again from the last row received: the
// connection or the server broke off (BigQuery resets long or slow streams), not a
// misconfiguration or bad request, which a retry cannot fix.
func transient(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.Internal, codes.Aborted:
		return true
	}
	return false
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

// NotFoundError reports a table that does not exist: a configuration problem.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("BigQuery table %s does not exist: check the account's bigquery.project, bigquery.dataset and tables", e.Ref)
}

// PermissionError reports the platform's identity lacking BigQuery access.
type PermissionError struct {
	Ref string
	Err error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("reading BigQuery table %s was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset and roles/bigquery.readSessionUser on the billing project: %v", e.Ref, e.Err)
}
func (e *PermissionError) Unwrap() error { return e.Err }

func classify(err error, ref TableRef) error {
	if ae, ok := apierror.FromError(err); ok {
		switch {
		case ae.GRPCStatus() != nil && ae.GRPCStatus().Code() == codes.NotFound, ae.HTTPCode() == 404:
			return &NotFoundError{Ref: ref.String()}
		case ae.GRPCStatus() != nil && ae.GRPCStatus().Code() == codes.PermissionDenied, ae.HTTPCode() == 403:
			return &PermissionError{Ref: ref.String(), Err: err}
		}
	}
	return fmt.Errorf("bigquery %s: %w", ref, err)
}

func classifyStream(err error, stream string) error {
	return fmt.Errorf("read stream %s: %w", stream, err)
}

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
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxResponseBytes bounds one ReadRows response. BigQuery sends up to about 100 MiB per
// response, far above gRPC's 4 MiB default.
const MaxResponseBytes = 256 << 20

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
	return &Client{settings: s, meta: meta, read: read}, nil
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
// not keep the batch after it returns. An empty table's session may have no stream at all.
func (c *Client) Read(ctx context.Context, s *Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error {
	rs, err := c.read.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
	if err != nil {
		return classifyStream(err, stream)
	}
	dec := decoder{schema: s.ArrowSchema, mem: memory.DefaultAllocator}
	for {
		resp, err := rs.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return classifyStream(err, stream)
		}
		batch := resp.GetArrowRecordBatch()
		if batch == nil || len(batch.GetSerializedRecordBatch()) == 0 {
			continue
		}
		if err := dec.each(batch.GetSerializedRecordBatch(), fn); err != nil {
			return err
		}
	}
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

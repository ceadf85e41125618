package bqsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// FakeSchema is the table FakeBigQuery serves: row i has id i, a name (NULL when i%5 == 0)
// and a timestamp derived from i.
var FakeSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// FakeName and FakeTS are the values of row id.
func FakeName(id int64) (string, bool) {
	if id%5 == 0 {
		return "", false
	}
	return fmt.Sprintf("name-%d-ünï", id), true
}

func FakeTS(id int64) arrow.Timestamp { return arrow.Timestamp(1_600_000_000_000_000 + id*1_000) }

// FakeBigQuery is an in-process BigQuery Storage Read server, for what nothing real on this
// machine serves: several streams per session. It frames data as BigQuery does (the session's
// arrow_schema is one IPC Schema message; each ReadRowsResponse holds one IPC RecordBatch
// message and its row count), cuts responses at random sizes, honours ReadRowsRequest.offset
// and can break streams to order.
type FakeBigQuery struct {
	storagepb.UnimplementedBigQueryReadServer

	Rows       int64 // table rows
	MaxStreams int   // most streams it grants (BigQuery decides; it may grant fewer than asked)
	// EmulatorFraming sends each batch as a whole IPC stream (schema + batch + EOS), as the
	// local emulator does, instead of BigQuery's single RecordBatch message.
	EmulatorFraming bool
	// MiscountRows declares one row more per response than the batch holds.
	MiscountRows bool

	mu       sync.Mutex
	seed     int64
	streams  map[string][2]int64 // stream name → [first id, end id)
	Sessions []*storagepb.CreateReadSessionRequest
	Reads    []*storagepb.ReadRowsRequest
	// breaks: stream name → failures to inject, each after that many rows sent in a call.
	breaks map[string][]fakeBreak
}

type fakeBreak struct {
	after int64
	code  codes.Code
	stall bool // stop sending without ending the call
}

// Break makes the next call reading stream fail with code once it has sent at least after
// rows (after 0: before any row). Calls queue in order.
func (f *FakeBigQuery) Break(stream string, after int64, code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.breaks == nil {
		f.breaks = map[string][]fakeBreak{}
	}
	f.breaks[stream] = append(f.breaks[stream], fakeBreak{after: after, code: code})
}

// Stall makes the next call reading stream stop sending once it has sent at least after rows,
// without ending the call, as a hung server or a half-open connection would: the call lasts
// until the client cancels it. Calls queue in order, with those of Break.
func (f *FakeBigQuery) Stall(stream string, after int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.breaks == nil {
		f.breaks = map[string][]fakeBreak{}
	}
	f.breaks[stream] = append(f.breaks[stream], fakeBreak{after: after, stall: true})
}

// StreamRange returns the ids [first, end) of a stream.
func (f *FakeBigQuery) StreamRange(stream string) (int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.streams[stream]
	return r[0], r[1]
}

// ReadOffsets lists the offsets of the ReadRows calls of one stream.
func (f *FakeBigQuery) ReadOffsets(stream string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for _, r := range f.Reads {
		if r.GetReadStream() == stream {
			out = append(out, r.GetOffset())
		}
	}
	return out
}

func (f *FakeBigQuery) CreateReadSession(ctx context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	if req.GetReadSession().GetDataFormat() != storagepb.DataFormat_ARROW {
		return nil, status.Error(codes.InvalidArgument, "fake: only ARROW")
	}
	if !strings.HasPrefix(req.GetParent(), "projects/") || !strings.HasPrefix(req.GetReadSession().GetTable(), "projects/") {
		return nil, status.Error(codes.InvalidArgument, "fake: bad parent or table")
	}
	if strings.HasSuffix(req.GetReadSession().GetTable(), "/tables/missing") {
		return nil, status.Error(codes.NotFound, "fake: no such table")
	}
	schemaMsg, err := fakeSchemaMessage()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Sessions = append(f.Sessions, req)
	n := int64(f.MaxStreams)
	if m := int64(req.GetMaxStreamCount()); m > 0 && m < n {
		n = m
	}
	if f.Rows == 0 {
		n = 0 // BigQuery gives an empty table no stream
	}
	name := fmt.Sprintf("projects/p/locations/us/sessions/s%d", len(f.Sessions))
	sess := &storagepb.ReadSession{
		Name:       name,
		ExpireTime: timestamppb.New(time.Now().Add(6 * time.Hour)),
		DataFormat: storagepb.DataFormat_ARROW,
		Schema:     &storagepb.ReadSession_ArrowSchema{ArrowSchema: &storagepb.ArrowSchema{SerializedSchema: schemaMsg}},
		Table:      req.GetReadSession().GetTable(),
	}
	if f.streams == nil {
		f.streams = map[string][2]int64{}
	}
	// Uneven stream sizes, as BigQuery assigns data by blocks.
	start := int64(0)
	for i := int64(0); i < n; i++ {
		end := f.Rows * (i + 1) * (i + 1) / (n * n)
		s := fmt.Sprintf("%s/streams/%d", name, i)
		f.streams[s] = [2]int64{start, end}
		sess.Streams = append(sess.Streams, &storagepb.ReadStream{Name: s})
		start = end
	}
	return sess, nil
}

func (f *FakeBigQuery) ReadRows(req *storagepb.ReadRowsRequest, srv storagepb.BigQueryRead_ReadRowsServer) error {
	f.mu.Lock()
	f.Reads = append(f.Reads, req)
	r, ok := f.streams[req.GetReadStream()]
	var brk *fakeBreak
	if q := f.breaks[req.GetReadStream()]; len(q) > 0 {
		brk = &q[0]
		f.breaks[req.GetReadStream()] = q[1:]
	}
	f.seed++
	rng := rand.New(rand.NewSource(f.seed))
	f.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "fake: no stream %s", req.GetReadStream())
	}
	if req.GetOffset() < 0 || req.GetOffset() > r[1]-r[0] {
		return status.Errorf(codes.OutOfRange, "fake: offset %d beyond %d rows", req.GetOffset(), r[1]-r[0])
	}
	schemaMsg, err := fakeSchemaMessage()
	if err != nil {
		return err
	}
	var sent int64
	for id := r[0] + req.GetOffset(); ; {
		if brk != nil && sent >= brk.after {
			if brk.stall {
				<-srv.Context().Done()
				return status.FromContextError(srv.Context().Err()).Err()
			}
			return status.Error(brk.code, "fake: stream broken to order")
		}
		if id >= r[1] {
			return nil
		}
		n := min(int64(1+rng.Intn(900)), r[1]-id)
		rec := FakeRows(id, n)
		msg, err := frame(rec, schemaMsg, f.EmulatorFraming)
		rec.Release()
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		declared := n
		if f.MiscountRows {
			declared++
		}
		err = srv.Send(&storagepb.ReadRowsResponse{
			Rows:     &storagepb.ReadRowsResponse_ArrowRecordBatch{ArrowRecordBatch: &storagepb.ArrowRecordBatch{SerializedRecordBatch: msg, RowCount: declared}},
			RowCount: declared,
		})
		if err != nil {
			return err
		}
		id += n
		sent += n
	}
}

// FakeRows builds rows [from, from+n) of the fake table.
func FakeRows(from, n int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, FakeSchema)
	defer b.Release()
	for id := from; id < from+n; id++ {
		b.Field(0).(*array.Int64Builder).Append(id)
		if s, ok := FakeName(id); ok {
			b.Field(1).(*array.StringBuilder).Append(s)
		} else {
			b.Field(1).AppendNull()
		}
		b.Field(2).(*array.TimestampBuilder).Append(FakeTS(id))
	}
	return b.NewRecordBatch()
}

var ipcEOS = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

func fakeSchemaMessage() ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(FakeSchema))
	if err := w.Close(); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), ipcEOS), nil
}

// frame encodes rec as BigQuery does: the one RecordBatch message of a one-batch IPC stream
// (which is the schema message, that message and the EOS marker). The emulator sends it all.
func frame(rec arrow.RecordBatch, schemaMsg []byte, whole bool) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if whole {
		return b, nil
	}
	if !bytes.HasPrefix(b, schemaMsg) || !bytes.HasSuffix(b, ipcEOS) {
		return nil, errors.New("fake: unexpected IPC stream layout")
	}
	return b[len(schemaMsg) : len(b)-len(ipcEOS)], nil
}

// StartFakeBigQuery serves f on a local port and returns a Client connected to it the way the
// worker connects to an emulator (Settings.StorageEndpoint).
func StartFakeBigQuery(t testing.TB, f *FakeBigQuery) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	storagepb.RegisterBigQueryReadServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	rest := httptest.NewServer(http.NotFoundHandler()) // the metadata API, unused here
	t.Cleanup(rest.Close)
	c, err := New(context.Background(), "p", Settings{BillingProject: "billing", Endpoint: rest.URL, StorageEndpoint: lis.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c.retryBackoff = time.Millisecond
	t.Cleanup(func() { c.Close() })
	return c
}

var fakeRef = TableRef{Project: "p", Dataset: "d", Table: "events"}

// readStream reads one stream and checks every value; it returns the ids in order.
func readStream(t *testing.T, c *Client, s *Session, stream string, offset int64) ([]int64, error) {
	var ids []int64
	err := c.Read(context.Background(), s, stream, offset, func(rec arrow.RecordBatch) error {
		id := rec.Column(0).(*array.Int64)
		name := rec.Column(1).(*array.String)
		ts := rec.Column(2).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			want, ok := FakeName(id.Value(i))
			if name.IsValid(i) != ok || name.Value(i) != want || ts.Value(i) != FakeTS(id.Value(i)) {
				return fmt.Errorf("row %d has wrong values", id.Value(i))
			}
			ids = append(ids, id.Value(i))
		}
		return nil
	})
	return ids, err
}

func checkRange(t *testing.T, ids []int64, from, to int64) {
	t.Helper()
	if int64(len(ids)) != to-from {
		t.Fatalf("%d rows, want %d (ids %d..%d)", len(ids), to-from, from, to)
	}
	for i, id := range ids {
		if id != from+int64(i) {
			t.Fatalf("row %d has id %d, want %d", i, id, from+int64(i))
		}
	}
}

// TestSeveralStreamsOverGRPC: a session asked for 4 streams gets them, at the snapshot, and the
// streams read in parallel give every row of the table once, each stream in order.
func TestSeveralStreamsOverGRPC(t *testing.T) {
	f := &FakeBigQuery{Rows: 30000, MaxStreams: 6}
	c := StartFakeBigQuery(t, f)
	snap := time.Date(2023, 3, 14, 4, 0, 0, 0, time.UTC)
	s, err := c.Open(context.Background(), fakeRef, snap, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 4 || s.ExpireTime.IsZero() {
		t.Fatalf("session: %d streams, expires %v", len(s.Streams), s.ExpireTime)
	}
	req := f.Sessions[0]
	if req.GetParent() != "projects/billing" || req.GetMaxStreamCount() != 4 || !req.GetReadSession().GetTableModifiers().GetSnapshotTime().AsTime().Equal(snap) ||
		req.GetReadSession().GetTable() != "projects/p/datasets/d/tables/events" {
		t.Fatalf("CreateReadSession request: %v", req)
	}
	schema, err := s.Schema()
	if err != nil || !schema.Equal(FakeSchema) {
		t.Fatalf("schema %v, %v", schema, err)
	}
	var mu sync.Mutex
	var all []int64
	var wg sync.WaitGroup
	for _, st := range s.Streams {
		wg.Go(func() {
			ids, err := readStream(t, c, s, st, 0)
			if err != nil {
				t.Error(err)
				return
			}
			from, to := f.StreamRange(st)
			checkRange(t, ids, from, to)
			mu.Lock()
			all = append(all, ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	checkRange(t, all, 0, f.Rows)

	// BigQuery may grant fewer streams than asked.
	s2, err := c.Open(context.Background(), fakeRef, snap, 100)
	if err != nil || len(s2.Streams) != 6 {
		t.Fatalf("asked 100 streams of a server granting 6: %d, %v", len(s2.Streams), err)
	}
}

func TestReadFromOffset(t *testing.T) {
	f := &FakeBigQuery{Rows: 12000, MaxStreams: 3}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Streams[2]
	from, to := f.StreamRange(st)
	for _, off := range []int64{0, 1, 1234, to - from - 1, to - from} {
		ids, err := readStream(t, c, s, st, off)
		if err != nil {
			t.Fatal(err)
		}
		checkRange(t, ids, from+off, to)
	}
	if _, err := readStream(t, c, s, st, to-from+1); status.Code(errors.Unwrap(err)) != codes.OutOfRange {
		t.Errorf("offset past the end: %v", err)
	}
}

func TestEmptyTableHasNoStream(t *testing.T) {
	c := StartFakeBigQuery(t, &FakeBigQuery{Rows: 0, MaxStreams: 4})
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 0 || len(s.ArrowSchema) == 0 {
		t.Fatalf("empty table: %d streams, schema %d bytes", len(s.Streams), len(s.ArrowSchema))
	}
	missing := fakeRef
	missing.Table = "missing"
	if _, err := c.Open(context.Background(), missing, time.Time{}, 4); failure.KindOf(err) != failure.KindTableNotFound || !strings.Contains(err.Error(), "p.d.missing") {
		t.Errorf("missing table: %v", err)
	}
}

// TestReadResumesBrokenStream: a stream the server breaks off (UNAVAILABLE, INTERNAL) is read
// again from the row after the last one delivered: every row arrives exactly once, in order.
func TestReadResumesBrokenStream(t *testing.T) {
	f := &FakeBigQuery{Rows: 20000, MaxStreams: 2}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Streams[1]
	from, to := f.StreamRange(st)
	f.Break(st, 3000, codes.Unavailable)
	f.Break(st, 0, codes.Unavailable) // fails again at once: no progress in between
	f.Break(st, 2000, codes.Internal)
	ids, err := readStream(t, c, s, st, 500)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, ids, from+500, to)
	offs := f.ReadOffsets(st)
	if len(offs) != 4 || offs[0] != 500 || offs[1] <= 500 || offs[2] != offs[1] || offs[3] <= offs[2] {
		t.Errorf("ReadRows offsets %v", offs)
	}
}

func TestReadGivesUpOnPermanentErrors(t *testing.T) {
	f := &FakeBigQuery{Rows: 5000, MaxStreams: 1}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Streams[0]

	f.Break(st, 100, codes.PermissionDenied)
	if _, err := readStream(t, c, s, st, 0); failure.KindOf(err) != failure.KindBigQueryPermission || status.Code(errors.Unwrap(err)) != codes.PermissionDenied || len(f.ReadOffsets(st)) != 1 {
		t.Errorf("PERMISSION_DENIED: %v after %d calls", err, len(f.ReadOffsets(st)))
	}

	// A stream that keeps breaking without delivering a row is given up after ReadRetries.
	for range ReadRetries + 1 {
		f.Break(st, 0, codes.Unavailable)
	}
	before := len(f.ReadOffsets(st))
	if _, err := readStream(t, c, s, st, 0); status.Code(errors.Unwrap(err)) != codes.Unavailable || failure.KindOf(err) != failure.KindTransient || len(f.ReadOffsets(st))-before != ReadRetries+1 {
		t.Errorf("endless UNAVAILABLE: %v after %d calls", err, len(f.ReadOffsets(st))-before)
	}

	// The caller's own error comes back unchanged and is never retried.
	mine := errors.New("encoder full")
	before = len(f.ReadOffsets(st))
	err = c.Read(context.Background(), s, st, 0, func(arrow.RecordBatch) error { return mine })
	if err != mine || len(f.ReadOffsets(st))-before != 1 {
		t.Errorf("callback error: %v after %d calls", err, len(f.ReadOffsets(st))-before)
	}

	// Cancelling the context ends the read.
	ctx, cancel := context.WithCancel(context.Background())
	err = c.Read(ctx, s, st, 0, func(arrow.RecordBatch) error { cancel(); return nil })
	if status.Code(errors.Unwrap(err)) != codes.Canceled && !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}

// TestReadRejectsEmulatorFraming: bytes framed as the emulator frames them (a whole IPC stream
// per response) must fail, not read as zero rows.
func TestReadRejectsEmulatorFraming(t *testing.T) {
	f := &FakeBigQuery{Rows: 3000, MaxStreams: 1, EmulatorFraming: true}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := readStream(t, c, s, s.Streams[0], 0)
	if err == nil {
		t.Fatalf("emulator framing read as %d rows without an error", len(ids))
	}
	t.Logf("emulator framing: %v", err)
}

// TestReadChecksRowCounts: a response that decodes to fewer rows than it declares fails the
// read instead of silently losing rows.
func TestReadChecksRowCounts(t *testing.T) {
	f := &FakeBigQuery{Rows: 3000, MaxStreams: 1, MiscountRows: true}
	c := StartFakeBigQuery(t, f)
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readStream(t, c, s, s.Streams[0], 0); !errors.Is(err, errFraming) {
		t.Fatalf("miscounted response: %v", err)
	}
}

// Package readserver is an in-process BigQuery Storage Read server for the load test. It
// serves generated rows deterministically, framed as BigQuery frames them (the session's
// arrow_schema is one IPC Schema message; each ReadRowsResponse holds one IPC RecordBatch
// message and its row count), honours ReadRowsRequest.offset, and counts the read sessions
// it opens.
//
// It keeps no rows: a session is a table name, a row count and stream ranges, and every
// ReadRows call generates its rows again. The BigQuery emulator keeps every session's data
// in memory, which a load test's hundreds of sessions grow to many GiB.
package readserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/civil"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Table is what the server serves for one table.
type Table struct {
	Schema bigquery.Schema
	// Rows is the table's row count.
	Rows int
	// Generate returns the table's rows, always the same ones; its result is not kept.
	Generate func() [][]bigquery.Value
}

// Server serves the tables Lookup names. Its zero value with Lookup set is ready to Serve.
type Server struct {
	storagepb.UnimplementedBigQueryReadServer

	// Lookup finds a table; ok false answers NOT_FOUND.
	Lookup func(project, dataset, table string) (Table, bool)
	// MaxStreams is the most streams a session gets (BigQuery decides, and may grant fewer
	// than asked); 0 means 4.
	MaxStreams int
	// BatchRows is the most rows per ReadRowsResponse; 0 means 1000.
	BatchRows int

	mu       sync.Mutex
	sessions int
	reads    int
	perTable map[string]int            // "dataset.table" -> sessions opened
	streams  map[string]streamRange    // stream name -> rows
	tables   map[string]*preparedTable // "project.dataset.table" -> schema, at first session
	grpc     *grpc.Server
	lis      net.Listener
}

type streamRange struct {
	table      string // key of tables
	start, end int    // rows [start, end) of the table
}

type preparedTable struct {
	Table
	arrow     *arrow.Schema
	schemaMsg []byte
}

// Counts are what the server has done.
type Counts struct {
	// Sessions is how many CreateReadSession calls opened a session.
	Sessions int
	// Reads is how many ReadRows calls it answered.
	Reads int
	// PerTable is the sessions opened per "dataset.table".
	PerTable map[string]int
}

// Counts returns a copy of the server's counts.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counts{Sessions: s.sessions, Reads: s.reads, PerTable: make(map[string]int, len(s.perTable))}
	for k, v := range s.perTable {
		c.PerTable[k] = v
	}
	return c
}

// Start serves on a free loopback port and returns its host:port, the worker's
// BIGQUERY_STORAGE_ENDPOINT (plaintext gRPC, as the worker speaks to an emulator).
func (s *Server) Start() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.lis = lis
	s.grpc = grpc.NewServer()
	storagepb.RegisterBigQueryReadServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(lis) }()
	return lis.Addr().String(), nil
}

// Stop ends the server and every call in flight.
func (s *Server) Stop() {
	if s.grpc != nil {
		s.grpc.Stop()
	}
}

// parseTable splits "projects/P/datasets/D/tables/T".
func parseTable(path string) (project, dataset, table string, ok bool) {
	p := strings.Split(path, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "datasets" || p[4] != "tables" || p[1] == "" || p[3] == "" || p[5] == "" {
		return "", "", "", false
	}
	return p[1], p[3], p[5], true
}

// CreateReadSession opens a session of the whole table: up to MaxStreams streams (none for an
// empty table, as BigQuery does) over contiguous row ranges.
func (s *Server) CreateReadSession(ctx context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	rs := req.GetReadSession()
	if rs.GetDataFormat() != storagepb.DataFormat_ARROW {
		return nil, status.Error(codes.InvalidArgument, "readserver: only ARROW")
	}
	if !strings.HasPrefix(req.GetParent(), "projects/") {
		return nil, status.Errorf(codes.InvalidArgument, "readserver: bad parent %q", req.GetParent())
	}
	project, dataset, table, ok := parseTable(rs.GetTable())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "readserver: bad table %q", rs.GetTable())
	}
	key := project + "." + dataset + "." + table
	pt, err := s.prepare(key, project, dataset, table)
	if err != nil {
		return nil, err
	}
	n := s.MaxStreams
	if n <= 0 {
		n = 4
	}
	if m := int(req.GetMaxStreamCount()); m > 0 && m < n {
		n = m
	}
	if pt.Rows == 0 {
		n = 0
	}
	n = min(n, max(pt.Rows, 0))

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	if s.perTable == nil {
		s.perTable = map[string]int{}
		s.streams = map[string]streamRange{}
	}
	s.perTable[dataset+"."+table]++
	name := fmt.Sprintf("projects/%s/locations/us/sessions/s%d", project, s.sessions)
	sess := &storagepb.ReadSession{
		Name:       name,
		ExpireTime: timestamppb.New(time.Now().Add(6 * time.Hour)),
		DataFormat: storagepb.DataFormat_ARROW,
		Schema:     &storagepb.ReadSession_ArrowSchema{ArrowSchema: &storagepb.ArrowSchema{SerializedSchema: pt.schemaMsg}},
		Table:      rs.GetTable(),
	}
	for i, start := range splitRows(pt.Rows, n) {
		st := fmt.Sprintf("%s/streams/%d", name, i)
		s.streams[st] = streamRange{table: key, start: start[0], end: start[1]}
		sess.Streams = append(sess.Streams, &storagepb.ReadStream{Name: st})
	}
	return sess, nil
}

// splitRows cuts rows into n contiguous ranges [start, end), the first ones one row longer
// when n does not divide rows.
func splitRows(rows, n int) [][2]int {
	if n <= 0 || rows <= 0 {
		return nil
	}
	out := make([][2]int, n)
	start := 0
	for i := range out {
		size := rows / n
		if i < rows%n {
			size++
		}
		out[i] = [2]int{start, start + size}
		start += size
	}
	return out
}

// prepare looks a table up and builds its Arrow schema once.
func (s *Server) prepare(key, project, dataset, table string) (*preparedTable, error) {
	s.mu.Lock()
	pt := s.tables[key]
	s.mu.Unlock()
	if pt != nil {
		return pt, nil
	}
	t, ok := s.Lookup(project, dataset, table)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Not found: Table %s:%s.%s", project, dataset, table)
	}
	as, err := ArrowSchema(t.Schema)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	msg, err := schemaMessage(as)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	pt = &preparedTable{Table: t, arrow: as, schemaMsg: msg}
	s.mu.Lock()
	if s.tables == nil {
		s.tables = map[string]*preparedTable{}
	}
	s.tables[key] = pt
	s.mu.Unlock()
	return pt, nil
}

// ReadRows sends the stream's rows from the request's offset, BatchRows at a time.
func (s *Server) ReadRows(req *storagepb.ReadRowsRequest, srv storagepb.BigQueryRead_ReadRowsServer) error {
	s.mu.Lock()
	s.reads++
	r, ok := s.streams[req.GetReadStream()]
	pt := s.tables[r.table]
	s.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "readserver: no stream %s", req.GetReadStream())
	}
	off := req.GetOffset()
	if off < 0 || off > int64(r.end-r.start) {
		return status.Errorf(codes.OutOfRange, "readserver: offset %d beyond %d rows", off, r.end-r.start)
	}
	rows := pt.Generate()
	if len(rows) != pt.Rows {
		return status.Errorf(codes.Internal, "readserver: %s generated %d rows, want %d", r.table, len(rows), pt.Rows)
	}
	batch := s.BatchRows
	if batch <= 0 {
		batch = 1000
	}
	for from := r.start + int(off); from < r.end; {
		to := min(from+batch, r.end)
		msg, err := recordBatchMessage(pt.arrow, pt.Schema, rows[from:to], pt.schemaMsg)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		n := int64(to - from)
		if err := srv.Send(&storagepb.ReadRowsResponse{
			Rows:     &storagepb.ReadRowsResponse_ArrowRecordBatch{ArrowRecordBatch: &storagepb.ArrowRecordBatch{SerializedRecordBatch: msg, RowCount: n}},
			RowCount: n,
		}); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// ArrowSchema is the Arrow schema BigQuery sends for a flat table of the types the sample
// tables use (STRING, INT64, FLOAT64, NUMERIC, BOOL, BYTES, DATE, TIMESTAMP).
func ArrowSchema(schema bigquery.Schema) (*arrow.Schema, error) {
	fields := make([]arrow.Field, len(schema))
	for i, f := range schema {
		if f.Repeated || len(f.Schema) > 0 {
			return nil, fmt.Errorf("readserver: column %s: REPEATED and RECORD are not served", f.Name)
		}
		var t arrow.DataType
		switch f.Type {
		case bigquery.StringFieldType:
			t = arrow.BinaryTypes.String
		case bigquery.IntegerFieldType:
			t = arrow.PrimitiveTypes.Int64
		case bigquery.FloatFieldType:
			t = arrow.PrimitiveTypes.Float64
		case bigquery.NumericFieldType:
			t = &arrow.Decimal128Type{Precision: 38, Scale: 9}
		case bigquery.BooleanFieldType:
			t = arrow.FixedWidthTypes.Boolean
		case bigquery.BytesFieldType:
			t = arrow.BinaryTypes.Binary
		case bigquery.DateFieldType:
			t = arrow.FixedWidthTypes.Date32
		case bigquery.TimestampFieldType:
			t = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		default:
			return nil, fmt.Errorf("readserver: column %s: type %s is not served", f.Name, f.Type)
		}
		fields[i] = arrow.Field{Name: f.Name, Type: t, Nullable: !f.Required}
	}
	return arrow.NewSchema(fields, nil), nil
}

var ipcEOS = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// schemaMessage is the IPC Schema message alone, as a session's arrow_schema holds it.
func schemaMessage(schema *arrow.Schema) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), ipcEOS), nil
}

// recordBatchMessage encodes rows as the one IPC RecordBatch message BigQuery sends: a
// one-batch IPC stream without its schema message and EOS marker.
func recordBatchMessage(as *arrow.Schema, schema bigquery.Schema, rows [][]bigquery.Value, schemaMsg []byte) ([]byte, error) {
	rec, err := record(as, schema, rows)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(as))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, schemaMsg) || !bytes.HasSuffix(b, ipcEOS) {
		return nil, errors.New("readserver: unexpected IPC stream layout")
	}
	return b[len(schemaMsg) : len(b)-len(ipcEOS)], nil
}

var (
	nanoScale = big.NewInt(1_000_000_000)
	unixEpoch = civil.Date{Year: 1970, Month: 1, Day: 1}
)

// record builds one Arrow record batch of rows in BigQuery's Go types.
func record(as *arrow.Schema, schema bigquery.Schema, rows [][]bigquery.Value) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	for _, row := range rows {
		if len(row) != len(schema) {
			return nil, fmt.Errorf("readserver: row has %d values, schema %d columns", len(row), len(schema))
		}
		for c, v := range row {
			fb := b.Field(c)
			if v == nil {
				fb.AppendNull()
				continue
			}
			if err := appendValue(fb, schema[c], v); err != nil {
				return nil, err
			}
		}
	}
	return b.NewRecordBatch(), nil
}

func appendValue(fb array.Builder, f *bigquery.FieldSchema, v bigquery.Value) error {
	bad := func() error { return fmt.Errorf("readserver: column %s (%s): value %T", f.Name, f.Type, v) }
	switch x := v.(type) {
	case string:
		sb, ok := fb.(*array.StringBuilder)
		if !ok {
			return bad()
		}
		sb.Append(x)
	case int64:
		ib, ok := fb.(*array.Int64Builder)
		if !ok {
			return bad()
		}
		ib.Append(x)
	case float64:
		fl, ok := fb.(*array.Float64Builder)
		if !ok {
			return bad()
		}
		fl.Append(x)
	case bool:
		bb, ok := fb.(*array.BooleanBuilder)
		if !ok {
			return bad()
		}
		bb.Append(x)
	case []byte:
		bb, ok := fb.(*array.BinaryBuilder)
		if !ok {
			return bad()
		}
		bb.Append(x)
	case *big.Rat:
		db, ok := fb.(*array.Decimal128Builder)
		if !ok {
			return bad()
		}
		scaled := new(big.Rat).Mul(x, new(big.Rat).SetInt(nanoScale))
		if !scaled.IsInt() {
			return fmt.Errorf("readserver: column %s: %s has more than 9 decimals", f.Name, x.RatString())
		}
		db.Append(decimal128.FromBigInt(scaled.Num()))
	case civil.Date:
		db, ok := fb.(*array.Date32Builder)
		if !ok {
			return bad()
		}
		db.Append(arrow.Date32(x.DaysSince(unixEpoch)))
	case time.Time:
		tb, ok := fb.(*array.TimestampBuilder)
		if !ok {
			return bad()
		}
		tb.Append(arrow.Timestamp(x.UnixMicro()))
	default:
		return bad()
	}
	return nil
}

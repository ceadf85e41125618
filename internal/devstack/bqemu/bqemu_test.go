package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"regexp"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	bqstorage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/civil"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	testProject   = "demo-project"
	testDataset   = "ds"
	testTable     = "all_types"
	testRows      = 2500
	testBatchRows = 1000
	testOffset    = 1234
)

// columns of the test table, all NULLABLE, with the Arrow type the emulator
// (v0.8.1) gives each BigQuery type (asserted below).
var columns = []struct {
	name      string
	bqType    bigquery.FieldType
	arrowType string
}{
	{"id", bigquery.IntegerFieldType, "int64"},
	{"f", bigquery.FloatFieldType, "float64"},
	{"n", bigquery.NumericFieldType, "decimal(38, 9)"},
	{"b", bigquery.BooleanFieldType, "bool"},
	{"s", bigquery.StringFieldType, "utf8"},
	{"by", bigquery.BytesFieldType, "binary"},
	{"d", bigquery.DateFieldType, "date32"},
	{"ts", bigquery.TimestampFieldType, "timestamp[us, tz=UTC]"},
}

// expectedRow builds row i: id = i, other columns NULL on a pattern, with
// unicode/escapes in strings, non-UTF-8 and empty bytes, extreme numerics and
// dates, and pre-1970 timestamps.
func expectedRow(i int) []bigquery.Value {
	row := make([]bigquery.Value, len(columns))
	row[0] = int64(i)
	if i%7 != 0 {
		row[1] = float64(i)*0.1 - 7.25
		if i == 1 {
			row[1] = 1.7976931348623157e308
		}
	}
	if i%11 != 0 {
		s := fmt.Sprintf("%d.%09d", int64(i)*987654321987, (i*7919+13)%1000000000)
		if i%2 == 1 {
			s = "-" + s
		}
		switch i {
		case 1:
			s = "99999999999999999999999999999.999999999"
		case 2:
			s = "-99999999999999999999999999999.999999999"
		case 3:
			s = "0.000000001"
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			panic(s)
		}
		row[2] = r
	}
	if i%5 != 0 {
		row[3] = i%2 == 0
	}
	if i%13 != 0 {
		if i%17 == 0 {
			row[4] = ""
		} else {
			row[4] = fmt.Sprintf("row-%d-héllo-世界-🚀-\"q\"\\\n\t", i)
		}
	}
	if i%3 != 0 {
		if i%19 == 0 {
			row[5] = []byte{}
		} else {
			row[5] = []byte{byte(i), byte(i >> 8), 0, 0xff, 0xfe, '+', '/', '='}
		}
	}
	if i%4 != 0 {
		switch i {
		case 1:
			row[6] = civil.Date{Year: 1, Month: 1, Day: 1}
		case 2:
			row[6] = civil.Date{Year: 9999, Month: 12, Day: 31}
		default:
			row[6] = civil.Date{Year: 2024, Month: 1, Day: 1}.AddDays(i - 1000)
		}
	}
	if i%6 != 0 {
		ts := time.Unix(1700000000+int64(i)*3661, int64((i*137)%1000000)*1000).UTC()
		if i == 1 {
			ts = time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC)
		}
		row[7] = ts
	}
	return row
}

func startStack(t *testing.T, batchRows int) *Stack {
	t.Helper()
	st, err := Start(Config{
		Project:   testProject,
		HTTPPort:  0,
		GRPCPort:  0,
		BatchRows: batchRows,
		LogLevel:  "error",
		Logger:    newLogger(&testWriter{t}, "info"),
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func bqClient(ctx context.Context, t *testing.T, httpAddr string) *bigquery.Client {
	t.Helper()
	bq, err := bigquery.NewClient(ctx, testProject,
		option.WithEndpoint("http://"+httpAddr), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("bigquery client: %v", err)
	}
	t.Cleanup(func() { _ = bq.Close() })
	return bq
}

// loadTable creates the test table through the REST API and inserts
// testRows rows with the Inserter (insertAll). It returns the inserted rows.
func loadTable(ctx context.Context, t *testing.T, bq *bigquery.Client) [][]bigquery.Value {
	t.Helper()
	if err := bq.Dataset(testDataset).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		t.Fatalf("create dataset: %v", err)
	}
	schema := make(bigquery.Schema, len(columns))
	for i, c := range columns {
		schema[i] = &bigquery.FieldSchema{Name: c.name, Type: c.bqType}
	}
	tbl := bq.Dataset(testDataset).Table(testTable)
	if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
		t.Fatalf("create table: %v", err)
	}
	want := make([][]bigquery.Value, testRows)
	ins := tbl.Inserter()
	for start := 0; start < testRows; start += 500 {
		var savers []*bigquery.ValuesSaver
		for i := start; i < min(start+500, testRows); i++ {
			want[i] = expectedRow(i)
			savers = append(savers, &bigquery.ValuesSaver{Schema: schema, InsertID: fmt.Sprint(i), Row: want[i]})
		}
		if err := ins.Put(ctx, savers); err != nil {
			t.Fatalf("insert rows %d..: %v", start, err)
		}
	}
	return want
}

// storedByInsertAll maps inserted rows to what the emulator stores: its
// insertAll (v0.8.1) does not decode the base64 JSON text of a BYTES value
// but stores the text itself as the bytes (checked in the test with the
// emulator's own LENGTH/TO_HEX). Every other type is stored as inserted.
func storedByInsertAll(rows [][]bigquery.Value) [][]bigquery.Value {
	out := make([][]bigquery.Value, len(rows))
	for i, r := range rows {
		out[i] = append([]bigquery.Value{}, r...)
		if b, ok := r[5].([]byte); ok {
			out[i][5] = []byte(base64.StdEncoding.EncodeToString(b))
		}
	}
	return out
}

func queryRows(ctx context.Context, t *testing.T, bq *bigquery.Client, sql string) [][]bigquery.Value {
	t.Helper()
	it, err := bq.Query(sql).Read(ctx)
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	var rows [][]bigquery.Value
	for {
		var r []bigquery.Value
		err := it.Next(&r)
		if errors.Is(err, iterator.Done) {
			return rows
		}
		if err != nil {
			t.Fatalf("query %s: %v", sql, err)
		}
		rows = append(rows, r)
	}
}

// messageTypes splits b into encapsulated IPC messages; eos reports a
// trailing end-of-stream marker.
func messageTypes(t *testing.T, b []byte) (types []ipc.MessageType, eos bool) {
	t.Helper()
	mr := ipc.NewMessageReader(bytes.NewReader(b))
	defer mr.Release()
	for {
		msg, err := mr.Message()
		if errors.Is(err, io.EOF) {
			return types, bytes.HasSuffix(b, ipcEOS)
		}
		if err != nil {
			t.Fatalf("read IPC message: %v", err)
		}
		types = append(types, msg.Type())
	}
}

func cellValue(t *testing.T, col arrow.Array, i int) bigquery.Value {
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
		return new(big.Rat).SetFrac(a.Value(i).BigInt(), den)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return append([]byte{}, a.Value(i)...)
	case *array.Date32:
		return civil.DateOf(a.Value(i).ToTime())
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		if tt.Unit != arrow.Microsecond || tt.TimeZone != "UTC" {
			t.Fatalf("timestamp type %v, want us UTC", tt)
		}
		return time.UnixMicro(int64(a.Value(i))).UTC()
	case *array.Struct:
		fields := make([]bigquery.Value, a.NumField())
		for f := range fields {
			fields[f] = cellValue(t, a.Field(f), i)
		}
		return fields
	}
	t.Fatalf("unexpected column type %T", col)
	return nil
}

func equalValue(a, b bigquery.Value) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case *big.Rat:
		y, ok := b.(*big.Rat)
		return ok && x.Cmp(y) == 0
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && y.Location() == time.UTC
	case []bigquery.Value:
		y, ok := b.([]bigquery.Value)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func storageClient(ctx context.Context, t *testing.T, addr string) *bqstorage.BigQueryReadClient {
	t.Helper()
	rc, err := bqstorage.NewBigQueryReadClient(ctx,
		option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithGRPCDialOption(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize))))
	if err != nil {
		t.Fatalf("storage client: %v", err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

func sessionRequest(maxStreams int32) *storagepb.CreateReadSessionRequest {
	return tableSessionRequest(testTable, maxStreams)
}

func tableSessionRequest(table string, maxStreams int32) *storagepb.CreateReadSessionRequest {
	return &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + testProject,
		ReadSession: &storagepb.ReadSession{
			Table:      fmt.Sprintf("projects/%s/datasets/%s/tables/%s", testProject, testDataset, table),
			DataFormat: storagepb.DataFormat_ARROW,
		},
		MaxStreamCount: maxStreams,
	}
}

type batchInfo struct{ rows, responseRowCount, batchRowCount int64 }

// readAll reads a stream through the proxy the way a BigQuery client does.
func readAll(ctx context.Context, t *testing.T, rc *bqstorage.BigQueryReadClient, schemaMsg []byte, stream string, offset int64) ([][]bigquery.Value, []batchInfo, error) {
	t.Helper()
	rs, err := rc.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
	if err != nil {
		return nil, nil, err
	}
	var rows [][]bigquery.Value
	var batches []batchInfo
	for {
		resp, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return rows, batches, nil
		}
		if err != nil {
			return rows, batches, err
		}
		if resp.GetArrowSchema() != nil || resp.GetAvroSchema() != nil {
			t.Errorf("response carries a schema; the proxy must not send one")
		}
		batchMsg := resp.GetArrowRecordBatch().GetSerializedRecordBatch()
		if types, eos := messageTypes(t, batchMsg); len(types) != 1 || types[0] != ipc.MessageRecordBatch || eos {
			t.Fatalf("batch bytes hold %v (eos=%v), want exactly one RecordBatch message", types, eos)
		}
		rdr, err := ipc.NewReader(io.MultiReader(bytes.NewReader(schemaMsg), bytes.NewReader(batchMsg)))
		if err != nil {
			t.Fatalf("ipc reader: %v", err)
		}
		n := 0
		for rdr.Next() {
			rec := rdr.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]bigquery.Value, rec.NumCols())
				for c := range row {
					row[c] = cellValue(t, rec.Column(c), i)
				}
				rows = append(rows, row)
			}
			batches = append(batches, batchInfo{rec.NumRows(), resp.GetRowCount(), resp.GetArrowRecordBatch().GetRowCount()})
			n++
		}
		if err := rdr.Err(); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		rdr.Release()
		if n != 1 {
			t.Fatalf("schema+batch bytes decoded to %d record batches, want 1", n)
		}
	}
}

func TestEmulatorThroughProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := startStack(t, testBatchRows)
	bq := bqClient(ctx, t, st.HTTPAddr)
	inserted := loadTable(ctx, t, bq)
	// What a correct BigQuery client must read back: the stored values.
	want := storedByInsertAll(inserted)

	t.Run("insertAll stores BYTES as their base64 text", func(t *testing.T) {
		raw := inserted[1][5].([]byte)
		got := queryRows(ctx, t, bq, "SELECT LENGTH(`by`), TO_HEX(`by`) FROM ds.all_types WHERE id = 1")
		text := base64.StdEncoding.EncodeToString(raw)
		if len(got) != 1 || got[0][0] != int64(len(text)) || got[0][1] != hex.EncodeToString([]byte(text)) {
			t.Fatalf("emulator SQL sees BYTES of id 1 as %v; want the %d-byte base64 text %q of the inserted %x",
				got, len(text), text, raw)
		}
		t.Logf("inserted %x (%d bytes) via insertAll; the emulator stores the %d bytes %q", raw, len(raw), len(text), text)
		// The REST read path itself is right: tabledata.list returns what is stored.
		it := bq.Dataset(testDataset).Table(testTable).Read(ctx)
		for {
			var r []bigquery.Value
			err := it.Next(&r)
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatalf("tabledata.list: %v", err)
			}
			if id := r[0].(int64); !equalValue(want[id][5], r[5]) {
				t.Fatalf("tabledata.list id %d BYTES %q, want stored %q", id, r[5], want[id][5])
			}
		}
	})

	t.Run("emulator framing (direct, documents what the proxy fixes)", func(t *testing.T) {
		rc := storageClient(ctx, t, st.EmulatorGRPCAddr)
		if _, err := rc.CreateReadSession(ctx, sessionRequest(2)); err == nil {
			t.Errorf("emulator accepted MaxStreamCount=2; expected an error")
		} else {
			t.Logf("emulator, MaxStreamCount=2: %v", err)
		}
		sess, err := rc.CreateReadSession(ctx, sessionRequest(1))
		if err != nil {
			t.Fatal(err)
		}
		types, eos := messageTypes(t, sess.GetArrowSchema().GetSerializedSchema())
		t.Logf("emulator session serialized_schema: messages %v, eos=%v", types, eos)
		if fmt.Sprint(types) != "[Schema RecordBatch]" || !eos {
			t.Errorf("emulator session schema framing changed: %v eos=%v", types, eos)
		}
		rs, err := rc.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: sess.GetStreams()[0].GetName(), Offset: testOffset})
		if err != nil {
			t.Fatal(err)
		}
		responses := 0
		for {
			resp, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			responses++
			b := resp.GetArrowRecordBatch().GetSerializedRecordBatch()
			types, eos := messageTypes(t, b)
			t.Logf("emulator response %d: row_count=%d, %d bytes, messages %v, eos=%v, has arrow_schema=%v",
				responses, resp.GetRowCount(), len(b), types, eos, resp.GetArrowSchema() != nil)
			if fmt.Sprint(types) != "[Schema RecordBatch]" || !eos {
				t.Errorf("emulator batch framing changed: %v eos=%v", types, eos)
			}
			rdr, err := ipc.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			for rdr.Next() {
				rec := rdr.RecordBatch()
				bin := rec.Column(5).(*array.Binary)
				t.Logf("emulator raw Arrow BYTES of id 1: %q (stored %q)", bin.Value(1), want[1][5])
				if n := rec.NumRows(); n != testRows {
					t.Errorf("emulator ignored offset? rows = %d, want all %d", n, testRows)
				}
				for i := 0; i < int(rec.NumRows()); i++ {
					id := rec.Column(0).(*array.Int64).Value(i)
					exp := want[id][5]
					if exp == nil {
						continue
					}
					if got, enc := string(bin.Value(i)), base64.StdEncoding.EncodeToString(exp.([]byte)); got != enc {
						t.Errorf("emulator Arrow BYTES id %d = %q, want base64 of the stored value %q", id, got, enc)
					}
				}
			}
			rdr.Release()
		}
		if responses != 1 {
			t.Errorf("emulator sent %d responses, expected the whole table in 1", responses)
		}
	})

	rc := storageClient(ctx, t, st.GRPCAddr)
	sess, err := rc.CreateReadSession(ctx, sessionRequest(4))
	if err != nil {
		t.Fatalf("CreateReadSession through proxy (MaxStreamCount=4): %v", err)
	}
	if len(sess.GetStreams()) != 1 {
		t.Fatalf("streams = %d, want 1", len(sess.GetStreams()))
	}
	schemaMsg := sess.GetArrowSchema().GetSerializedSchema()
	if types, eos := messageTypes(t, schemaMsg); len(types) != 1 || types[0] != ipc.MessageSchema || eos {
		t.Fatalf("session schema bytes hold %v (eos=%v), want exactly one Schema message", types, eos)
	}
	schema, err := streamSchema(schemaMsg)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range columns {
		f := schema.Field(i)
		t.Logf("BigQuery %-9s -> Arrow %v (nullable=%v, metadata=%v)", c.bqType, f.Type, f.Nullable, f.Metadata)
		if f.Name != c.name || f.Type.String() != c.arrowType {
			t.Errorf("column %d: %s %v, want %s %s", i, f.Name, f.Type, c.name, c.arrowType)
		}
	}
	stream := sess.GetStreams()[0].GetName()

	check := func(t *testing.T, got [][]bigquery.Value, from int) {
		t.Helper()
		if len(got) != testRows-from {
			t.Fatalf("rows = %d, want %d", len(got), testRows-from)
		}
		bad := 0
		for k, row := range got {
			exp := want[from+k]
			for c := range columns {
				if !equalValue(exp[c], row[c]) {
					bad++
					if bad <= 20 {
						t.Errorf("row %d (id %v) column %s: got %#v, want %#v", from+k, row[0], columns[c].name, row[c], exp[c])
					}
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%d mismatching cells", bad)
		}
	}

	t.Run("full read", func(t *testing.T) {
		got, batches, err := readAll(ctx, t, rc, schemaMsg, stream, 0)
		if err != nil {
			t.Fatalf("ReadRows: %v", err)
		}
		if len(batches) < 2 {
			t.Errorf("batches = %d, want several", len(batches))
		}
		for i, b := range batches {
			if b.rows > testBatchRows || b.rows == 0 || b.responseRowCount != b.rows || b.batchRowCount != b.rows {
				t.Errorf("batch %d: %+v (max %d rows, row counts must match)", i, b, testBatchRows)
			}
		}
		t.Logf("full read: %d rows in %d batches %v", len(got), len(batches), batches)
		check(t, got, 0)
	})

	t.Run("offset resumes the stream", func(t *testing.T) {
		got, batches, err := readAll(ctx, t, rc, schemaMsg, stream, testOffset)
		if err != nil {
			t.Fatalf("ReadRows offset %d: %v", testOffset, err)
		}
		t.Logf("offset %d: %d rows in %d batches %v", testOffset, len(got), len(batches), batches)
		if len(got) > 0 && got[0][0] != int64(testOffset) {
			t.Errorf("first row id %v, want %d", got[0][0], testOffset)
		}
		check(t, got, testOffset)

		got, _, err = readAll(ctx, t, rc, schemaMsg, stream, testRows)
		if err != nil || len(got) != 0 {
			t.Errorf("offset = row count: %d rows, err %v; want 0 rows, no error", len(got), err)
		}
		_, _, err = readAll(ctx, t, rc, schemaMsg, stream, testRows+1)
		if status.Code(err) != codes.OutOfRange {
			t.Errorf("offset past the end: err %v, want OutOfRange", err)
		}
	})

	t.Run("BYTES stored by DML come back exact", func(t *testing.T) {
		// The proxy's one-layer base64 decode undoes the emulator's read-path
		// layer exactly; values stored correctly (here by DML) are exact.
		tbl := bq.Dataset(testDataset).Table("bytes_dml")
		if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{
			{Name: "id", Type: bigquery.IntegerFieldType},
			{Name: "by", Type: bigquery.BytesFieldType},
		}}); err != nil {
			t.Fatalf("create table: %v", err)
		}
		dmlWant := [][]bigquery.Value{
			{int64(0), []byte{0x01, 0x00, 0xff, 0xfe, 0x80, '+', '/', '='}},
			{int64(1), []byte{}},
			{int64(2), nil},
			{int64(3), []byte("QUJD")}, // valid base64 text as a value stays text
			{int64(4), bytes.Repeat([]byte{0xc3, 0x28, 0x00}, 100)},
		}
		sql := "INSERT INTO ds.bytes_dml (id, `by`) VALUES "
		for i, r := range dmlWant {
			if i > 0 {
				sql += ", "
			}
			v := "NULL"
			if b, ok := r[1].([]byte); ok {
				v = fmt.Sprintf("FROM_HEX('%x')", b)
			}
			sql += fmt.Sprintf("(%d, %s)", r[0], v)
		}
		queryRows(ctx, t, bq, sql)
		sess, err := rc.CreateReadSession(ctx, tableSessionRequest("bytes_dml", 0))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), sess.GetStreams()[0].GetName(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(dmlWant) {
			t.Fatalf("rows = %d, want %d", len(got), len(dmlWant))
		}
		for i, r := range got {
			if !equalValue(dmlWant[i][0], r[0]) || !equalValue(dmlWant[i][1], r[1]) {
				t.Errorf("row %d: got %#v, want %#v", i, r, dmlWant[i])
			}
		}
	})

	t.Run("BYTES inside RECORD stored by DML come back exact", func(t *testing.T) {
		tbl := bq.Dataset(testDataset).Table("nested_dml")
		if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{
			{Name: "id", Type: bigquery.IntegerFieldType},
			{Name: "rec", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
				{Name: "b", Type: bigquery.BytesFieldType},
				{Name: "s", Type: bigquery.StringFieldType},
			}},
		}}); err != nil {
			t.Fatalf("create table: %v", err)
		}
		queryRows(ctx, t, bq, "INSERT INTO ds.nested_dml (id, rec) VALUES "+
			"(0, STRUCT(FROM_HEX('01ff0080') AS b, 'x' AS s)), (1, NULL), (2, STRUCT(CAST(NULL AS BYTES) AS b, 'y' AS s)), "+
			"(3, STRUCT(FROM_HEX('') AS b, '' AS s))")
		nestedWant := [][]bigquery.Value{
			{int64(0), []bigquery.Value{[]byte{0x01, 0xff, 0x00, 0x80}, "x"}},
			{int64(1), nil},
			{int64(2), []bigquery.Value{nil, "y"}},
			{int64(3), []bigquery.Value{[]byte{}, ""}},
		}
		sess, err := rc.CreateReadSession(ctx, tableSessionRequest("nested_dml", 0))
		if err != nil {
			t.Fatal(err)
		}
		sch, err := streamSchema(sess.GetArrowSchema().GetSerializedSchema())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("BigQuery RECORD<b BYTES, s STRING> -> Arrow %v", sch.Field(1).Type)
		got, _, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), sess.GetStreams()[0].GetName(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(nestedWant) {
			t.Fatalf("rows = %d, want %d", len(got), len(nestedWant))
		}
		for i, r := range got {
			if !equalValue(nestedWant[i][0], r[0]) || !equalValue(nestedWant[i][1], r[1]) {
				t.Errorf("row %d: got %#v, want %#v", i, r, nestedWant[i])
			}
		}
	})

	t.Run("empty table reads zero rows", func(t *testing.T) {
		if err := bq.Dataset(testDataset).Table("empty").Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{
			{Name: "id", Type: bigquery.IntegerFieldType},
		}}); err != nil {
			t.Fatalf("create table: %v", err)
		}
		sess, err := rc.CreateReadSession(ctx, tableSessionRequest("empty", 0))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sess.GetStreams() {
			got, batches, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), st.GetName(), 0)
			if err != nil || len(got) != 0 || len(batches) != 0 {
				t.Errorf("empty table: %d rows, %d batches, err %v", len(got), len(batches), err)
			}
		}
	})

	t.Run("SplitReadStream is unimplemented", func(t *testing.T) {
		_, err := rc.SplitReadStream(ctx, &storagepb.SplitReadStreamRequest{Name: stream, Fraction: 0.5})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("SplitReadStream: %v, want Unimplemented", err)
		}
	})
}

// TestRunReadyLine runs the command's run function with free ports and checks
// the ready line, that both ports answer, and a clean exit on cancellation.
func TestRunReadyLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--http-port=0", "--grpc-port=0", "--batch-rows=10", "--log-level=error"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read ready line: %v (stderr: %s)", err, stderr.String())
	}
	m := regexp.MustCompile(`^bqemu ready http=(127\.0\.0\.1:[1-9]\d*) grpc=(127\.0\.0\.1:[1-9]\d*)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ready line %q has the wrong format", line)
	}
	for _, addr := range m[1:] {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d (stderr: %s)", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}

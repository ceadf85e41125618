package parquetenc

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// smallOptions make several pages and row groups out of a few thousand rows.
var smallOptions = Options{RowGroupBytes: 200 << 10, PageBytes: 16 << 10}

func TestRoundTripTypeMatrix(t *testing.T) {
	for name, opts := range map[string]Options{"defaults": {}, "small row groups": smallOptions} {
		t.Run(name, func(t *testing.T) {
			tt := newTestTable(t, bigQueryColumns(), 6000, 1)
			checkExtremesPresent(t, tt)
			data := encode(t, tt.schema, opts, tt.rec)
			names := fieldNames(tt.schema)
			if !bytes.HasPrefix(data, []byte("PAR1")) || !bytes.HasSuffix(data, []byte("PAR1")) {
				t.Fatal("not a parquet file: no PAR1 magic")
			}

			_, arrowRows := readArrow(t, data)
			compareRows(t, "arrow-go", names, arrowRows, tt.expected)

			path := writeFile(t, data)
			db := openDuckDB(t)
			duckRows, duckTypes := readDuckDB(t, db, path, tt.schema)
			compareRows(t, "duckdb", names, duckRows, tt.expected)
			for i, c := range tt.cols {
				if duckTypes[i] != c.duckType {
					t.Errorf("duckdb type of %q = %s, want %s", c.field.Name, duckTypes[i], c.duckType)
				}
			}

			md := fileMetadata(t, data)
			if opts == smallOptions && md.NumRowGroups() < 3 {
				t.Errorf("%d row groups, want several with small options", md.NumRowGroups())
			}
			checkChunks(t, md, tt)
			checkStatisticsWithDuckDB(t, db, path, tt)
		})
	}
}

func TestParquetSchemaAnnotations(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 10, 2)
	path := writeFile(t, encode(t, tt.schema, Options{}, tt.rec))
	db := openDuckDB(t)
	rows, err := db.Query(`SELECT name, type, repetition_type, converted_type, logical_type, precision, scale, type_length FROM parquet_schema(?)`, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name string
		var typ, rep, conv, logical, precision, scale, length sql.NullString
		if err := rows.Scan(&name, &typ, &rep, &conv, &logical, &precision, &scale, &length); err != nil {
			t.Fatal(err)
		}
		got[name] = fmt.Sprintf("%s %s conv=%s logical=%s p=%s s=%s len=%s", typ.String, rep.String, conv.String, logical.String, precision.String, scale.String, length.String)
		t.Logf("%-16s %s", name, got[name])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"row_id":         {"INT64 REQUIRED", "conv= "},
		"INT_COL":        {"INT64 OPTIONAL"},
		"float_col":      {"DOUBLE OPTIONAL"},
		"bool_col":       {"BOOLEAN OPTIONAL"},
		"str_col":        {"BYTE_ARRAY OPTIONAL", "conv=UTF8", "StringType"},
		"json_col":       {"BYTE_ARRAY OPTIONAL", "conv=JSON", "JsonType"},
		"geo_col":        {"BYTE_ARRAY OPTIONAL", "conv=UTF8", "StringType"},
		"bytes_col":      {"BYTE_ARRAY OPTIONAL", "conv= logical= "},
		"NUMERIC_col":    {"FIXED_LEN_BYTE_ARRAY OPTIONAL", "conv=DECIMAL", "DecimalType", "p=38 s=9 len=16"},
		"bignumeric_col": {"BYTE_ARRAY OPTIONAL", "conv=UTF8"},
		"date_col":       {"INT32 OPTIONAL", "conv=DATE", "DateType"},
		"ts_col":         {"INT64 OPTIONAL", "conv=TIMESTAMP_MICROS", "isAdjustedToUTC=1", "MICROS"},
		"datetime_col":   {"INT64 OPTIONAL", "conv= ", "isAdjustedToUTC=0", "MICROS"},
		"time_col":       {"INT64 OPTIONAL", "conv= ", "TimeType", "isAdjustedToUTC=0", "MICROS"},
		"Ünïcode 列 Name": {"BYTE_ARRAY REQUIRED", "conv=UTF8"},
		"REQUIRED_NUM2":  {"FIXED_LEN_BYTE_ARRAY REQUIRED", "conv=DECIMAL"},
	}
	for name, parts := range want {
		for _, p := range parts {
			if !strings.Contains(got[name], p) {
				t.Errorf("parquet_schema of %q = %q, want it to contain %q", name, got[name], p)
			}
		}
	}
}

func TestEmptyTable(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 0, 3)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tt.schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, flushed, err := w.Append(tt.rec, 0); n != 0 || flushed || err != nil {
		t.Fatalf("Append(empty) = %d, %v, %v", n, flushed, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if w.BytesWritten() != int64(len(data)) || w.Rows() != 0 {
		t.Fatalf("BytesWritten %d (file %d), Rows %d", w.BytesWritten(), len(data), w.Rows())
	}
	path := writeFile(t, data)
	db := openDuckDB(t)
	var count int64
	if err := db.QueryRow(`SELECT count(*) FROM read_parquet(?)`, path).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 0 {
		t.Fatalf("duckdb counts %d rows", count)
	}
	types := duckDescribe(t, db, path)
	for i, c := range tt.cols {
		if types[i] != c.duckType {
			t.Errorf("duckdb type of %q = %s, want %s", c.field.Name, types[i], c.duckType)
		}
	}
	schema, rows := readArrow(t, data)
	if len(rows) != 0 || schema.NumFields() != len(tt.cols) {
		t.Fatalf("arrow-go reads %d rows and %d fields", len(rows), schema.NumFields())
	}
	if md := fileMetadata(t, data); md.NumRows != 0 || md.NumRowGroups() != 0 {
		t.Fatalf("metadata: %d rows, %d row groups", md.NumRows, md.NumRowGroups())
	}
}

// TestBatchSplitInvariance feeds the same rows as one batch and as many
// odd-sized batches: the files must be byte-identical.
func TestBatchSplitInvariance(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 7000, 4)
	whole := encode(t, tt.schema, smallOptions, tt.rec)
	if md := fileMetadata(t, whole); md.NumRowGroups() < 3 {
		t.Fatalf("only %d row groups", md.NumRowGroups())
	}
	for _, sizes := range [][]int64{{1}, {7, 13, 997}, {3001}, {2, 4999}} {
		var batches []arrow.RecordBatch
		for from, k := int64(0), 0; from < tt.rec.NumRows(); k++ {
			to := min(from+sizes[k%len(sizes)], tt.rec.NumRows())
			s := tt.rec.NewSlice(from, to)
			defer s.Release()
			batches = append(batches, s)
			from = to
		}
		split := encode(t, tt.schema, smallOptions, batches...)
		if !bytes.Equal(whole, split) {
			t.Errorf("batches of %v: file differs from the single-batch file (%d vs %d bytes)", sizes, len(split), len(whole))
		}
	}
}

// TestAppendStopsAfterFlush checks that Append returns right after each row
// group and that BytesWritten grows only then.
func TestAppendStopsAfterFlush(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 3000, 5)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tt.schema, smallOptions)
	if err != nil {
		t.Fatal(err)
	}
	var flushes int
	var from int64
	for from < tt.rec.NumRows() {
		before := w.BytesWritten()
		n, flushed, err := w.Append(tt.rec, from)
		if err != nil {
			t.Fatal(err)
		}
		if flushed {
			flushes++
			if w.BytesWritten() <= before {
				t.Fatalf("flush %d did not grow BytesWritten (%d)", flushes, before)
			}
		}
		from += n
	}
	if flushes < 2 {
		t.Fatalf("%d flushes, want several", flushes)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	md := fileMetadata(t, buf.Bytes())
	// Every flush wrote a row group; Close wrote the last partial one.
	if got := md.NumRowGroups(); got != flushes && got != flushes+1 {
		t.Fatalf("%d row groups for %d flushes", got, flushes)
	}
	if _, _, err := w.Append(tt.rec, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDictionaryFallback(t *testing.T) {
	// A column that starts repetitive and then turns unique: the row group
	// starts with a dictionary and falls back to plain pages.
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	bld := array.NewStringBuilder(memory.DefaultAllocator)
	defer bld.Release()
	var want [][]any
	for i := range 20000 {
		v := fmt.Sprintf("repeated-%d", i%3)
		if i >= 2000 {
			v = fmt.Sprintf("unique-value-%08d", i)
		}
		bld.Append(v)
		want = append(want, []any{v})
	}
	arr := bld.NewArray()
	defer arr.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{arr}, int64(arr.Len()))
	defer rec.Release()

	var buf bytes.Buffer
	w, err := NewWriter(&buf, schema, Options{PageBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w.dictLimit = 16 << 10
	if _, _, err := w.Append(rec, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	cc := chunk(t, fileMetadata(t, data), 0, 0)
	if !cc.HasDictionaryPage() {
		t.Fatal("no dictionary page")
	}
	encodings := pageEncodings(t, data, 0, 0)
	if len(encodings) < 4 || encodings[0] != "DICTIONARY_PAGE/PLAIN" || encodings[1] != "DATA_PAGE/PLAIN_DICTIONARY" || encodings[len(encodings)-1] != "DATA_PAGE/PLAIN" {
		t.Fatalf("pages %v: want a dictionary page, dictionary data pages, then plain data pages", encodings)
	}
	_, rows := readArrow(t, data)
	compareRows(t, "arrow-go", []string{"s"}, rows, want)
	path := writeFile(t, data)
	duckRows, _ := readDuckDB(t, openDuckDB(t), path, schema)
	compareRows(t, "duckdb", []string{"s"}, duckRows, want)
}

func TestUnsupportedColumns(t *testing.T) {
	cases := map[string]struct {
		field arrow.Field
		want  error
		text  string
	}{
		"int32": {
			field: arrow.Field{Name: "small", Type: arrow.PrimitiveTypes.Int32},
			text:  "int32",
		},
		"timestamp seconds": {
			field: arrow.Field{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}},
			text:  "time unit",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			schema := arrow.NewSchema([]arrow.Field{{Name: "ok", Type: arrow.PrimitiveTypes.Int64}, tc.field}, nil)
			_, err := NewWriter(&bytes.Buffer{}, schema, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.field.Name)) {
				t.Errorf("error %q does not name the column", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}

func TestRecordMismatch(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 5, 6)
	other := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	w, err := NewWriter(&bytes.Buffer{}, other, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Append(tt.rec, 0); err == nil {
		t.Fatal("Append accepted a record of another schema")
	}
	if _, _, err := w.Append(tt.rec, 99); err == nil {
		t.Fatal("Append accepted from beyond the record")
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	tt := newTestTable(t, bigQueryColumns(), 3000, 7)
	w, err := NewWriter(&failingWriter{after: 100}, tt.schema, smallOptions)
	if err != nil {
		t.Fatal(err)
	}
	var appendErr error
	for from := int64(0); from < tt.rec.NumRows() && appendErr == nil; {
		var n int64
		n, _, appendErr = w.Append(tt.rec, from)
		from += n
	}
	if appendErr == nil {
		appendErr = w.Close()
	}
	if appendErr == nil || !strings.Contains(appendErr.Error(), "disk full") {
		t.Fatalf("error %v, want disk full", appendErr)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a write error succeeded")
	}
}

// checkExtremesPresent guards the test data itself: the extreme values must
// really be in the batch (with constants computed outside the helpers).
func checkExtremesPresent(t *testing.T, tt *testTable) {
	t.Helper()
	want := map[string][]any{
		"date_col":       {int64(-719162), int64(2932896), int64(-165)},          // 0001-01-01, 9999-12-31, 1969-07-20
		"ts_col":         {int64(-62135596800000000), int64(253402300799999999)}, // 0001-01-01T00:00:00Z, 9999-12-31T23:59:59.999999Z
		"NUMERIC_col":    {"99999999999999999999999999999999999999", "-99999999999999999999999999999999999999"},
		"bignumeric_col": {"578960446186580977117854925043439539266.34992332820282019728792003956564819967", "-578960446186580977117854925043439539266.34992332820282019728792003956564819968"},
	}
	for i, c := range tt.cols {
		for k, v := range want[c.field.Name] {
			if got := tt.expected[k][i]; got != v {
				t.Fatalf("test data: %s row %d = %v, want %v", c.field.Name, k, got, v)
			}
		}
	}
}

// checkChunks checks every column chunk's codec, null count and encoding.
func checkChunks(t *testing.T, md *metadata.FileMetaData, tt *testTable) {
	t.Helper()
	if md.GetCreatedBy() != CreatedBy {
		t.Errorf("created_by %q", md.GetCreatedBy())
	}
	row := 0
	for g := 0; g < md.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		for c := range tt.cols {
			cc := chunk(t, md, g, c)
			if cc.Compression() != compress.Codecs.Gzip {
				t.Errorf("row group %d column %q: codec %v, want GZIP", g, tt.cols[c].field.Name, cc.Compression())
			}
			var nulls int64
			for i := row; i < row+int(rg.NumRows()); i++ {
				if tt.expected[i][c] == nil {
					nulls++
				}
			}
			st, err := cc.Statistics()
			if err != nil || st == nil {
				t.Fatalf("row group %d column %q: statistics %v, %v", g, tt.cols[c].field.Name, st, err)
			}
			if st.NullCount() != nulls {
				t.Errorf("row group %d column %q: null count %d, want %d", g, tt.cols[c].field.Name, st.NullCount(), nulls)
			}
		}
		row += int(rg.NumRows())
	}
	if int64(row) != md.NumRows || row != len(tt.expected) {
		t.Errorf("row groups hold %d rows, footer says %d, want %d", row, md.NumRows, len(tt.expected))
	}
	for c, col := range tt.cols {
		dict := chunk(t, md, 0, c).HasDictionaryPage()
		switch col.field.Name {
		case "event_type":
			if !dict {
				t.Errorf("low-cardinality column %q is not dictionary encoded", col.field.Name)
			}
		case "str_col", "bytes_col", "json_col":
			if dict {
				t.Errorf("high-cardinality column %q is dictionary encoded", col.field.Name)
			}
		}
	}
}

// checkStatisticsWithDuckDB runs filters that DuckDB answers by pruning row
// groups on their statistics: wrong bounds or null counts would drop rows.
func checkStatisticsWithDuckDB(t *testing.T, db *sql.DB, path string, tt *testTable) {
	t.Helper()
	idx := map[string]int{}
	for i, c := range tt.cols {
		idx[c.field.Name] = i
	}
	count := func(col string, pred func(any) bool) int64 {
		var n int64
		for _, row := range tt.expected {
			if pred(row[idx[col]]) {
				n++
			}
		}
		return n
	}
	checks := []struct {
		where string
		want  int64
	}{
		// DuckDB orders NaN above +Inf.
		{`float_col > 1e300`, count("float_col", func(v any) bool { f, ok := v.(float64); return ok && (f > 1e300 || math.IsNaN(f)) })},
		{`float_col < -1e300`, count("float_col", func(v any) bool { f, ok := v.(float64); return ok && f < -1e300 })},
		{`isnan(float_col)`, count("float_col", func(v any) bool { f, ok := v.(float64); return ok && math.IsNaN(f) })},
		{`str_col IS NULL`, count("str_col", func(v any) bool { return v == nil })},
		{`event_type IS NULL`, count("event_type", func(v any) bool { return v == nil })},
		{`event_type = 'click'`, count("event_type", func(v any) bool { return v == "click" })},
		{`str_col = '日本語テキスト'`, count("str_col", func(v any) bool { return v == "日本語テキスト" })},
		{`"NUMERIC_col" < -99999999999999999999999999999`, count("NUMERIC_col", func(v any) bool {
			s, ok := v.(string)
			if !ok {
				return false
			}
			unscaled, _ := new(big.Int).SetString(s, 10)
			limit, _ := new(big.Int).SetString("-99999999999999999999999999999000000000", 10)
			return unscaled.Cmp(limit) < 0
		})},
		{`"INT_COL" = 9223372036854775807`, count("INT_COL", func(v any) bool { return v == int64(math.MaxInt64) })},
		{`ts_col < TIMESTAMPTZ '1000-01-01 00:00:00+00'`, count("ts_col", func(v any) bool { us, ok := v.(int64); return ok && us < -30610224000000000 })},
		{`date_col < DATE '1000-01-01'`, count("date_col", func(v any) bool { d, ok := v.(int64); return ok && d < -354285 })},
	}
	for _, c := range checks {
		var got int64
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s') WHERE %s`, path, c.where)).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.where, err)
		}
		if got != c.want {
			t.Errorf("duckdb WHERE %s: %d rows, want %d", c.where, got, c.want)
		}
	}
}

func fieldNames(s *arrow.Schema) []string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return names
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "table_000000000000.parquet.gz")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pageEncodings lists "TYPE/ENCODING" of every page of one column chunk.
func pageEncodings(t testing.TB, data []byte, rowGroup, column int) []string {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := rdr.RowGroup(rowGroup).GetColumnPageReader(column)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for pages.Next() {
		p := pages.Page()
		out = append(out, fmt.Sprintf("%s/%s", p.Type(), p.Encoding()))
	}
	if err := pages.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func fileMetadata(t testing.TB, data []byte) *metadata.FileMetaData {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow-go file reader: %v", err)
	}
	return rdr.MetaData()
}

func chunk(t testing.TB, md *metadata.FileMetaData, rowGroup, column int) *metadata.ColumnChunkMetaData {
	t.Helper()
	cc, err := md.RowGroup(rowGroup).ColumnChunk(column)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func openDuckDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func duckDescribe(t testing.TB, db *sql.DB, path string) []string {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf(`DESCRIBE SELECT * FROM read_parquet('%s')`, path))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var types []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		types = append(types, fmt.Sprint(vals[1])) // column_name, column_type, ...
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

// readDuckDB reads the file with DuckDB, in file order, and returns the rows
// in canonical form (read according to the source schema) and DuckDB's
// column types.
func readDuckDB(t testing.TB, db *sql.DB, path string, schema *arrow.Schema) ([][]any, []string) {
	t.Helper()
	names := fieldNames(schema)
	types := duckDescribe(t, db, path)
	exprs := make([]string, len(names))
	for i, n := range names {
		exprs[i] = duckIdent(n)
		if types[i] == "JSON" {
			// The driver would unmarshal JSON; compare the text.
			exprs[i] += "::VARCHAR"
		}
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT %s FROM read_parquet('%s', file_row_number = true) ORDER BY file_row_number`, strings.Join(exprs, ", "), path))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(names))
		for c, f := range schema.Fields() {
			if types[c] == "JSON" {
				f.Metadata = arrow.Metadata{} // read as text
			}
			row[c] = canonicalDuck(t, f, vals[c])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, types
}

// duckIdent quotes a name for DuckDB SQL.
func duckIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// canonicalDuck converts a value of the DuckDB driver to the canonical form,
// interpreting it by the source column's Arrow field (the driver's Go types
// alone cannot tell a DATE from a TIMESTAMP at midnight).
func canonicalDuck(t testing.TB, f arrow.Field, v any) any {
	if v == nil {
		return nil
	}
	switch ft := f.Type.(type) {
	case *arrow.StructType:
		m, ok := v.(map[string]any)
		if !ok || len(m) != ft.NumFields() {
			t.Fatalf("duckdb value %#v for %s", v, f.Type)
		}
		out := make(map[string]any, len(m))
		for _, cf := range ft.Fields() {
			out[cf.Name] = canonicalDuck(t, cf, m[cf.Name])
		}
		return out
	case arrow.ListLikeType:
		l, ok := v.([]any)
		if !ok {
			t.Fatalf("duckdb value %#v for %s", v, f.Type)
		}
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = canonicalDuck(t, ft.ElemField(), e)
		}
		return out
	case *arrow.MonthDayNanoIntervalType:
		// Written as STRUCT(months INTEGER, days INTEGER, nanoseconds BIGINT).
		return canonicalDuck(t, arrow.Field{Type: intervalStruct}, v)
	}
	if ext, _ := fieldExtension(f); ext == bigQueryJSON {
		// Nested JSON values come back unmarshalled: marshal them again
		// (the test data holds JSON in encoding/json's canonical form).
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int64, float64, bool, string:
		return x
	case []byte:
		return string(x)
	case duckdb.Decimal:
		return x.Value.String()
	case time.Time:
		switch f.Type.ID() {
		case arrow.DATE32:
			return daysOf(x)
		case arrow.TIME64:
			return int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond()/1000)
		default:
			return microsOf(x)
		}
	}
	t.Fatalf("unexpected duckdb value %T for %s", v, f.Type)
	return nil
}

// TestParameterizedNumeric covers NUMERIC(P[, S]) and BIGNUMERIC(P[, S]),
// which the Storage Read API sends as decimal128(P, S) and decimal256(P, S):
// the smallest FIXED_LEN_BYTE_ARRAY that holds P digits, and exact text.
func TestParameterizedNumeric(t *testing.T) {
	type dec struct {
		field    arrow.Field
		duckType string
		length   int // FIXED_LEN_BYTE_ARRAY length; 0 for text
	}
	cols := []dec{
		{arrow.Field{Name: "n10_2", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true}, "DECIMAL(10,2)", 5},
		{arrow.Field{Name: "n20_0", Type: &arrow.Decimal128Type{Precision: 20, Scale: 0}, Nullable: true}, "DECIMAL(20,0)", 9},
		{arrow.Field{Name: "n1_1", Type: &arrow.Decimal128Type{Precision: 1, Scale: 1}, Nullable: true}, "DECIMAL(1,1)", 1},
		{arrow.Field{Name: "bn50_10", Type: &arrow.Decimal256Type{Precision: 50, Scale: 10}, Nullable: true}, "VARCHAR", 0},
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.field
	}
	schema := arrow.NewSchema(fields, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	pow10 := func(n int64) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil) }
	maxOf := func(p int64) *big.Int { return new(big.Int).Sub(pow10(p), big.NewInt(1)) }
	var want [][]any
	values := [][]*big.Int{
		{maxOf(10), maxOf(20), maxOf(1), maxOf(50)},
		{new(big.Int).Neg(maxOf(10)), new(big.Int).Neg(maxOf(20)), big.NewInt(-9), new(big.Int).Neg(maxOf(50))},
		{big.NewInt(1), big.NewInt(0), big.NewInt(0), big.NewInt(-1)},
		{nil, nil, nil, nil},
	}
	for _, row := range values {
		var r []any
		for i, v := range row {
			if v == nil {
				bld.Field(i).AppendNull()
				r = append(r, nil)
				continue
			}
			if b, ok := bld.Field(i).(*array.Decimal128Builder); ok {
				b.Append(decimal128.FromBigInt(v))
				r = append(r, v.String())
				continue
			}
			bld.Field(i).(*array.Decimal256Builder).Append(decimal256.FromBigInt(v))
			text := new(big.Rat).SetFrac(v, pow10(10)).FloatString(10)
			text = strings.TrimRight(strings.TrimRight(text, "0"), ".")
			r = append(r, text)
		}
		want = append(want, r)
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	data := encode(t, schema, Options{}, rec)
	names := fieldNames(schema)
	_, rows := readArrow(t, data)
	compareRows(t, "arrow-go", names, rows, want)
	path := writeFile(t, data)
	duckRows, types := readDuckDB(t, openDuckDB(t), path, schema)
	compareRows(t, "duckdb", names, duckRows, want)
	md := fileMetadata(t, data)
	for i, c := range cols {
		if types[i] != c.duckType {
			t.Errorf("duckdb type of %q = %s, want %s", c.field.Name, types[i], c.duckType)
		}
		if got := md.Schema.Column(i).TypeLength(); c.length > 0 && got != c.length {
			t.Errorf("%q: FIXED_LEN_BYTE_ARRAY(%d), want %d", c.field.Name, got, c.length)
		}
	}
}

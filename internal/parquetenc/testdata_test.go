package parquetenc

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Values are compared in a canonical form, independent of both readers:
// int64 for INT64/DATE(days)/TIMESTAMP(µs)/TIME(µs), float64, bool, string
// for text and bytes, the unscaled integer's decimal digits for NUMERIC, the
// exact decimal text for BIGNUMERIC, nil for NULL.

// testColumn describes one column as BigQuery's Storage Read API sends it.
type testColumn struct {
	field    arrow.Field
	duckType string // what DuckDB's DESCRIBE must show
	// value appends row i's value (from r or the special values) to b and
	// returns its canonical form; nil means NULL.
	value func(b array.Builder, r *rand.Rand, i int) any
}

var (
	// 10^38-1: NUMERIC's largest unscaled value (99999999999999999999999999999.999999999).
	maxNumeric = new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil), big.NewInt(1))
	// 2^255-1: BIGNUMERIC's largest unscaled value.
	maxBigNumeric = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))
	minBigNumeric = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 255))

	jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:json"})
	geoMeta  = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:geography"})

	unixEpochDay = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
)

// microsOf returns the microseconds since the Unix epoch of t.
func microsOf(t time.Time) int64 { return t.UnixMicro() }

// daysOf returns the days since the Unix epoch of t's date (not through
// time.Duration, which saturates about 292 years away from the epoch).
func daysOf(t time.Time) int64 {
	const secondsPerDay = 86400
	s := t.Unix()
	days := s / secondsPerDay
	if s%secondsPerDay < 0 {
		days--
	}
	return days
}

// special returns specials[i] while i is in range, else ok=false.
func special[T any](specials []T, i int) (T, bool) {
	if i < len(specials) {
		return specials[i], true
	}
	var zero T
	return zero, false
}

// isNull makes about one value in six NULL, never in the special rows.
func isNull(r *rand.Rand, i, specials int) bool { return i >= specials && r.IntN(6) == 0 }

var unicodeWords = []string{"", "héllo wörld", "日本語テキスト", "🦆 quack", "Ünïcödé", "tab\tand\nnewline", "'quoted' \"double\"", "a,b;c"}

func randomString(r *rand.Rand, maxLen int) string {
	var sb strings.Builder
	n := r.IntN(maxLen + 1)
	for sb.Len() < n {
		switch r.IntN(4) {
		case 0:
			sb.WriteString(unicodeWords[r.IntN(len(unicodeWords))])
		default:
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	return sb.String()
}

// bigQueryColumns returns the full type matrix, in the Arrow types the
// Storage Read API uses.
func bigQueryColumns() []testColumn {
	return []testColumn{
		{
			field:    arrow.Field{Name: "row_id", Type: arrow.PrimitiveTypes.Int64, Nullable: false},
			duckType: "BIGINT",
			value: func(b array.Builder, _ *rand.Rand, i int) any {
				b.(*array.Int64Builder).Append(int64(i))
				return int64(i)
			},
		},
		{
			field:    arrow.Field{Name: "INT_COL", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			duckType: "BIGINT",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []int64{math.MinInt64, math.MaxInt64, 0, -1}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = r.Int64() - math.MaxInt64/2
				}
				b.(*array.Int64Builder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "float_col", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			duckType: "DOUBLE",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = r.NormFloat64() * 1e6
				}
				b.(*array.Float64Builder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "bool_col", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			duckType: "BOOLEAN",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				if isNull(r, i, 2) {
					b.AppendNull()
					return nil
				}
				v := i == 0 || (i > 1 && r.IntN(2) == 0)
				b.(*array.BooleanBuilder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "str_col", Type: arrow.BinaryTypes.String, Nullable: true},
			duckType: "VARCHAR",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				v, ok := special(unicodeWords, i)
				if !ok {
					if isNull(r, i, len(unicodeWords)) {
						b.AppendNull()
						return nil
					}
					v = randomString(r, 40)
				}
				b.(*array.StringBuilder).Append(v)
				return v
			},
		},
		{
			// Low cardinality: dictionary encoded.
			field:    arrow.Field{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
			duckType: "VARCHAR",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				if isNull(r, i, 0) {
					b.AppendNull()
					return nil
				}
				v := []string{"page_view", "click", "signup", "purchase", "ünïcode_event"}[r.IntN(5)]
				b.(*array.StringBuilder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "json_col", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
			duckType: "JSON",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []string{`{"a":1,"b":[true,null,"ü"]}`, `"x"`, `null`, `[]`, `12.5`}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = fmt.Sprintf(`{"id":%d,"name":%q}`, r.IntN(1000), randomString(r, 10))
				}
				b.(*array.StringBuilder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "geo_col", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: geoMeta},
			duckType: "VARCHAR",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				if isNull(r, i, 1) {
					b.AppendNull()
					return nil
				}
				v := fmt.Sprintf("POINT(%d %d)", r.IntN(360)-180, r.IntN(180)-90)
				if i == 0 {
					v = "LINESTRING(0 0, 1.5 -2.25)"
				}
				b.(*array.StringBuilder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "bytes_col", Type: arrow.BinaryTypes.Binary, Nullable: true},
			duckType: "BLOB",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := [][]byte{{}, {0, 1, 2, 0xff, 0xfe}, []byte("plain")}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = make([]byte, r.IntN(20))
					for k := range v {
						v[k] = byte(r.IntN(256))
					}
				}
				b.(*array.BinaryBuilder).Append(v)
				return string(v)
			},
		},
		{
			field:    arrow.Field{Name: "NUMERIC_col", Type: &arrow.Decimal128Type{Precision: 38, Scale: 9}, Nullable: true},
			duckType: "DECIMAL(38,9)",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []*big.Int{maxNumeric, new(big.Int).Neg(maxNumeric), big.NewInt(1), big.NewInt(-1500000000), big.NewInt(0)}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = randBig(r, maxNumeric)
					if r.IntN(2) == 0 {
						v.Neg(v)
					}
				}
				b.(*array.Decimal128Builder).Append(decimal128.FromBigInt(v))
				return v.String()
			},
		},
		{
			field:    arrow.Field{Name: "bignumeric_col", Type: &arrow.Decimal256Type{Precision: 76, Scale: 38}, Nullable: true},
			duckType: "VARCHAR",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []*big.Int{maxBigNumeric, minBigNumeric, big.NewInt(1), big.NewInt(0), new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = randBig(r, maxBigNumeric)
					if r.IntN(2) == 0 {
						v.Neg(v)
					}
				}
				b.(*array.Decimal256Builder).Append(toDecimal256(v))
				return bigNumericText(v)
			},
		},
		{
			field:    arrow.Field{Name: "date_col", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
			duckType: "DATE",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []time.Time{
					time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
					time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC), time.Date(1900, 2, 28, 0, 0, 0, 0, time.UTC), unixEpochDay,
				}
				t, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					t = unixEpochDay.AddDate(0, 0, r.IntN(200*365)-100*365)
				}
				d := daysOf(t)
				b.(*array.Date32Builder).Append(arrow.Date32(d))
				return d
			},
		},
		{
			field:    arrow.Field{Name: "ts_col", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
			duckType: "TIMESTAMP WITH TIME ZONE",
			value:    timestampValue,
		},
		{
			field:    arrow.Field{Name: "datetime_col", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
			duckType: "TIMESTAMP",
			value:    timestampValue,
		},
		{
			field:    arrow.Field{Name: "time_col", Type: arrow.FixedWidthTypes.Time64us, Nullable: true},
			duckType: "TIME",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				specials := []int64{0, 24*3600*1e6 - 1, 12*3600*1e6 + 34*60*1e6 + 56*1e6 + 789}
				v, ok := special(specials, i)
				if !ok {
					if isNull(r, i, len(specials)) {
						b.AppendNull()
						return nil
					}
					v = r.Int64N(24 * 3600 * 1e6)
				}
				b.(*array.Time64Builder).Append(arrow.Time64(v))
				return v
			},
		},
		{
			field:    arrow.Field{Name: "Ünïcode 列 Name", Type: arrow.BinaryTypes.String, Nullable: false},
			duckType: "VARCHAR",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				v := unicodeWords[i%len(unicodeWords)]
				b.(*array.StringBuilder).Append(v)
				return v
			},
		},
		{
			field:    arrow.Field{Name: "REQUIRED_NUM2", Type: &arrow.Decimal128Type{Precision: 38, Scale: 9}, Nullable: false},
			duckType: "DECIMAL(38,9)",
			value: func(b array.Builder, r *rand.Rand, i int) any {
				v := big.NewInt(r.Int64N(1e15) - 5e14)
				b.(*array.Decimal128Builder).Append(decimal128.FromBigInt(v))
				return v.String()
			},
		},
	}
}

func timestampValue(b array.Builder, r *rand.Rand, i int) any {
	specials := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), unixEpochDay,
	}
	t, ok := special(specials, i)
	var us int64
	if ok {
		us = microsOf(t)
	} else {
		if isNull(r, i, len(specials)) {
			b.AppendNull()
			return nil
		}
		us = r.Int64N(4e15) - 1e15
	}
	b.(*array.TimestampBuilder).Append(arrow.Timestamp(us))
	return us
}

// toDecimal256 is decimal256.FromBigInt, which refuses -2^255 (BIGNUMERIC's
// minimum) although it fits in 256 bits.
func toDecimal256(v *big.Int) decimal256.Num {
	if v.Cmp(minBigNumeric) == 0 {
		return decimal256.New(1<<63, 0, 0, 0)
	}
	return decimal256.FromBigInt(v)
}

// bigNumericText is the exact decimal text of v*10^-38 without trailing
// fractional zeros, computed with big.Rat (independently of the writer).
func bigNumericText(v *big.Int) string {
	s := new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)).FloatString(38)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// randBig returns a random integer in [0, limit), of random magnitude so
// that small and large values both occur.
func randBig(r *rand.Rand, limit *big.Int) *big.Int {
	b := make([]byte, 1+r.IntN(len(limit.Bytes())))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b), limit)
}

// testTable is rows of the type matrix as one Arrow record batch plus the
// canonical expected values, expected[row][col].
type testTable struct {
	schema   *arrow.Schema
	cols     []testColumn
	rec      arrow.RecordBatch
	expected [][]any
}

func newTestTable(t testing.TB, cols []testColumn, rows int, seed uint64) *testTable {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.field
	}
	schema := arrow.NewSchema(fields, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	expected := make([][]any, rows)
	for i := range rows {
		expected[i] = make([]any, len(cols))
	}
	for c, col := range cols {
		// One generator per column keeps a column's values independent of
		// the other columns.
		cr := rand.New(rand.NewPCG(seed+uint64(c), uint64(c)))
		for i := range rows {
			expected[i][c] = col.value(bld.Field(c), cr, i)
		}
	}
	rec := bld.NewRecordBatch()
	t.Cleanup(rec.Release)
	return &testTable{schema: schema, cols: cols, rec: rec, expected: expected}
}

// encode writes batches with one Writer, checking Append's contract on the
// way, and returns the file.
func encode(t testing.TB, schema *arrow.Schema, opts Options, batches ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, schema, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	var total int64
	for _, rec := range batches {
		for from := int64(0); from < rec.NumRows(); {
			before := w.BytesWritten()
			n, flushed, err := w.Append(rec, from)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if n <= 0 {
				t.Fatalf("Append consumed %d rows from %d of %d", n, from, rec.NumRows())
			}
			if !flushed && from+n != rec.NumRows() {
				t.Fatalf("Append stopped at row %d of %d without a flush", from+n, rec.NumRows())
			}
			if flushed && w.BytesWritten() <= before {
				t.Fatalf("row group flushed but BytesWritten stayed %d", before)
			}
			if !flushed && w.BytesWritten() != before {
				t.Fatalf("no flush but BytesWritten went from %d to %d", before, w.BytesWritten())
			}
			if int64(buf.Len()) != w.BytesWritten() {
				t.Fatalf("BytesWritten %d, buffer has %d", w.BytesWritten(), buf.Len())
			}
			from += n
			total += n
		}
	}
	if w.Rows() != total {
		t.Fatalf("Rows() = %d, appended %d", w.Rows(), total)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if int64(buf.Len()) != w.BytesWritten() {
		t.Fatalf("BytesWritten %d after Close, buffer has %d", w.BytesWritten(), buf.Len())
	}
	return buf.Bytes()
}

// readArrow reads a file back with arrow-go's parquet reader and returns the
// table in canonical form.
func readArrow(t testing.TB, data []byte) (*arrow.Schema, [][]any) {
	t.Helper()
	mem := memory.DefaultAllocator
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatalf("pqarrow.ReadTable: %v", err)
	}
	defer tbl.Release()
	rows := make([][]any, tbl.NumRows())
	for i := range rows {
		rows[i] = make([]any, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		row := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				rows[row][c] = canonicalArrow(t, chunk, i)
				row++
			}
		}
	}
	return tbl.Schema(), rows
}

// canonicalArrow converts value i of arr to the canonical form.
func canonicalArrow(t testing.TB, arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	if ext, ok := arr.(array.ExtensionArray); ok {
		return canonicalArrow(t, ext.Storage(), i)
	}
	switch a := arr.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.Decimal128:
		return a.Value(i).BigInt().String()
	case *array.Date32:
		return int64(a.Value(i))
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Time64:
		return int64(a.Value(i))
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := make(map[string]any, st.NumFields())
		for k, f := range st.Fields() {
			m[f.Name] = canonicalArrow(t, a.Field(k), i)
		}
		return m
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		l := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			l = append(l, canonicalArrow(t, a.ListValues(), int(j)))
		}
		return l
	}
	t.Fatalf("unexpected arrow array %T (%s)", arr, arr.DataType())
	return nil
}

// sameValue compares canonical values; NaN equals NaN and -0 differs from +0.
// RECORDs are maps of field names and arrays are slices: a NULL (nil) never
// equals an empty array or a RECORD of NULLs.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	fa, okA := a.(float64)
	fb, okB := b.(float64)
	if okA && okB {
		if math.IsNaN(fa) || math.IsNaN(fb) {
			return math.IsNaN(fa) && math.IsNaN(fb)
		}
		return fa == fb && math.Signbit(fa) == math.Signbit(fb)
	}
	return a == b
}

func compareRows(t testing.TB, reader string, names []string, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", reader, len(got), len(want))
	}
	bad := 0
	for i := range want {
		for c := range want[i] {
			if !sameValue(got[i][c], want[i][c]) {
				t.Errorf("%s: row %d column %q = %s, want %s", reader, i, names[c], short(got[i][c]), short(want[i][c]))
				if bad++; bad > 20 {
					t.FailNow()
				}
			}
		}
	}
}

// short formats a value for a failure message, cut to a readable length.
func short(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

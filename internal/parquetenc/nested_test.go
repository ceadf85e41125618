package parquetenc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// Nested values in canonical form: a RECORD (and RANGE) is a
// map[string]any of its fields, an array is a []any (never nil: an empty
// array is []any{}, a NULL array is nil), an INTERVAL is
// map{"months", "days", "nanoseconds"} of int64; leaves are as in
// testdata_test.go.

// intervalStruct is how INTERVAL is written: its three exact parts.
var intervalStruct = arrow.StructOf(
	arrow.Field{Name: "months", Type: arrow.PrimitiveTypes.Int32},
	arrow.Field{Name: "days", Type: arrow.PrimitiveTypes.Int32},
	arrow.Field{Name: "nanoseconds", Type: arrow.PrimitiveTypes.Int64},
)

// Arrow types as the Storage Read API sends them.
var (
	tsType       = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	datetimeType = &arrow.TimestampType{Unit: arrow.Microsecond}
	numericType  = &arrow.Decimal128Type{Precision: 38, Scale: 9}
	bigNumType   = &arrow.Decimal256Type{Precision: 76, Scale: 38}
)

// repeated is BigQuery's REPEATED x: a non-null list whose elements are not
// NULL (BigQuery arrays hold no NULLs and a NULL array reads as empty).
func repeated(t arrow.DataType) arrow.DataType {
	return arrow.ListOfField(arrow.Field{Name: "item", Type: t})
}

// rangeOf is BigQuery's RANGE<t>: struct<start, end>, a NULL bound meaning
// unbounded.
func rangeOf(t arrow.DataType) arrow.DataType {
	return arrow.StructOf(arrow.Field{Name: "start", Type: t, Nullable: true}, arrow.Field{Name: "end", Type: t, Nullable: true})
}

func nullable(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

func required(name string, t arrow.DataType) arrow.Field { return arrow.Field{Name: name, Type: t} }

func withMeta(f arrow.Field, m arrow.Metadata) arrow.Field { f.Metadata = m; return f }

// everyLeaf is a RECORD holding every leaf type, NULLable.
func everyLeaf() arrow.DataType {
	return arrow.StructOf(
		nullable("b", arrow.FixedWidthTypes.Boolean),
		nullable("i", arrow.PrimitiveTypes.Int64),
		nullable("f", arrow.PrimitiveTypes.Float64),
		nullable("s", arrow.BinaryTypes.String),
		withMeta(nullable("j", arrow.BinaryTypes.String), jsonMeta),
		withMeta(nullable("g", arrow.BinaryTypes.String), geoMeta),
		nullable("by", arrow.BinaryTypes.Binary),
		nullable("n", numericType),
		nullable("bn", bigNumType),
		nullable("d", arrow.FixedWidthTypes.Date32),
		nullable("ts", tsType),
		nullable("dt", datetimeType),
		nullable("t", arrow.FixedWidthTypes.Time64us),
		nullable("iv", arrow.FixedWidthTypes.MonthDayNanoInterval),
	)
}

const everyLeafDuck = "STRUCT(b BOOLEAN, i BIGINT, f DOUBLE, s VARCHAR, j JSON, g VARCHAR, \"by\" BLOB, n DECIMAL(38,9), bn VARCHAR, d DATE, ts TIMESTAMP WITH TIME ZONE, dt TIMESTAMP, t TIME, iv STRUCT(\"months\" INTEGER, \"days\" INTEGER, nanoseconds BIGINT))"

// nestedColumns are RECORD, REPEATED, INTERVAL and RANGE columns the way the
// Storage Read API sends them, plus shapes BigQuery does not produce but
// Arrow can hold (NULL lists, NULL elements, lists of lists), with the type
// DuckDB must show for each.
func nestedColumns() []testColumn {
	cols := []struct {
		field arrow.Field
		duck  string
	}{
		{required("row_id", arrow.PrimitiveTypes.Int64), "BIGINT"},
		{nullable("rec", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int64), nullable("b", arrow.BinaryTypes.String), required("c", repeated(arrow.PrimitiveTypes.Int64)))),
			"STRUCT(a BIGINT, b VARCHAR, c BIGINT[])"},
		{required("ints", repeated(arrow.PrimitiveTypes.Int64)), "BIGINT[]"},
		{required("strs", repeated(arrow.BinaryTypes.String)), "VARCHAR[]"},
		{required("recs", repeated(arrow.StructOf(nullable("x", arrow.PrimitiveTypes.Int64), nullable("y", arrow.BinaryTypes.String), nullable("日付", arrow.FixedWidthTypes.Date32)))),
			`STRUCT(x BIGINT, y VARCHAR, "日付" DATE)[]`},
		{nullable("deep", arrow.StructOf(
			nullable("L1", arrow.StructOf(
				nullable("L2", arrow.StructOf(
					required("leaf", repeated(arrow.PrimitiveTypes.Int64)),
					nullable("ts", tsType),
					required("L3", arrow.StructOf(nullable("s", arrow.BinaryTypes.String), required("tags", repeated(arrow.BinaryTypes.String)))),
				)),
				nullable("n", numericType),
			)),
			nullable("s", arrow.BinaryTypes.String),
		)), `STRUCT(L1 STRUCT(L2 STRUCT(leaf BIGINT[], ts TIMESTAMP WITH TIME ZONE, L3 STRUCT(s VARCHAR, tags VARCHAR[])), n DECIMAL(38,9)), s VARCHAR)`},
		{nullable("every", everyLeaf()), everyLeafDuck},
		{required("every_list", repeated(everyLeaf())), everyLeafDuck + "[]"},
		{required("arr_bool", repeated(arrow.FixedWidthTypes.Boolean)), "BOOLEAN[]"},
		{required("arr_float", repeated(arrow.PrimitiveTypes.Float64)), "DOUBLE[]"},
		{required("arr_json", arrow.ListOfField(withMeta(arrow.Field{Name: "item", Type: arrow.BinaryTypes.String}, jsonMeta))), "JSON[]"},
		{required("arr_bytes", repeated(arrow.BinaryTypes.Binary)), "BLOB[]"},
		{required("arr_numeric", repeated(numericType)), "DECIMAL(38,9)[]"},
		{required("arr_bignumeric", repeated(bigNumType)), "VARCHAR[]"},
		{required("arr_date", repeated(arrow.FixedWidthTypes.Date32)), "DATE[]"},
		{required("arr_ts", repeated(tsType)), "TIMESTAMP WITH TIME ZONE[]"},
		{required("arr_datetime", repeated(datetimeType)), "TIMESTAMP[]"},
		{required("arr_time", repeated(arrow.FixedWidthTypes.Time64us)), "TIME[]"},
		{required("arr_interval", repeated(arrow.FixedWidthTypes.MonthDayNanoInterval)), `STRUCT("months" INTEGER, "days" INTEGER, nanoseconds BIGINT)[]`},
		{nullable("interval_col", arrow.FixedWidthTypes.MonthDayNanoInterval), `STRUCT("months" INTEGER, "days" INTEGER, nanoseconds BIGINT)`},
		{nullable("range_date", rangeOf(arrow.FixedWidthTypes.Date32)), `STRUCT("start" DATE, "end" DATE)`},
		{nullable("range_datetime", rangeOf(datetimeType)), `STRUCT("start" TIMESTAMP, "end" TIMESTAMP)`},
		{nullable("range_ts", rangeOf(tsType)), `STRUCT("start" TIMESTAMP WITH TIME ZONE, "end" TIMESTAMP WITH TIME ZONE)`},
		{nullable("Ünïcode Rec 1", arrow.StructOf(
			nullable("Fält Ä", arrow.PrimitiveTypes.Int64),
			required("列2", repeated(arrow.StructOf(nullable("Ωmega 9", arrow.BinaryTypes.String), nullable("UPPER", arrow.PrimitiveTypes.Int64)))),
		)), `STRUCT("Fält Ä" BIGINT, "列2" STRUCT("Ωmega 9" VARCHAR, UPPER BIGINT)[])`},
		{required("required_rec", arrow.StructOf(required("id", arrow.PrimitiveTypes.Int64), nullable("opt", arrow.BinaryTypes.String), required("vals", repeated(arrow.PrimitiveTypes.Float64)))),
			"STRUCT(id BIGINT, opt VARCHAR, vals DOUBLE[])"},
		// Not what BigQuery sends, but Arrow can: NULL lists, NULL
		// elements, lists of lists, large lists.
		{nullable("nullable_list", arrow.ListOfField(nullable("item", arrow.PrimitiveTypes.Int64))), "BIGINT[]"},
		{nullable("list_of_lists", arrow.ListOfField(nullable("item", arrow.ListOfField(nullable("item", arrow.BinaryTypes.String))))), "VARCHAR[][]"},
		{required("large_list", arrow.LargeListOfField(arrow.Field{Name: "item", Type: arrow.PrimitiveTypes.Int64})), "BIGINT[]"},
		{nullable("nullable_recs", arrow.ListOfField(nullable("item", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int64), required("b", arrow.FixedWidthTypes.Boolean))))),
			"STRUCT(a BIGINT, b BOOLEAN)[]"},
		{required("recs_of_arrays", repeated(arrow.StructOf(required("tags", repeated(arrow.BinaryTypes.String)), nullable("n", arrow.PrimitiveTypes.Int64)))),
			"STRUCT(tags VARCHAR[], n BIGINT)[]"},
	}
	out := make([]testColumn, len(cols))
	for i, c := range cols {
		f := c.field
		out[i] = testColumn{field: f, duckType: c.duck}
		if i == 0 {
			out[i].value = func(b array.Builder, _ *rand.Rand, i int) any {
				b.(*array.Int64Builder).Append(int64(i))
				return int64(i)
			}
			continue
		}
		out[i].value = func(b array.Builder, r *rand.Rand, _ int) any { return genValue(b, f, r) }
	}
	return out
}

// genValue appends a random value of field f to b and returns it in
// canonical form. NULLs, empty arrays and extreme values are frequent.
func genValue(b array.Builder, f arrow.Field, r *rand.Rand) any {
	if f.Nullable && r.IntN(6) == 0 {
		b.AppendNull()
		return nil
	}
	switch t := f.Type.(type) {
	case *arrow.StructType:
		sb := b.(*array.StructBuilder)
		sb.Append(true)
		m := make(map[string]any, t.NumFields())
		for k, cf := range t.Fields() {
			m[cf.Name] = genValue(sb.FieldBuilder(k), cf, r)
		}
		return m
	case arrow.ListLikeType:
		lb := b.(array.ListLikeBuilder)
		lb.Append(true)
		n := 0
		switch r.IntN(8) {
		case 0, 1:
		case 2:
			n = 1
		case 3:
			n = 5 + r.IntN(20)
		default:
			n = 1 + r.IntN(4)
		}
		l := make([]any, 0, n)
		for range n {
			l = append(l, genValue(lb.ValueBuilder(), t.ElemField(), r))
		}
		return l
	}
	return genLeaf(b, f, r)
}

// pick returns one of specials one time in eight, else random().
func pick[T any](r *rand.Rand, specials []T, random func() T) T {
	if r.IntN(8) == 0 {
		return specials[r.IntN(len(specials))]
	}
	return random()
}

// genLeaf appends a random non-NULL leaf value.
func genLeaf(b array.Builder, f arrow.Field, r *rand.Rand) any {
	switch f.Type.(type) {
	case *arrow.BooleanType:
		v := r.IntN(2) == 0
		b.(*array.BooleanBuilder).Append(v)
		return v
	case *arrow.Int64Type:
		v := pick(r, []int64{math.MinInt64, math.MaxInt64, 0, -1}, func() int64 { return r.Int64N(2000) - 1000 })
		b.(*array.Int64Builder).Append(v)
		return v
	case *arrow.Float64Type:
		v := pick(r, []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64}, func() float64 { return r.NormFloat64() * 1e6 })
		b.(*array.Float64Builder).Append(v)
		return v
	case *arrow.StringType:
		if ext, _ := fieldExtension(f); ext == bigQueryJSON {
			// encoding/json's canonical form, so that DuckDB's unmarshalled
			// value marshals back to the same text. (No JSON null literal:
			// the driver would return it as a SQL NULL.)
			v := pick(r, []any{map[string]any{"a": 1, "b": []any{true, nil, "ü"}}, "x", []any{}, 12.5}, func() any {
				return map[string]any{"id": r.IntN(1000), "name": randomString(r, 10)}
			})
			text, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			b.(*array.StringBuilder).Append(string(text))
			return string(text)
		}
		v := pick(r, unicodeWords, func() string { return randomString(r, 30) })
		b.(*array.StringBuilder).Append(v)
		return v
	case *arrow.BinaryType:
		v := pick(r, [][]byte{{}, {0, 0xff}}, func() []byte {
			v := make([]byte, r.IntN(12))
			for k := range v {
				v[k] = byte(r.IntN(256))
			}
			return v
		})
		b.(*array.BinaryBuilder).Append(v)
		return string(v)
	case *arrow.Decimal128Type:
		v := pick(r, []*big.Int{maxNumeric, new(big.Int).Neg(maxNumeric), big.NewInt(0)}, func() *big.Int {
			return new(big.Int).Sub(randBig(r, maxNumeric), randBig(r, maxNumeric))
		})
		b.(*array.Decimal128Builder).Append(decimal128.FromBigInt(v))
		return v.String()
	case *arrow.Decimal256Type:
		v := pick(r, []*big.Int{maxBigNumeric, minBigNumeric, big.NewInt(1)}, func() *big.Int {
			return new(big.Int).Sub(randBig(r, maxBigNumeric), randBig(r, maxBigNumeric))
		})
		b.(*array.Decimal256Builder).Append(toDecimal256(v))
		return bigNumericText(v)
	case *arrow.Date32Type:
		d := pick(r, []int64{-719162, 2932896, 0, -1}, func() int64 { return r.Int64N(73000) - 36500 })
		b.(*array.Date32Builder).Append(arrow.Date32(d))
		return d
	case *arrow.TimestampType:
		us := pick(r, []int64{-62135596800000000, 253402300799999999, 0, -1}, func() int64 { return r.Int64N(4e15) - 1e15 })
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(us))
		return us
	case *arrow.Time64Type:
		us := pick(r, []int64{0, 24*3600*1e6 - 1}, func() int64 { return r.Int64N(24 * 3600 * 1e6) })
		b.(*array.Time64Builder).Append(arrow.Time64(us))
		return us
	case *arrow.MonthDayNanoIntervalType:
		v := pick(r, []arrow.MonthDayNanoInterval{
			{Months: math.MinInt32, Days: math.MinInt32, Nanoseconds: math.MinInt64},
			{Months: math.MaxInt32, Days: math.MaxInt32, Nanoseconds: math.MaxInt64},
			{Months: -14, Days: -3, Nanoseconds: -(4*3600 + 5*60 + 6) * 1e9},
			{},
		}, func() arrow.MonthDayNanoInterval {
			return arrow.MonthDayNanoInterval{Months: r.Int32N(240000) - 120000, Days: r.Int32N(7e6) - 3.5e6, Nanoseconds: (r.Int64N(2e14) - 1e14) * 1000}
		})
		b.(*array.MonthDayNanoIntervalBuilder).Append(v)
		return map[string]any{"months": int64(v.Months), "days": int64(v.Days), "nanoseconds": v.Nanoseconds}
	}
	panic(fmt.Sprintf("genLeaf: no generator for %s", f.Type))
}

// nestedCases counts the shapes the nested test data must contain.
type nestedCases struct {
	nullRecord, recordOfNulls, nullLeafInRecord int
	emptyArray, nullArray, nullElement          int
	nullRecordInArray, emptyArrayInRecord       int
	unboundedRange, nullInterval                int
}

// checkNestedCasesPresent guards the test data: every NULL and empty shape
// must really occur.
func checkNestedCasesPresent(t *testing.T, tt *testTable) {
	t.Helper()
	var n nestedCases
	var visit func(f arrow.Field, v any, inRecord, inArray bool)
	visit = func(f arrow.Field, v any, inRecord, inArray bool) {
		switch ft := f.Type.(type) {
		case *arrow.StructType:
			if v == nil {
				n.nullRecord++
				if inArray {
					n.nullRecordInArray++
				}
				return
			}
			m := v.(map[string]any)
			nulls := 0
			for _, cf := range ft.Fields() {
				if m[cf.Name] == nil {
					nulls++
				}
				visit(cf, m[cf.Name], true, inArray)
			}
			if nulls == len(m) {
				n.recordOfNulls++
			}
			if ft.NumFields() == 2 && ft.Field(0).Name == "start" && (m["start"] == nil || m["end"] == nil) {
				n.unboundedRange++
			}
		case arrow.ListLikeType:
			if v == nil {
				n.nullArray++
				return
			}
			l := v.([]any)
			if len(l) == 0 {
				n.emptyArray++
				if inRecord {
					n.emptyArrayInRecord++
				}
			}
			for _, e := range l {
				if e == nil && ft.ElemField().Type.ID() != arrow.STRUCT {
					n.nullElement++
				}
				visit(ft.ElemField(), e, inRecord, true)
			}
		case *arrow.MonthDayNanoIntervalType:
			if v == nil {
				n.nullInterval++
			}
		default:
			if v == nil && inRecord {
				n.nullLeafInRecord++
			}
		}
	}
	for _, row := range tt.expected {
		for c, col := range tt.cols {
			visit(col.field, row[c], false, false)
		}
	}
	if n.nullRecord == 0 || n.recordOfNulls == 0 || n.nullLeafInRecord == 0 || n.emptyArray == 0 || n.nullArray == 0 ||
		n.nullElement == 0 || n.nullRecordInArray == 0 || n.emptyArrayInRecord == 0 || n.unboundedRange == 0 || n.nullInterval == 0 {
		t.Fatalf("test data lacks a case: %+v", n)
	}
}

func TestNestedRoundTrip(t *testing.T) {
	for name, opts := range map[string]Options{"defaults": {}, "small row groups": smallOptions} {
		t.Run(name, func(t *testing.T) {
			tt := newTestTable(t, nestedColumns(), 1500, 11)
			checkNestedCasesPresent(t, tt)
			data := encode(t, tt.schema, opts, tt.rec)
			names := fieldNames(tt.schema)

			_, arrowRows := readArrow(t, data)
			compareRows(t, "arrow-go", names, arrowRows, tt.expected)

			path := writeFile(t, data)
			db := openDuckDB(t)
			duckRows, duckTypes := readDuckDB(t, db, path, tt.schema)
			for i, c := range tt.cols {
				if duckTypes[i] != c.duckType {
					t.Errorf("duckdb type of %q = %s, want %s", c.field.Name, duckTypes[i], c.duckType)
				}
			}
			compareRows(t, "duckdb", names, duckRows, tt.expected)

			md := fileMetadata(t, data)
			if opts == smallOptions && md.NumRowGroups() < 3 {
				t.Errorf("%d row groups, want several with small options", md.NumRowGroups())
			}
			checkNestedChunks(t, data, tt)
		})
	}
}

// leafPaths lists the exact path of every parquet leaf of an Arrow field,
// computed independently of the writer.
func leafPaths(f arrow.Field, prefix []string) [][]string {
	path := append(slices.Clip(prefix), f.Name)
	switch t := f.Type.(type) {
	case *arrow.StructType:
		var out [][]string
		for _, cf := range t.Fields() {
			out = append(out, leafPaths(cf, path)...)
		}
		return out
	case arrow.ListLikeType:
		ef := t.ElemField()
		ef.Name = "element"
		return leafPaths(ef, append(path, "list"))
	case *arrow.MonthDayNanoIntervalType:
		return [][]string{append(slices.Clip(path), "months"), append(slices.Clip(path), "days"), append(slices.Clip(path), "nanoseconds")}
	}
	return [][]string{path}
}

// checkNestedChunks checks every leaf's chunk: its exact path, GZIP, and
// that its null count counts the level entries without a value.
func checkNestedChunks(t *testing.T, data []byte, tt *testTable) {
	t.Helper()
	var paths [][]string
	for _, c := range tt.cols {
		paths = append(paths, leafPaths(c.field, nil)...)
	}
	md := fileMetadata(t, data)
	if md.NumColumns() != len(paths) {
		t.Fatalf("%d leaf columns, want %d", md.NumColumns(), len(paths))
	}
	for g := 0; g < md.NumRowGroups(); g++ {
		for k, want := range paths {
			cc := chunk(t, md, g, k)
			if got := cc.PathInSchema(); !slices.Equal(got, want) {
				t.Fatalf("row group %d leaf %d: path %q, want %q", g, k, got, want)
			}
			if cc.Compression() != compress.Codecs.Gzip {
				t.Errorf("leaf %q: codec %v", want, cc.Compression())
			}
			st, err := cc.Statistics()
			if err != nil || st == nil {
				t.Fatalf("leaf %q: statistics %v, %v", want, st, err)
			}
			if st.NullCount() > cc.NumValues() {
				t.Errorf("leaf %q: null count %d above %d values", want, st.NullCount(), cc.NumValues())
			}
		}
	}
	// Exact null counts for a few leaves, from the source values: entries
	// without a value are NULL leaves, NULL or empty arrays and NULL
	// ancestors.
	idx := map[string]int{}
	for i, c := range tt.cols {
		idx[c.field.Name] = i
	}
	leafIndex := func(p ...string) int {
		for k, q := range paths {
			if slices.Equal(q, p) {
				return k
			}
		}
		t.Fatalf("no leaf %q", p)
		return -1
	}
	checks := []struct {
		leaf  []string
		nulls func(row []any) (nulls, values int64)
	}{
		{[]string{"rec", "a"}, func(row []any) (int64, int64) {
			if m, ok := row[idx["rec"]].(map[string]any); ok && m["a"] != nil {
				return 0, 1
			}
			return 1, 1
		}},
		{[]string{"ints", "list", "element"}, func(row []any) (int64, int64) {
			l := row[idx["ints"]].([]any)
			if len(l) == 0 {
				return 1, 1
			}
			return 0, int64(len(l))
		}},
		{[]string{"nullable_list", "list", "element"}, func(row []any) (int64, int64) {
			l, _ := row[idx["nullable_list"]].([]any)
			if len(l) == 0 {
				return 1, 1
			}
			var nulls int64
			for _, e := range l {
				if e == nil {
					nulls++
				}
			}
			return nulls, int64(len(l))
		}},
	}
	for _, c := range checks {
		k := leafIndex(c.leaf...)
		row := 0
		for g := 0; g < md.NumRowGroups(); g++ {
			var nulls, values int64
			for i := row; i < row+int(md.RowGroup(g).NumRows()); i++ {
				n, v := c.nulls(tt.expected[i])
				nulls += n
				values += v
			}
			row += int(md.RowGroup(g).NumRows())
			cc := chunk(t, md, g, k)
			st, _ := cc.Statistics()
			if st.NullCount() != nulls || cc.NumValues() != values {
				t.Errorf("row group %d leaf %q: null count %d, values %d; want %d, %d", g, c.leaf, st.NullCount(), cc.NumValues(), nulls, values)
			}
		}
	}
}

func TestNestedSchemaAnnotations(t *testing.T) {
	tt := newTestTable(t, nestedColumns(), 10, 12)
	path := writeFile(t, encode(t, tt.schema, Options{}, tt.rec))
	db := openDuckDB(t)
	rows, err := db.Query(`SELECT name, type, repetition_type, num_children, converted_type, logical_type FROM parquet_schema(?)`, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name string
		var typ, rep, children, conv, logical any
		if err := rows.Scan(&name, &typ, &rep, &children, &conv, &logical); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%v|%v|%v|%v|%v", name, typ, rep, children, conv, logical))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(got, "\n")
	t.Log(all)
	for _, want := range []string{
		// REQUIRED RECORD and REPEATED x: the 3-level LIST.
		"ints|<nil>|REQUIRED|1|LIST|ListType()",
		"list|<nil>|REPEATED|1|<nil>|<nil>",
		"element|INT64|REQUIRED|<nil>|<nil>|<nil>",
		"rec|<nil>|OPTIONAL|3|<nil>|<nil>",
		"required_rec|<nil>|REQUIRED|3|<nil>|<nil>",
		"nullable_list|<nil>|OPTIONAL|1|LIST|ListType()",
		"element|INT64|OPTIONAL|<nil>|<nil>|<nil>",
		// Exact names at every level.
		"Ünïcode Rec 1|<nil>|OPTIONAL|2|<nil>|<nil>",
		"Fält Ä|INT64|OPTIONAL|",
		"列2|<nil>|REQUIRED|1|LIST|ListType()",
		"Ωmega 9|BYTE_ARRAY|OPTIONAL|<nil>|UTF8|",
		"UPPER|INT64|OPTIONAL|",
		"日付|INT32|OPTIONAL|<nil>|DATE|",
		"L3|<nil>|REQUIRED|2|",
		// INTERVAL and RANGE.
		"interval_col|<nil>|OPTIONAL|3|<nil>|<nil>",
		"months|INT32|REQUIRED|<nil>|<nil>|<nil>",
		"nanoseconds|INT64|REQUIRED|<nil>|<nil>|<nil>",
		"range_date|<nil>|OPTIONAL|2|<nil>|<nil>",
		"start|INT32|OPTIONAL|<nil>|DATE|",
		"j|BYTE_ARRAY|OPTIONAL|<nil>|JSON|",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("parquet_schema lacks %q", want)
		}
	}
}

// TestNestedBatchSplitInvariance feeds the same nested rows as one batch
// and as many odd-sized batches: the files must be byte-identical.
func TestNestedBatchSplitInvariance(t *testing.T) {
	tt := newTestTable(t, nestedColumns(), 1200, 13)
	opts := Options{RowGroupBytes: 64 << 10, PageBytes: 8 << 10}
	whole := encode(t, tt.schema, opts, tt.rec)
	if md := fileMetadata(t, whole); md.NumRowGroups() < 3 {
		t.Fatalf("only %d row groups", md.NumRowGroups())
	}
	for _, sizes := range [][]int64{{1}, {7, 13, 997}, {2, 599}} {
		var batches []arrow.RecordBatch
		for from, k := int64(0), 0; from < tt.rec.NumRows(); k++ {
			to := min(from+sizes[k%len(sizes)], tt.rec.NumRows())
			s := tt.rec.NewSlice(from, to)
			defer s.Release()
			batches = append(batches, s)
			from = to
		}
		split := encode(t, tt.schema, opts, batches...)
		if !bytes.Equal(whole, split) {
			t.Errorf("batches of %v: file differs from the single-batch file (%d vs %d bytes)", sizes, len(split), len(whole))
		}
	}
}

// TestNestedRowGroupsBoundMemory checks that row groups are cut by the size
// of nested values: rows whose arrays are large make small row groups.
func TestNestedRowGroupsBoundMemory(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{required("id", arrow.PrimitiveTypes.Int64), required("vals", repeated(arrow.BinaryTypes.String))}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	const rows = 400
	for i := range rows {
		bld.Field(0).(*array.Int64Builder).Append(int64(i))
		lb := bld.Field(1).(*array.ListBuilder)
		lb.Append(true)
		for k := range 100 {
			lb.ValueBuilder().(*array.StringBuilder).Append(fmt.Sprintf("%08d-%s", i*100+k, strings.Repeat("x", 40)))
		}
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	// ~5 KiB per row: 64 KiB row groups hold about 13 rows.
	data := encode(t, schema, Options{RowGroupBytes: 64 << 10, PageBytes: 8 << 10}, rec)
	md := fileMetadata(t, data)
	if md.NumRowGroups() < rows/15 {
		t.Fatalf("%d row groups for %d rows of ~5 KiB with 64 KiB row groups", md.NumRowGroups(), rows)
	}
	for g := 0; g < md.NumRowGroups(); g++ {
		if n := md.RowGroup(g).NumRows(); n > 14 {
			t.Errorf("row group %d has %d rows", g, n)
		}
	}
	_, got := readArrow(t, data)
	if len(got) != rows || len(got[rows-1][1].([]any)) != 100 {
		t.Fatalf("read back %d rows", len(got))
	}
}

// TestNestedDictionary checks that nested string leaves get dictionary pages
// when repetitive, and that values survive.
func TestNestedDictionary(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		required("tags", repeated(arrow.BinaryTypes.String)),
		nullable("rec", arrow.StructOf(nullable("kind", arrow.BinaryTypes.String))),
	}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"page_view", "click", "ünïcode"}
	var want [][]any
	for i := range 5000 {
		lb := bld.Field(0).(*array.ListBuilder)
		lb.Append(true)
		tags := []any{}
		for range r.IntN(4) {
			v := kinds[r.IntN(len(kinds))]
			lb.ValueBuilder().(*array.StringBuilder).Append(v)
			tags = append(tags, v)
		}
		sb := bld.Field(1).(*array.StructBuilder)
		var rec any
		if i%7 == 0 {
			sb.AppendNull()
		} else {
			sb.Append(true)
			v := kinds[r.IntN(len(kinds))]
			sb.FieldBuilder(0).(*array.StringBuilder).Append(v)
			rec = map[string]any{"kind": v}
		}
		want = append(want, []any{tags, rec})
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	data := encode(t, schema, Options{PageBytes: 4 << 10}, rec)
	md := fileMetadata(t, data)
	for c := range 2 {
		if !chunk(t, md, 0, c).HasDictionaryPage() {
			t.Errorf("leaf %d: no dictionary page", c)
		}
		enc := pageEncodings(t, data, 0, c)
		if len(enc) < 3 || enc[0] != "DICTIONARY_PAGE/PLAIN" || enc[1] != "DATA_PAGE/PLAIN_DICTIONARY" {
			t.Errorf("leaf %d: pages %v", c, enc)
		}
	}
	names := fieldNames(schema)
	_, got := readArrow(t, data)
	compareRows(t, "arrow-go", names, got, want)
	path := writeFile(t, data)
	db := openDuckDB(t)
	duckRows, _ := readDuckDB(t, db, path, schema)
	compareRows(t, "duckdb", names, duckRows, want)
	// Statistics of dictionary-encoded nested leaves must not make DuckDB
	// skip rows.
	var n, wantN int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s') WHERE rec.kind = 'ünïcode'`, path)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for _, row := range want {
		if m, ok := row[1].(map[string]any); ok && m["kind"] == "ünïcode" {
			wantN++
		}
	}
	if n != wantN {
		t.Errorf("duckdb counts %d rows with rec.kind = 'ünïcode', want %d", n, wantN)
	}
}

// TestNestedStatisticsWithDuckDB runs filters on nested leaves that DuckDB
// can answer from row-group statistics: wrong bounds or null counts would
// drop rows.
func TestNestedStatisticsWithDuckDB(t *testing.T) {
	tt := newTestTable(t, nestedColumns(), 2000, 14)
	path := writeFile(t, encode(t, tt.schema, smallOptions, tt.rec))
	db := openDuckDB(t)
	idx := map[string]int{}
	for i, c := range tt.cols {
		idx[c.field.Name] = i
	}
	field := func(row []any, col string, names ...string) any {
		v := row[idx[col]]
		for _, n := range names {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[n]
		}
		return v
	}
	count := func(pred func(row []any) bool) int64 {
		var n int64
		for _, row := range tt.expected {
			if pred(row) {
				n++
			}
		}
		return n
	}
	checks := []struct {
		where string
		want  int64
	}{
		{`rec.a IS NULL`, count(func(row []any) bool { return field(row, "rec", "a") == nil })},
		{`rec IS NULL`, count(func(row []any) bool { return row[idx["rec"]] == nil })},
		{`rec.a = 9223372036854775807`, count(func(row []any) bool { return field(row, "rec", "a") == int64(math.MaxInt64) })},
		{`rec.a < -999`, count(func(row []any) bool { v, ok := field(row, "rec", "a").(int64); return ok && v < -999 })},
		{`deep."L1"."L2".ts < TIMESTAMPTZ '1000-01-01 00:00:00+00'`, count(func(row []any) bool {
			v, ok := field(row, "deep", "L1", "L2", "ts").(int64)
			return ok && v < -30610224000000000
		})},
		{`deep."L1"."L2" IS NULL`, count(func(row []any) bool { return field(row, "deep", "L1", "L2") == nil })},
		{`range_date."end" IS NULL AND range_date IS NOT NULL`, count(func(row []any) bool {
			return row[idx["range_date"]] != nil && field(row, "range_date", "end") == nil
		})},
		{`interval_col.months = -2147483648`, count(func(row []any) bool { return field(row, "interval_col", "months") == int64(math.MinInt32) })},
		{`len(ints) = 0`, count(func(row []any) bool { return len(row[idx["ints"]].([]any)) == 0 })},
		{`nullable_list IS NULL`, count(func(row []any) bool { return row[idx["nullable_list"]] == nil })},
		{`list_contains(ints, 9223372036854775807)`, count(func(row []any) bool { return slices.Contains(row[idx["ints"]].([]any), any(int64(math.MaxInt64))) })},
	}
	for _, c := range checks {
		var got int64
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s') WHERE %s`, path, c.where)).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.where, err)
		}
		if got != c.want {
			t.Errorf("duckdb WHERE %s: %d rows, want %d", c.where, got, c.want)
		}
		if c.want == 0 {
			t.Errorf("WHERE %s: the test data has no matching row", c.where)
		}
	}
}

func TestNestedEmptyTable(t *testing.T) {
	tt := newTestTable(t, nestedColumns(), 0, 15)
	data := encode(t, tt.schema, Options{}, tt.rec)
	db := openDuckDB(t)
	types := duckDescribe(t, db, writeFile(t, data))
	for i, c := range tt.cols {
		if types[i] != c.duckType {
			t.Errorf("duckdb type of %q = %s, want %s", c.field.Name, types[i], c.duckType)
		}
	}
	if schema, rows := readArrow(t, data); len(rows) != 0 || schema.NumFields() != len(tt.cols) {
		t.Fatalf("arrow-go reads %d rows and %d fields", len(rows), schema.NumFields())
	}
}

// TestNestedNullInRequiredField checks that a NULL where the Arrow schema
// says a nested field is not nullable is an error naming the field, not a
// corrupt file.
func TestNestedNullInRequiredField(t *testing.T) {
	cases := map[string]struct {
		field arrow.Field
		build func(b array.Builder)
		names string
	}{
		"field in record": {
			field: nullable("rec", arrow.StructOf(required("id", arrow.PrimitiveTypes.Int64))),
			build: func(b array.Builder) {
				sb := b.(*array.StructBuilder)
				sb.Append(true)
				sb.FieldBuilder(0).AppendNull()
			},
			names: `"rec.id"`,
		},
		"element": {
			field: required("ints", repeated(arrow.PrimitiveTypes.Int64)),
			build: func(b array.Builder) {
				lb := b.(*array.ListBuilder)
				lb.Append(true)
				lb.ValueBuilder().AppendNull()
			},
			names: `"ints.list.element"`,
		},
		"record in record": {
			field: nullable("a", arrow.StructOf(required("b", arrow.StructOf(nullable("c", arrow.PrimitiveTypes.Int64))))),
			build: func(b array.Builder) {
				sb := b.(*array.StructBuilder)
				sb.Append(true)
				sb.FieldBuilder(0).AppendNull()
			},
			names: `"a.b"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			schema := arrow.NewSchema([]arrow.Field{tc.field}, nil)
			bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
			defer bld.Release()
			tc.build(bld.Field(0))
			rec := bld.NewRecordBatch()
			defer rec.Release()
			w, err := NewWriter(&bytes.Buffer{}, schema, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = w.Append(rec, 0)
			if err == nil || !strings.Contains(err.Error(), tc.names) || !strings.Contains(err.Error(), "NULL") {
				t.Fatalf("Append: %v, want an error naming %s", err, tc.names)
			}
			if err := w.Close(); err == nil {
				t.Fatal("Close after the error succeeded")
			}
		})
	}
}

// TestNestedArrowSlices checks that sliced Arrow arrays (offsets into struct
// children and list values) are read at the right positions.
func TestNestedArrowSlices(t *testing.T) {
	tt := newTestTable(t, nestedColumns(), 300, 16)
	for _, r := range [][2]int64{{0, 1}, {17, 18}, {101, 250}, {299, 300}} {
		s := tt.rec.NewSlice(r[0], r[1])
		data := encode(t, tt.schema, Options{}, s)
		s.Release()
		_, got := readArrow(t, data)
		compareRows(t, fmt.Sprintf("arrow-go, rows %v", r), fieldNames(tt.schema), got, tt.expected[r[0]:r[1]])
	}
}

// TestIntervalExact checks the INTERVAL representation with extreme parts
// and that DuckDB can turn it back into its INTERVAL type.
func TestIntervalExact(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{nullable("iv", arrow.FixedWidthTypes.MonthDayNanoInterval)}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	ib := bld.Field(0).(*array.MonthDayNanoIntervalBuilder)
	// BigQuery's INTERVAL '1-2 3 4:5:6.789' YEAR TO SECOND and its negation.
	ib.Append(arrow.MonthDayNanoInterval{Months: 14, Days: 3, Nanoseconds: (4*3600+5*60+6)*1e9 + 789e6})
	ib.Append(arrow.MonthDayNanoInterval{Months: -14, Days: -3, Nanoseconds: -((4*3600+5*60+6)*1e9 + 789e6)})
	ib.AppendNull()
	rec := bld.NewRecordBatch()
	defer rec.Release()
	path := writeFile(t, encode(t, schema, Options{}, rec))
	db := openDuckDB(t)
	rows, err := db.Query(fmt.Sprintf(`SELECT (to_months(iv.months) + to_days(iv.days) + to_microseconds(iv.nanoseconds // 1000))::VARCHAR FROM read_parquet('%s', file_row_number = true) ORDER BY file_row_number`, path))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []any
	for rows.Next() {
		var s any
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	want := []any{"1 year 2 months 3 days 04:05:06.789", "-1 year -2 months -3 days -04:05:06.789", nil}
	if !slices.Equal(got, want) {
		t.Fatalf("duckdb intervals %q, want %q", got, want)
	}
}

// TestRangeTypes checks RANGE<DATE|DATETIME|TIMESTAMP> values, unbounded
// ends included, through DuckDB's typed view.
func TestRangeTypes(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		nullable("rd", rangeOf(arrow.FixedWidthTypes.Date32)),
		nullable("rdt", rangeOf(datetimeType)),
		nullable("rts", rangeOf(tsType)),
	}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	day := func(s string) int64 {
		tm, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return daysOf(tm)
	}
	us := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	appendRange := func(b array.Builder, start, end any, put func(array.Builder, int64)) {
		sb := b.(*array.StructBuilder)
		if start == "null range" {
			sb.AppendNull()
			return
		}
		sb.Append(true)
		for k, v := range []any{start, end} {
			if v == nil {
				sb.FieldBuilder(k).AppendNull()
			} else {
				put(sb.FieldBuilder(k), v.(int64))
			}
		}
	}
	putDate := func(b array.Builder, v int64) { b.(*array.Date32Builder).Append(arrow.Date32(v)) }
	putTS := func(b array.Builder, v int64) { b.(*array.TimestampBuilder).Append(arrow.Timestamp(v)) }
	appendRange(bld.Field(0), day("2024-01-01"), day("2024-02-01"), putDate)
	appendRange(bld.Field(1), us("2024-01-01T10:00:00.000001Z"), nil, putTS)
	appendRange(bld.Field(2), nil, us("9999-12-31T23:59:59.999999Z"), putTS)
	appendRange(bld.Field(0), nil, nil, putDate)
	appendRange(bld.Field(1), "null range", nil, putTS)
	appendRange(bld.Field(2), us("0001-01-01T00:00:00Z"), us("2024-03-10T02:30:00Z"), putTS)
	rec := bld.NewRecordBatch()
	defer rec.Release()
	path := writeFile(t, encode(t, schema, Options{}, rec))
	// One connection: the time zone is a session setting.
	ctx := context.Background()
	conn, err := openDuckDB(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT rd::VARCHAR, rdt::VARCHAR, rts::VARCHAR FROM read_parquet('%s', file_row_number = true) ORDER BY file_row_number`, path))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var a, b, c any
		if err := rows.Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(a, " | ", b, " | ", c))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"{'start': 2024-01-01, 'end': 2024-02-01} | {'start': '2024-01-01 10:00:00.000001', 'end': NULL} | {'start': NULL, 'end': '9999-12-31 23:59:59.999999+00'}",
		"{'start': NULL, 'end': NULL} | <nil> | {'start': '0001-01-01 00:00:00+00', 'end': '2024-03-10 02:30:00+00'}",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("duckdb ranges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnsupportedNestedColumns(t *testing.T) {
	cases := map[string]struct {
		field arrow.Field
		want  error
		text  string
	}{
		"map": {
			field: nullable("m", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)),
			want:  ErrNestedNotSupported,
		},
		"fixed size list": {
			field: nullable("fsl", arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int64)),
			want:  ErrNestedNotSupported,
		},
		"map in record": {
			field: nullable("rec", arrow.StructOf(nullable("m", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)))),
			want:  ErrNestedNotSupported,
			text:  `field "rec.m"`,
		},
		"int32 in list": {
			field: required("l", repeated(arrow.PrimitiveTypes.Int32)),
			text:  `field "l.list.element": arrow type int32 is not supported`,
		},
		"empty record": {
			field: nullable("rec", arrow.StructOf()),
			text:  "no fields",
		},
		"duplicate field": {
			field: nullable("rec", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int64), nullable("a", arrow.BinaryTypes.String))),
			text:  `duplicate column name "a"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			schema := arrow.NewSchema([]arrow.Field{required("ok", arrow.PrimitiveTypes.Int64), tc.field}, nil)
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

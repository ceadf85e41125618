package parquetenc

import (
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// eventBatches builds event-like rows (the shape of the biggest exported
// tables) in batches of the size the Storage Read API tends to send.
func eventBatches(b *testing.B, rows, batchRows int) (*arrow.Schema, []arrow.RecordBatch) {
	b.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "account_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "properties", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "event_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "sequence", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "revenue", Type: &arrow.Decimal128Type{Precision: 38, Scale: 9}, Nullable: true},
		{Name: "is_conversion", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"page_view", "click", "form_submit", "signup", "purchase", "identify"}
	paths := []string{"/", "/pricing", "/blog/attribution-models", "/docs/getting-started", "/contact"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var batches []arrow.RecordBatch
	for done := 0; done < rows; done += batchRows {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := done; i < min(done+batchRows, rows); i++ {
			bld.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%016x-%08x", r.Uint64(), i))
			bld.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("acct-%04d", r.IntN(300)))
			bld.Field(2).(*array.StringBuilder).Append(types[r.IntN(len(types))])
			bld.Field(3).(*array.StringBuilder).Append("https://example.com" + paths[r.IntN(len(paths))] + fmt.Sprintf("?utm_source=s%d", r.IntN(20)))
			if r.IntN(4) == 0 {
				bld.Field(4).AppendNull()
			} else {
				bld.Field(4).(*array.StringBuilder).Append(fmt.Sprintf(`{"campaign":"c%d","value":%d}`, r.IntN(50), r.IntN(1000)))
			}
			ts := start.Add(time.Duration(i) * 37 * time.Second)
			bld.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
			bld.Field(6).(*array.Date32Builder).Append(arrow.Date32FromTime(ts))
			bld.Field(7).(*array.Int64Builder).Append(int64(r.IntN(100)))
			bld.Field(8).(*array.Float64Builder).Append(r.Float64())
			if r.IntN(10) == 0 {
				bld.Field(9).(*array.Decimal128Builder).Append(decimal128.FromBigInt(new(big.Int).Mul(big.NewInt(r.Int64N(1e6)), big.NewInt(1e7))))
			} else {
				bld.Field(9).AppendNull()
			}
			bld.Field(10).(*array.BooleanBuilder).Append(r.IntN(20) == 0)
		}
		rec := bld.NewRecordBatch()
		bld.Release()
		b.Cleanup(rec.Release)
		batches = append(batches, rec)
	}
	return schema, batches
}

// nestedEventBatches builds event-like rows with a RECORD, a REPEATED
// STRING and a REPEATED RECORD (attribution touchpoints), the nested shapes
// of the exported tables.
func nestedEventBatches(b *testing.B, rows, batchRows int) (*arrow.Schema, []arrow.RecordBatch) {
	b.Helper()
	touchpoint := arrow.StructOf(
		arrow.Field{Name: "channel", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		arrow.Field{Name: "weight", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "properties", Type: arrow.StructOf(
			arrow.Field{Name: "utm_source", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "page", Type: arrow.StructOf(
				arrow.Field{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
				arrow.Field{Name: "title", Type: arrow.BinaryTypes.String, Nullable: true},
			), Nullable: true},
		), Nullable: true},
		{Name: "tags", Type: arrow.ListOfField(arrow.Field{Name: "item", Type: arrow.BinaryTypes.String})},
		{Name: "touchpoints", Type: arrow.ListOfField(arrow.Field{Name: "item", Type: touchpoint})},
	}, nil)
	r := rand.New(rand.NewPCG(3, 4))
	channels := []string{"paid_search", "organic", "email", "direct", "social"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var batches []arrow.RecordBatch
	for done := 0; done < rows; done += batchRows {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := done; i < min(done+batchRows, rows); i++ {
			bld.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%016x-%08x", r.Uint64(), i))
			pb := bld.Field(1).(*array.StructBuilder)
			pb.Append(true)
			pb.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("s%d", r.IntN(20)))
			page := pb.FieldBuilder(1).(*array.StructBuilder)
			page.Append(true)
			page.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("https://example.com/p/%d", r.IntN(500)))
			page.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("Page %d", r.IntN(500)))
			tb := bld.Field(2).(*array.ListBuilder)
			tb.Append(true)
			for range r.IntN(4) {
				tb.ValueBuilder().(*array.StringBuilder).Append(channels[r.IntN(len(channels))])
			}
			lb := bld.Field(3).(*array.ListBuilder)
			lb.Append(true)
			sb := lb.ValueBuilder().(*array.StructBuilder)
			for k := range r.IntN(6) {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.StringBuilder).Append(channels[r.IntN(len(channels))])
				sb.FieldBuilder(1).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Duration(i*60+k) * time.Second).UnixMicro()))
				sb.FieldBuilder(2).(*array.Float64Builder).Append(r.Float64())
			}
		}
		rec := bld.NewRecordBatch()
		bld.Release()
		b.Cleanup(rec.Release)
		batches = append(batches, rec)
	}
	return schema, batches
}

// countBytes is an io.Writer that only counts.
type countBytes int64

func (c *countBytes) Write(p []byte) (int, error) { *c += countBytes(len(p)); return len(p), nil }

// BenchmarkWriter compares this package with arrow-go's own parquet writer on
// the same batches, both with GZIP: rows/s and output bytes per file.
func BenchmarkWriter(b *testing.B) {
	const rows, batchRows = 200_000, 16_384
	schema, batches := eventBatches(b, rows, batchRows)
	benchmarkWriters(b, schema, batches, rows)
}

// BenchmarkWriterNested is BenchmarkWriter on rows with RECORD and REPEATED
// columns.
func BenchmarkWriterNested(b *testing.B) {
	const rows, batchRows = 100_000, 16_384
	schema, batches := nestedEventBatches(b, rows, batchRows)
	benchmarkWriters(b, schema, batches, rows)
}

func benchmarkWriters(b *testing.B, schema *arrow.Schema, batches []arrow.RecordBatch, rows int) {
	b.Run("parquetenc", func(b *testing.B) {
		var size countBytes
		for range b.N {
			size = 0
			w, err := NewWriter(&size, schema, Options{})
			if err != nil {
				b.Fatal(err)
			}
			for _, rec := range batches {
				for from := int64(0); from < rec.NumRows(); {
					n, _, err := w.Append(rec, from)
					if err != nil {
						b.Fatal(err)
					}
					from += n
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, rows, int64(size))
	})

	b.Run("pqarrow", func(b *testing.B) {
		var size countBytes
		for range b.N {
			size = 0
			props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Gzip))
			w, err := pqarrow.NewFileWriter(schema, io.Writer(&size), props, pqarrow.DefaultWriterProps())
			if err != nil {
				b.Fatal(err)
			}
			for _, rec := range batches {
				if err := w.WriteBuffered(rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, rows, int64(size))
	})
}

func report(b *testing.B, rows int, size int64) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(size), "file-bytes")
}

package parquetenc

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fuzzSchema covers the value encodings with the most room for error:
// variable-length bytes (plain and dictionary), decimals, floats, NULLs, and
// the levels of NULL and empty lists and RECORDs, two lists deep.
var fuzzSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "b", Type: arrow.BinaryTypes.Binary, Nullable: false},
	{Name: "d", Type: &arrow.Decimal128Type{Precision: 38, Scale: 9}, Nullable: true},
	{Name: "l", Type: arrow.ListOfField(arrow.Field{Name: "item", Type: arrow.PrimitiveTypes.Int64, Nullable: true}), Nullable: true},
	{Name: "r", Type: arrow.ListOf(arrow.StructOf(
		arrow.Field{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "t", Type: arrow.ListOfField(arrow.Field{Name: "item", Type: arrow.BinaryTypes.String})},
	)), Nullable: false},
}, nil)

// fuzzBytes reads the fuzzer's input as a stream, yielding zeros once it
// runs out.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) next(n int) []byte {
	out := make([]byte, n)
	k := copy(out, f.b)
	f.b = f.b[k:]
	return out
}

func (f *fuzzBytes) u8() byte    { return f.next(1)[0] }
func (f *fuzzBytes) u64() uint64 { return binary.LittleEndian.Uint64(f.next(8)) }

// fuzzRecord builds a record from the input; expected values are canonical.
func fuzzRecord(data []byte) (arrow.RecordBatch, [][]any) {
	in := &fuzzBytes{b: data}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, fuzzSchema)
	defer bld.Release()
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)
	var expected [][]any
	for len(in.b) > 0 {
		nulls := in.u8()
		row := make([]any, fuzzSchema.NumFields())
		if nulls&1 != 0 {
			bld.Field(0).AppendNull()
		} else {
			v := int64(in.u64())
			bld.Field(0).(*array.Int64Builder).Append(v)
			row[0] = v
		}
		if nulls&2 != 0 {
			bld.Field(1).AppendNull()
		} else {
			v := math.Float64frombits(in.u64())
			bld.Field(1).(*array.Float64Builder).Append(v)
			row[1] = v
		}
		// Short strings from a small alphabet repeat (dictionary pages);
		// longer ones are mostly unique.
		s := string(in.next(int(in.u8() % 24)))
		if nulls&4 != 0 {
			bld.Field(2).AppendNull()
		} else {
			bld.Field(2).(*array.StringBuilder).Append(s)
			row[2] = s
		}
		b := in.next(int(in.u8() % 8))
		bld.Field(3).(*array.BinaryBuilder).Append(b)
		row[3] = string(b)
		if nulls&8 != 0 {
			bld.Field(4).AppendNull()
		} else {
			n := decimal128.New(int64(in.u64()), in.u64())
			v := n.BigInt()
			if !n.FitsInPrecision(38) {
				v.Rem(v, limit)
			}
			bld.Field(4).(*array.Decimal128Builder).Append(decimal128.FromBigInt(v))
			row[4] = v.String()
		}
		row[5] = fuzzList(in, bld.Field(5).(*array.ListBuilder), nulls&16 != 0)
		row[6] = fuzzRecords(in, bld.Field(6).(*array.ListBuilder))
		expected = append(expected, row)
	}
	return bld.NewRecordBatch(), expected
}

// FuzzRoundTrip writes fuzzed values with tiny pages and row groups, reads
// them back with arrow-go, and checks that splitting the rows into two
// batches gives the same bytes.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 'a', 'b', 'c', 2, 0xff, 0})
	f.Add(bytes.Repeat([]byte{0x0f, 3, 'x'}, 200))
	f.Add(bytes.Repeat([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, expected := fuzzRecord(data)
		defer rec.Release()
		opts := Options{RowGroupBytes: 700, PageBytes: 90}
		whole := encode(t, fuzzSchema, opts, rec)
		_, got := readArrow(t, whole)
		compareRows(t, "arrow-go", fieldNames(fuzzSchema), got, expected)

		cut := int64(len(data)) % (rec.NumRows() + 1)
		a, b := rec.NewSlice(0, cut), rec.NewSlice(cut, rec.NumRows())
		defer a.Release()
		defer b.Release()
		if split := encode(t, fuzzSchema, opts, a, b); !bytes.Equal(whole, split) {
			t.Fatalf("split at row %d of %d changes the file", cut, rec.NumRows())
		}
	})
}

// fuzzList appends a NULL, empty or short list<int64> with NULL elements.
func fuzzList(in *fuzzBytes, b *array.ListBuilder, null bool) any {
	if null {
		b.AppendNull()
		return nil
	}
	b.Append(true)
	vb := b.ValueBuilder().(*array.Int64Builder)
	l := []any{}
	for range in.u8() % 4 {
		if in.u8()&1 != 0 {
			vb.AppendNull()
			l = append(l, nil)
			continue
		}
		v := int64(in.u64())
		vb.Append(v)
		l = append(l, v)
	}
	return l
}

// fuzzRecords appends a short list of RECORDs (some NULL) holding a
// string and a list of strings.
func fuzzRecords(in *fuzzBytes, b *array.ListBuilder) any {
	b.Append(true)
	sb := b.ValueBuilder().(*array.StructBuilder)
	l := []any{}
	for range in.u8() % 3 {
		flags := in.u8()
		if flags&1 != 0 {
			sb.AppendNull()
			l = append(l, nil)
			continue
		}
		sb.Append(true)
		rec := map[string]any{}
		if flags&2 != 0 {
			sb.FieldBuilder(0).AppendNull()
			rec["s"] = nil
		} else {
			s := string(in.next(int(in.u8() % 6)))
			sb.FieldBuilder(0).(*array.StringBuilder).Append(s)
			rec["s"] = s
		}
		tb := sb.FieldBuilder(1).(*array.ListBuilder)
		tb.Append(true)
		tags := []any{}
		for range flags >> 6 {
			s := string(in.next(int(in.u8() % 4)))
			tb.ValueBuilder().(*array.StringBuilder).Append(s)
			tags = append(tags, s)
		}
		rec["t"] = tags
		l = append(l, rec)
	}
	return l
}

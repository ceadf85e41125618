package bqsource

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bigQueryFraming serializes a schema and batches the way the Storage Read API does: one IPC
// schema message in the session, one IPC record batch message per ReadRows response.
func bigQueryFraming(t *testing.T, schema *arrow.Schema, recs ...arrow.RecordBatch) (schemaMsg []byte, batches [][]byte) {
	t.Helper()
	var empty bytes.Buffer
	w := ipc.NewWriter(&empty, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	schemaMsg = empty.Bytes()[:empty.Len()-8] // drop the end-of-stream marker
	for _, r := range recs {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if !bytes.HasPrefix(b, schemaMsg) {
			t.Fatal("stream does not start with the schema message")
		}
		batches = append(batches, b[len(schemaMsg):len(b)-8])
	}
	return schemaMsg, batches
}

func TestDecoderReadsBigQueryFraming(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	mk := func(from int64, n int) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for i := 0; i < n; i++ {
			b.Field(0).(*array.Int64Builder).Append(from + int64(i))
			if i%3 == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.StringBuilder).Append("zoë")
			}
		}
		return b.NewRecordBatch()
	}
	r1, r2 := mk(0, 5), mk(5, 3)
	defer r1.Release()
	defer r2.Release()
	schemaMsg, batches := bigQueryFraming(t, schema, r1, r2)

	s := &Session{ArrowSchema: schemaMsg}
	got, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(schema) {
		t.Fatalf("schema %v", got)
	}
	dec := decoder{schema: schemaMsg, mem: memory.DefaultAllocator}
	var ids []int64
	for _, b := range batches {
		err := dec.each(b, func(r arrow.RecordBatch) error {
			ids = append(ids, r.Column(0).(*array.Int64).Int64Values()...)
			if !r.Column(1).IsNull(0) {
				t.Error("row 0 of each batch is NULL")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 8 || ids[0] != 0 || ids[7] != 7 {
		t.Errorf("ids %v", ids)
	}
	if err := dec.each([]byte{1, 2, 3}, func(arrow.RecordBatch) error { return nil }); err == nil {
		t.Error("garbage must be an error")
	}
}

func TestTableRef(t *testing.T) {
	r := TableRef{Project: "p", Dataset: "d", Table: "t"}
	if r.path() != "projects/p/datasets/d/tables/t" || r.String() != "p.d.t" {
		t.Errorf("%s %s", r.path(), r)
	}
}

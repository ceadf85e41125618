package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// messages splits b into its encapsulated IPC messages and returns their types.
func messages(t *testing.T, b []byte) []ipc.MessageType {
	t.Helper()
	mr := ipc.NewMessageReader(bytes.NewReader(b))
	defer mr.Release()
	var types []ipc.MessageType
	for {
		msg, err := mr.Message()
		if errors.Is(err, io.EOF) {
			return types
		}
		if err != nil {
			t.Fatalf("read IPC message: %v", err)
		}
		types = append(types, msg.Type())
	}
}

func testRecord(t *testing.T) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.BinaryTypes.Binary, Nullable: true},
	}, nil)
	bld := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer bld.Release()
	for i := 0; i < 10; i++ {
		bld.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%3 == 0 {
			bld.Field(1).AppendNull()
			bld.Field(2).AppendNull()
			continue
		}
		bld.Field(1).(*array.StringBuilder).Append("héllo-" + string(rune('a'+i)))
		bld.Field(2).(*array.BinaryBuilder).Append([]byte(base64.StdEncoding.EncodeToString([]byte{byte(i), 0, 0xff})))
	}
	return bld.NewRecordBatch()
}

// TestFramingHelpers checks the byte arithmetic the proxy relies on: an empty
// IPC stream is the Schema message + EOS, a one-batch stream is Schema message
// + RecordBatch message + EOS, and Schema message + RecordBatch message (the
// BigQuery framing) decodes back to the batch.
func TestFramingHelpers(t *testing.T) {
	rec := testRecord(t)
	defer rec.Release()

	schemaMsg, err := schemaMessage(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(t, schemaMsg); len(got) != 1 || got[0] != ipc.MessageSchema {
		t.Fatalf("schema bytes hold messages %v, want exactly one Schema", got)
	}

	// Slices (non-zero offsets) are what the proxy writes.
	for _, r := range [][2]int64{{0, 10}, {3, 7}, {9, 10}} {
		slice := rec.NewSlice(r[0], r[1])
		batchMsg, err := recordBatchMessage(slice, schemaMsg)
		if err != nil {
			t.Fatal(err)
		}
		if got := messages(t, batchMsg); len(got) != 1 || got[0] != ipc.MessageRecordBatch {
			t.Fatalf("batch bytes hold messages %v, want exactly one RecordBatch", got)
		}

		// Independent check of the split: a full stream written by arrow-go.
		var full bytes.Buffer
		w := ipc.NewWriter(&full, ipc.WithSchema(rec.Schema()))
		if err := w.Write(slice); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte{}, schemaMsg...), batchMsg...), ipcEOS...)
		if !bytes.Equal(full.Bytes(), want) {
			t.Fatalf("stream != schema message + batch message + EOS")
		}

		rdr, err := ipc.NewReader(io.MultiReader(bytes.NewReader(schemaMsg), bytes.NewReader(batchMsg)))
		if err != nil {
			t.Fatal(err)
		}
		if !rdr.Next() {
			t.Fatalf("no batch: %v", rdr.Err())
		}
		if !array.RecordEqual(rdr.RecordBatch(), slice) {
			t.Fatalf("decoded batch differs:\n%v\nwant\n%v", rdr.RecordBatch(), slice)
		}
		if rdr.Next() || rdr.Err() != nil {
			t.Fatalf("more than one batch or error: %v", rdr.Err())
		}
		rdr.Release()
		slice.Release()
	}
}

func TestFixBinaryColumns(t *testing.T) {
	rec := testRecord(t)
	defer rec.Release()
	fixed, err := fixBinaryColumns(rec, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer fixed.Release()
	bin := fixed.Column(2).(*array.Binary)
	for i := 0; i < 10; i++ {
		if i%3 == 0 {
			if !bin.IsNull(i) {
				t.Fatalf("row %d: want NULL", i)
			}
			continue
		}
		if got, want := bin.Value(i), []byte{byte(i), 0, 0xff}; !bytes.Equal(got, want) {
			t.Fatalf("row %d: got %x want %x", i, got, want)
		}
	}
	if !array.Equal(fixed.Column(1), rec.Column(1)) || !array.Equal(fixed.Column(0), rec.Column(0)) {
		t.Fatal("non-binary columns changed")
	}
}

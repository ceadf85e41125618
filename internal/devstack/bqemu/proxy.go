package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// readProxy serves the BigQuery Storage Read API in front of the emulator's
// own gRPC server and converts the emulator's Arrow framing to BigQuery's:
//
//   - Real BigQuery: ReadSession.arrow_schema.serialized_schema is exactly one
//     encapsulated Arrow IPC message (the Schema message), and every
//     ReadRowsResponse.arrow_record_batch.serialized_record_batch is exactly
//     one encapsulated RecordBatch message (no schema, no end-of-stream
//     marker). Clients read a batch as schema bytes + batch bytes.
//   - The emulator (v0.8.1) puts a whole IPC stream (schema + batch + EOS) in
//     both places, sends the whole table as one response, supports one stream
//     per session and ignores ReadRowsRequest.offset.
//
// The proxy forces one stream per session, rewrites the session schema to the
// Schema message alone, and re-emits the rows in responses of at most
// batchRows rows, each holding one RecordBatch message, honouring the
// request offset. SplitReadStream is answered Unimplemented (embedded
// UnimplementedBigQueryReadServer).
type readProxy struct {
	storagepb.UnimplementedBigQueryReadServer

	upstream  storagepb.BigQueryReadClient
	batchRows int64
	log       *slog.Logger
}

func (p *readProxy) CreateReadSession(ctx context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	up := proto.Clone(req).(*storagepb.CreateReadSessionRequest)
	// The emulator errors on MaxStreamCount > 1; it always returns one
	// stream, which is also a valid answer from BigQuery to any request.
	up.MaxStreamCount = 1
	up.PreferredMinStreamCount = 0
	sess, err := p.upstream.CreateReadSession(ctx, up)
	if err != nil {
		p.log.Warn("CreateReadSession", "table", req.GetReadSession().GetTable(), "err", err)
		return nil, err
	}
	if as := sess.GetArrowSchema(); as != nil {
		schema, err := streamSchema(as.GetSerializedSchema())
		if err != nil {
			return nil, status.Errorf(codes.Internal, "bqemu proxy: decode emulator session schema: %v", err)
		}
		msg, err := schemaMessage(schema)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "bqemu proxy: encode session schema: %v", err)
		}
		as.SerializedSchema = msg
	}
	p.log.Debug("CreateReadSession", "table", sess.GetTable(), "session", sess.GetName(), "streams", len(sess.GetStreams()))
	return sess, nil
}

func (p *readProxy) ReadRows(req *storagepb.ReadRowsRequest, stream storagepb.BigQueryRead_ReadRowsServer) error {
	if req.GetOffset() < 0 {
		return status.Errorf(codes.InvalidArgument, "offset must not be negative, got %d", req.GetOffset())
	}
	up, err := p.upstream.ReadRows(stream.Context(), &storagepb.ReadRowsRequest{ReadStream: req.GetReadStream()})
	if err != nil {
		return err
	}
	r := &reframer{batchRows: p.batchRows, skip: req.GetOffset(), send: stream.Send}
	for {
		resp, err := up.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.log.Warn("ReadRows from emulator", "stream", req.GetReadStream(), "err", err)
			return err
		}
		switch rows := resp.GetRows().(type) {
		case *storagepb.ReadRowsResponse_ArrowRecordBatch:
			if err := r.reframe(rows.ArrowRecordBatch.GetSerializedRecordBatch()); err != nil {
				p.log.Warn("ReadRows reframe", "stream", req.GetReadStream(), "err", err)
				return err
			}
		default:
			// Not Arrow (Avro): passed through untouched, without offset support.
			if r.skip > 0 {
				return status.Error(codes.Unimplemented, "bqemu proxy: offset is only supported for ARROW reads")
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
	if r.skip > 0 {
		return status.Errorf(codes.OutOfRange, "offset %d is beyond the end of the stream (%d rows)",
			req.GetOffset(), req.GetOffset()-r.skip)
	}
	p.log.Debug("ReadRows", "stream", req.GetReadStream(), "offset", req.GetOffset(), "sent_rows", r.sent, "responses", r.responses)
	return nil
}

// reframer turns emulator IPC streams into BigQuery-framed responses.
type reframer struct {
	batchRows int64
	skip      int64 // rows still to skip (request offset)
	send      func(*storagepb.ReadRowsResponse) error

	sent, responses int64
}

func (r *reframer) reframe(ipcStream []byte) error {
	mem := memory.NewGoAllocator()
	rdr, err := ipc.NewReader(bytes.NewReader(ipcStream), ipc.WithAllocator(mem))
	if err != nil {
		return status.Errorf(codes.Internal, "bqemu proxy: decode emulator record batch stream: %v", err)
	}
	defer rdr.Release()
	schemaMsg, err := schemaMessage(rdr.Schema())
	if err != nil {
		return status.Errorf(codes.Internal, "bqemu proxy: %v", err)
	}
	for rdr.Next() {
		rec, err := fixBinaryColumns(rdr.RecordBatch(), mem)
		if err != nil {
			return status.Errorf(codes.Internal, "bqemu proxy: %v", err)
		}
		err = r.emit(rec, schemaMsg)
		rec.Release()
		if err != nil {
			return err
		}
	}
	if err := rdr.Err(); err != nil {
		return status.Errorf(codes.Internal, "bqemu proxy: decode emulator record batch stream: %v", err)
	}
	return nil
}

func (r *reframer) emit(rec arrow.RecordBatch, schemaMsg []byte) error {
	n := rec.NumRows()
	start := min(r.skip, n)
	r.skip -= start
	for off := start; off < n; off += r.batchRows {
		end := min(off+r.batchRows, n)
		slice := rec.NewSlice(off, end)
		msg, err := recordBatchMessage(slice, schemaMsg)
		slice.Release()
		if err != nil {
			return status.Errorf(codes.Internal, "bqemu proxy: %v", err)
		}
		rows := end - off
		if err := r.send(&storagepb.ReadRowsResponse{
			Rows: &storagepb.ReadRowsResponse_ArrowRecordBatch{
				ArrowRecordBatch: &storagepb.ArrowRecordBatch{SerializedRecordBatch: msg, RowCount: rows},
			},
			RowCount: rows,
		}); err != nil {
			return err
		}
		r.sent += rows
		r.responses++
	}
	return nil
}

// ipcEOS is the IPC stream end-of-stream marker: continuation token 0xFFFFFFFF
// followed by a zero message length.
var ipcEOS = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// streamSchema reads the schema at the head of an IPC stream.
func streamSchema(ipcStream []byte) (*arrow.Schema, error) {
	rdr, err := ipc.NewReader(bytes.NewReader(ipcStream))
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	return rdr.Schema(), nil
}

// schemaMessage returns the encapsulated IPC Schema message of schema: an
// empty IPC stream is exactly that message followed by the EOS marker.
func schemaMessage(schema *arrow.Schema) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write schema: %w", err)
	}
	b := buf.Bytes()
	if len(b) <= len(ipcEOS) || !bytes.HasSuffix(b, ipcEOS) {
		return nil, fmt.Errorf("empty IPC stream of %d bytes does not end with the EOS marker", len(b))
	}
	return b[:len(b)-len(ipcEOS)], nil
}

// recordBatchMessage returns the encapsulated IPC RecordBatch message of rec:
// a one-batch IPC stream is the Schema message (schemaMsg, from
// schemaMessage(rec.Schema())), the RecordBatch message and the EOS marker.
func recordBatchMessage(rec arrow.RecordBatch, schemaMsg []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("write record batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write record batch: %w", err)
	}
	b := buf.Bytes()
	if len(b) <= len(schemaMsg)+len(ipcEOS) || !bytes.HasPrefix(b, schemaMsg) || !bytes.HasSuffix(b, ipcEOS) {
		return nil, fmt.Errorf("IPC stream of %d bytes is not schema message (%d bytes) + batch + EOS", len(b), len(schemaMsg))
	}
	return b[len(schemaMsg) : len(b)-len(ipcEOS)], nil
}

// fixBinaryColumns undoes the extra base64 layer that the emulator's Storage
// Read path puts on BYTES.
//
// Verified against the emulator v0.8.1 (see bqemu_test.go): its query engine
// renders a BYTES cell as base64 text and its Arrow writer appends that text
// to the binary column as is, so every Arrow BYTES value is the base64 text
// of the stored bytes, where BigQuery sends the bytes themselves. Decoding one
// standard-base64 layer of every top-level binary column gives clients the
// stored bytes exactly (e.g. rows written by DML with FROM_HEX). The same
// holds for BYTES fields of RECORD columns, which are fixed too.
//
// A second, separate emulator bug is NOT undone here: its insertAll (the
// Inserter, tabledata.insertAll) does not decode the base64 JSON text of a
// BYTES value and stores that text itself as the bytes (the emulator's own
// LENGTH() and TO_HEX() see the text). Such rows therefore read back, through
// this proxy as through REST, as the base64 text of what the client inserted:
// it is what the emulator holds. Reads of BYTES that must equal raw bytes need
// the data written by DML (FROM_HEX / FROM_BASE64) instead of insertAll.
//
// Columns without binary data are shared with rec unchanged. The result must
// be released by the caller.
func fixBinaryColumns(rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, col := range rec.Columns() {
		fixed, err := fixBinary(col, mem)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
		cols = append(cols, fixed)
	}
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()), nil
}

// fixBinary returns arr with one base64 layer decoded from its binary values,
// also inside structs (the emulator has no REPEATED support, so lists are
// left alone). The result is retained: the caller releases it.
func fixBinary(arr arrow.Array, mem memory.Allocator) (arrow.Array, error) {
	if !hasBinary(arr.DataType()) {
		arr.Retain()
		return arr, nil
	}
	switch a := arr.(type) {
	case *array.Binary:
		return decodeBase64Binary(a, mem)
	case *array.Struct:
		if a.Data().Offset() != 0 {
			return nil, errors.New("struct array with an offset") // never from a decoded IPC batch
		}
		children := make([]arrow.ArrayData, a.NumField())
		for i := range children {
			c, err := fixBinary(a.Field(i), mem)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", a.DataType().(*arrow.StructType).Field(i).Name, err)
			}
			defer c.Release()
			children[i] = c.Data()
		}
		data := array.NewData(a.DataType(), a.Len(), a.Data().Buffers(), children, a.NullN(), 0)
		defer data.Release()
		return array.MakeFromData(data), nil
	}
	arr.Retain()
	return arr, nil
}

// hasBinary reports whether dt is binary or a struct holding binary.
func hasBinary(dt arrow.DataType) bool {
	switch t := dt.(type) {
	case *arrow.BinaryType:
		return true
	case *arrow.StructType:
		for _, f := range t.Fields() {
			if hasBinary(f.Type) {
				return true
			}
		}
	}
	return false
}

func decodeBase64Binary(arr *array.Binary, mem memory.Allocator) (arrow.Array, error) {
	b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	b.Reserve(arr.Len())
	var dst []byte
	for i := 0; i < arr.Len(); i++ {
		if arr.IsNull(i) {
			b.AppendNull()
			continue
		}
		v := arr.Value(i)
		if n := base64.StdEncoding.DecodedLen(len(v)); cap(dst) < n {
			dst = make([]byte, n)
		}
		n, err := base64.StdEncoding.Decode(dst[:cap(dst)], v)
		if err != nil {
			return nil, fmt.Errorf("row %d: value is not base64 (the emulator's extra layer): %w", i, err)
		}
		b.Append(dst[:n]) // Append copies
	}
	return b.NewArray(), nil
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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
// The proxy asks the emulator for one stream per session, rewrites the session
// schema to the Schema message alone, and re-emits the rows in responses of at
// most batchRows rows, each holding one RecordBatch message, honouring the
// request offset. SplitReadStream is answered Unimplemented (embedded
// UnimplementedBigQueryReadServer).
//
// Streams: like BigQuery, a session has up to the requested max_stream_count
// streams, capped by maxStreams (1 by default, the emulator's own behaviour).
// With k > 1 streams the table's rows are dealt to the streams in chunks of
// chunkRows rows, round robin (chunk c goes to stream c mod k): every stream is a
// disjoint subset, their union is the table, and ReadRowsRequest.offset counts
// rows within the stream.
//
// Snapshots: with snapshotSessions, a session reads the table once when created
// and every stream serves that copy (see tableSnapshot).
//
// Expiry: sessions expire at the emulator's ExpireTime, or sessionTTL after
// creation when set; ReadRows on a stream of an expired session answers
// FAILED_PRECONDITION "session expired at ...", as BigQuery does.
//
// Throttle: with rowsPerSec set, each ReadRows call delivers at most that many rows per
// second (see pacer), to stand in for tables that take long to read.
//
// Faults (see chaos.go): with a fault rate set, calls get UNAVAILABLE,
// RESOURCE_EXHAUSTED, a stream cut part way, or their session expired at once.
type readProxy struct {
	storagepb.UnimplementedBigQueryReadServer

	upstream  storagepb.BigQueryReadClient
	batchRows int64
	log       *slog.Logger

	maxStreams int           // 0 means 1
	chunkRows  int64         // 0 means defaultChunkRows
	sessionTTL time.Duration // 0 means the emulator's expire time
	rowsPerSec int64         // ReadRows pace per call (stream); 0 means unthrottled
	faults     *faults       // nil injects nothing
	snapshots  *snapshotCache
	now        func() time.Time

	mu      sync.Mutex
	streams map[string]*proxyStream
}

// defaultChunkRows is how many consecutive rows go to one stream of a multi-stream session.
const defaultChunkRows = 100

// proxySession is one read session the proxy handed out.
type proxySession struct {
	name   string
	expire time.Time // guarded by readProxy.mu
	// snapshot, with snapshot sessions on, is what every stream of the session reads;
	// guarded by readProxy.mu (nil once the cache pushed it out: the session has expired).
	snapshot *tableSnapshot
}

// proxyStream is one stream of a session: the emulator stream it reads, and which share of
// the rows it serves.
type proxyStream struct {
	upstream     string
	index, count int
	session      *proxySession
}

func (p *readProxy) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *readProxy) CreateReadSession(ctx context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	if d := p.faults.pick(FaultUnavailable, FaultExhausted); d.kind != "" {
		p.log.Info("chaos: CreateReadSession fault", "table", req.GetReadSession().GetTable(), "fault", d.kind)
		return nil, faultError(d.kind, req.GetReadSession().GetTable())
	}
	up := proto.Clone(req).(*storagepb.CreateReadSessionRequest)
	// The emulator errors on MaxStreamCount > 1; it always returns one
	// stream, which the proxy then splits.
	up.MaxStreamCount = 1
	up.PreferredMinStreamCount = 0
	up.ReadSession.ReadOptions = qualifiedReadOptions(req.GetReadSession())
	sess, err := p.upstream.CreateReadSession(ctx, up)
	if err != nil {
		p.log.Warn("CreateReadSession", "table", req.GetReadSession().GetTable(), "err", err)
		return nil, err
	}
	sess.ReadOptions = req.GetReadSession().GetReadOptions() // as the client asked, not the workaround
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
	if len(sess.GetStreams()) != 1 {
		return nil, status.Errorf(codes.Internal, "bqemu proxy: the emulator returned %d streams, want 1", len(sess.GetStreams()))
	}
	k := max(p.maxStreams, 1)
	if n := int(req.GetMaxStreamCount()); n > 0 && n < k {
		k = n
	}
	ps := &proxySession{name: sess.GetName()}
	if p.sessionTTL > 0 {
		ps.expire = p.clock().Add(p.sessionTTL)
		sess.ExpireTime = timestamppb.New(ps.expire)
	} else if sess.GetExpireTime() != nil {
		ps.expire = sess.GetExpireTime().AsTime()
	}
	upName := sess.GetStreams()[0].GetName()
	if p.snapshots != nil {
		if ps.snapshot, err = takeSnapshot(ctx, p.upstream, upName); err != nil {
			p.log.Warn("CreateReadSession snapshot", "table", req.GetReadSession().GetTable(), "err", err)
			return nil, err
		}
		// BigQuery estimates a session's size up front; with a snapshot the proxy knows it
		// exactly. The bytes are the snapshot's Arrow buffers, already summed for the cache
		// budget, so the estimate costs no extra encoding. Without a snapshot the emulator's
		// own estimates (0 in v0.8.1) pass through.
		sess.EstimatedRowCount = ps.snapshot.rows
		sess.EstimatedTotalBytesScanned = ps.snapshot.bytes
	}
	streams := make([]*storagepb.ReadStream, k)
	p.mu.Lock()
	if p.streams == nil {
		p.streams = map[string]*proxyStream{}
	}
	for i := range streams {
		name := upName
		if k > 1 {
			name = fmt.Sprintf("%s%02d", upName, i)
		}
		streams[i] = &storagepb.ReadStream{Name: name}
		p.streams[name] = &proxyStream{upstream: upName, index: i, count: k, session: ps}
	}
	if p.snapshots != nil {
		now := p.clock()
		for _, old := range p.snapshots.add(ps) {
			old.snapshot = nil
			if old.expire.IsZero() || old.expire.After(now) {
				old.expire = now
			}
		}
	}
	p.mu.Unlock()
	sess.Streams = streams
	p.log.Debug("CreateReadSession", "table", sess.GetTable(), "session", sess.GetName(), "streams", len(sess.GetStreams()))
	return sess, nil
}

// qualifiedReadOptions works around the emulator reading the wrong table when two datasets
// hold tables of the same name. Its ReadRows runs "SELECT <fields> FROM `<table>` WHERE
// <row_restriction>" with the bare table name, and its SQL catalog resolves a bare name to
// the first table ever created with that name, in whichever dataset. The row restriction is
// the one place the query can be extended: it becomes
//
//	<restriction> AND FALSE UNION ALL SELECT <fields> FROM `project.dataset.table` WHERE <restriction>
//
// so the bare-name half returns nothing and the qualified half returns the right table's
// rows, in the same order. The two halves must be union-compatible, which holds whenever the
// bare name resolves to the table itself (no clash) or to a table of the same columns; a clash
// with different columns fails the read instead of returning another table's rows.
func qualifiedReadOptions(rs *storagepb.ReadSession) *storagepb.ReadSession_TableReadOptions {
	opts := &storagepb.ReadSession_TableReadOptions{}
	if o := rs.GetReadOptions(); o != nil {
		opts = proto.Clone(o).(*storagepb.ReadSession_TableReadOptions)
	}
	parts := strings.Split(rs.GetTable(), "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "datasets" || parts[4] != "tables" {
		return opts // not a table path this workaround understands: left to the emulator
	}
	for _, id := range []string{parts[1], parts[3], parts[5]} {
		if strings.ContainsAny(id, "`\\") {
			return opts
		}
	}
	fields := "*"
	if sel := opts.GetSelectedFields(); len(sel) > 0 {
		quoted := make([]string, len(sel))
		for i, f := range sel {
			quoted[i] = "`" + f + "`"
		}
		fields = strings.Join(quoted, ",")
	}
	restriction := "TRUE"
	if r := opts.GetRowRestriction(); r != "" {
		restriction = "(" + r + ")"
	}
	opts.RowRestriction = fmt.Sprintf("%s AND FALSE UNION ALL SELECT %s FROM `%s.%s.%s` WHERE %s",
		restriction, fields, parts[1], parts[3], parts[5], restriction)
	return opts
}

// lookup returns the stream's share, its session's snapshot (if any) and whether its session
// has expired (and when).
func (p *readProxy) lookup(name string) (st *proxyStream, snap *tableSnapshot, expiredAt time.Time, expired bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st = p.streams[name]
	if st == nil {
		return nil, nil, time.Time{}, false
	}
	e := st.session.expire
	return st, st.session.snapshot, e, !e.IsZero() && !p.clock().Before(e)
}

// expireNow ends the stream's session at once.
func (p *readProxy) expireNow(st *proxyStream) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock()
	if st.session.expire.IsZero() || st.session.expire.After(now) {
		st.session.expire = now
	}
	return st.session.expire
}

func (p *readProxy) ReadRows(req *storagepb.ReadRowsRequest, stream storagepb.BigQueryRead_ReadRowsServer) error {
	if req.GetOffset() < 0 {
		return status.Errorf(codes.InvalidArgument, "offset must not be negative, got %d", req.GetOffset())
	}
	st, snap, expiredAt, expired := p.lookup(req.GetReadStream())
	if expired {
		return expiredError(req.GetReadStream(), expiredAt)
	}
	upStream, index, count := req.GetReadStream(), 0, 1
	if st != nil {
		upStream, index, count = st.upstream, st.index, st.count
	}
	d := p.faults.pick(FaultCut, FaultUnavailable, FaultExhausted, FaultExpire, FaultStall)
	switch d.kind {
	case FaultUnavailable, FaultExhausted:
		p.log.Info("chaos: ReadRows fault", "stream", req.GetReadStream(), "fault", d.kind)
		return faultError(d.kind, req.GetReadStream())
	case FaultExpire:
		if st != nil {
			at := p.expireNow(st)
			p.log.Info("chaos: read session expired", "session", st.session.name)
			return expiredError(req.GetReadStream(), at)
		}
	}
	chunk := p.chunkRows
	if chunk <= 0 {
		chunk = defaultChunkRows
	}
	send := stream.Send
	if p.rowsPerSec > 0 {
		pace := &pacer{ctx: stream.Context(), rate: p.rowsPerSec, start: time.Now()}
		send = func(resp *storagepb.ReadRowsResponse) error {
			if err := pace.wait(resp.GetRowCount()); err != nil {
				return err
			}
			return stream.Send(resp)
		}
	}
	r := &reframer{batchRows: p.batchRows, skip: req.GetOffset(), send: send,
		index: int64(index), count: int64(count), chunk: chunk}
	switch d.kind {
	case FaultCut:
		r.cutAfter = d.after
		r.onCut = func() error {
			p.faults.count(FaultCut)
			p.log.Info("chaos: ReadRows cut", "stream", req.GetReadStream(), "after_responses", d.after)
			return cutError(d.after)
		}
	case FaultStall:
		r.cutAfter = d.after
		r.onCut = func() error {
			p.faults.count(FaultStall)
			p.log.Info("chaos: ReadRows stalled", "stream", req.GetReadStream(), "after_responses", d.after)
			t := time.NewTimer(stallFor)
			defer t.Stop()
			select {
			case <-stream.Context().Done():
				return stream.Context().Err()
			case <-t.C:
				return cutError(d.after)
			}
		}
	}
	if snap != nil {
		for _, rec := range snap.records {
			if err := r.emitStream(rec, snap.schemaMsg); err != nil {
				return err
			}
		}
	} else if err := p.readUpstream(stream, upStream, r, count); err != nil {
		return err
	}
	if r.skip > 0 {
		return status.Errorf(codes.OutOfRange, "offset %d is beyond the end of the stream (%d rows)",
			req.GetOffset(), req.GetOffset()-r.skip)
	}
	p.log.Debug("ReadRows", "stream", req.GetReadStream(), "offset", req.GetOffset(), "sent_rows", r.sent, "responses", r.responses)
	return nil
}

// readUpstream reads the emulator's stream as it is now and re-emits this stream's rows.
func (p *readProxy) readUpstream(stream storagepb.BigQueryRead_ReadRowsServer, upStream string, r *reframer, count int) error {
	up, err := p.upstream.ReadRows(stream.Context(), &storagepb.ReadRowsRequest{ReadStream: upStream})
	if err != nil {
		return err
	}
	for {
		resp, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			p.log.Warn("ReadRows from emulator", "stream", upStream, "err", err)
			return err
		}
		switch rows := resp.GetRows().(type) {
		case *storagepb.ReadRowsResponse_ArrowRecordBatch:
			if err := r.reframe(rows.ArrowRecordBatch.GetSerializedRecordBatch()); err != nil {
				if status.Code(err) != codes.Unavailable {
					p.log.Warn("ReadRows reframe", "stream", upStream, "err", err)
				}
				return err
			}
		default:
			// Not Arrow (Avro): passed through untouched, without offset or stream support.
			if r.skip > 0 || count > 1 {
				return status.Error(codes.Unimplemented, "bqemu proxy: offsets and several streams are only supported for ARROW reads")
			}
			if err := r.send(resp); err != nil {
				return err
			}
		}
	}
}

// pacer holds one ReadRows call to rate rows per second: the response that brings the call's
// rows to n waits until n/rate seconds after the call began. Pacing per call (per stream)
// makes a session of k streams read in parallel k times as fast, as with BigQuery.
type pacer struct {
	ctx   context.Context
	rate  int64
	start time.Time
	rows  int64
}

// wait blocks until n more rows are within the rate, or the call is cancelled.
func (p *pacer) wait(n int64) error {
	p.rows += n
	due := time.Duration(p.rows/p.rate)*time.Second + time.Duration(p.rows%p.rate)*time.Second/time.Duration(p.rate)
	d := time.Until(p.start.Add(due))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		return status.FromContextError(p.ctx.Err()).Err()
	case <-t.C:
		return nil
	}
}

// reframer turns emulator IPC streams into BigQuery-framed responses of one stream.
type reframer struct {
	batchRows int64
	skip      int64 // rows of this stream still to skip (request offset)
	send      func(*storagepb.ReadRowsResponse) error
	// The stream serves chunk index, index+count, ... of the table's chunk-row chunks.
	index, count, chunk int64
	// cutAfter > 0 calls onCut after that many responses and ends the stream with its error.
	cutAfter int64
	onCut    func() error

	pos             int64 // the table's row number of the next emulator row
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
		err = r.emitStream(rec, schemaMsg)
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

// emitStream sends the rows of rec that belong to this stream, in order.
func (r *reframer) emitStream(rec arrow.RecordBatch, schemaMsg []byte) error {
	n := rec.NumRows()
	base := r.pos
	r.pos += n
	if r.count <= 1 {
		return r.emit(rec, 0, n, schemaMsg)
	}
	for from := int64(0); from < n; {
		c := (base + from) / r.chunk
		end := min(n, (c+1)*r.chunk-base)
		if c%r.count == r.index {
			if err := r.emit(rec, from, end, schemaMsg); err != nil {
				return err
			}
		}
		from = end
	}
	return nil
}

// emit sends rows [from, end) of rec, after the rows still to skip, in responses of at most
// batchRows rows.
func (r *reframer) emit(rec arrow.RecordBatch, from, end int64, schemaMsg []byte) error {
	skipped := min(r.skip, end-from)
	r.skip -= skipped
	for off := from + skipped; off < end; off += r.batchRows {
		stop := min(off+r.batchRows, end)
		slice := rec.NewSlice(off, stop)
		msg, err := recordBatchMessage(slice, schemaMsg)
		slice.Release()
		if err != nil {
			return status.Errorf(codes.Internal, "bqemu proxy: %v", err)
		}
		rows := stop - off
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
		if r.cutAfter > 0 && r.responses >= r.cutAfter && r.onCut != nil {
			return r.onCut()
		}
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

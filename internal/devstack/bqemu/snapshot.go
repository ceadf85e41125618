package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// defaultSnapshotBytes bounds the rows snapshot sessions keep in memory.
const defaultSnapshotBytes = 256 << 20

// tableSnapshot is a table's rows as they were when a read session was created. BigQuery
// reads a session at one snapshot, whatever the table's writers do meanwhile; the emulator
// has no snapshots (each ReadRows queries the table as it is), so with --snapshot-sessions
// the proxy reads the table once, at CreateReadSession, and serves every stream of the session
// from that copy. A fault campaign can then change a table while a dump reads it, as
// production does, and know which rows each session must deliver.
//
// The records are allocated by memory.GoAllocator, so they are never Released: a snapshot is
// freed by the garbage collector once neither the cache nor a reader holds it.
type tableSnapshot struct {
	schemaMsg []byte
	records   []arrow.RecordBatch
	rows      int64
	// bytes is the size of the records' Arrow buffers (recordBytes): the bodies of the
	// record batches the streams send, less IPC metadata and padding.
	bytes int64
}

// snapshotCache keeps the snapshots of the newest sessions within a byte budget. A session
// pushed out of it has expired: its streams answer "session expired", as BigQuery's do after
// six hours, and the client opens a new session.
type snapshotCache struct {
	limit int64

	mu       sync.Mutex
	used     int64
	sessions []*proxySession // oldest first
}

// add keeps s's snapshot and returns the sessions pushed out to make room.
func (c *snapshotCache) add(s *proxySession) []*proxySession {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions = append(c.sessions, s)
	c.used += s.snapshot.bytes
	var evicted []*proxySession
	for c.used > c.limit && len(c.sessions) > 1 {
		old := c.sessions[0]
		c.sessions = c.sessions[1:]
		c.used -= old.snapshot.bytes
		evicted = append(evicted, old)
	}
	return evicted
}

// takeSnapshot reads the emulator stream of a new session whole.
func takeSnapshot(ctx context.Context, upstream storagepb.BigQueryReadClient, stream string) (*tableSnapshot, error) {
	rs, err := upstream.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream})
	if err != nil {
		return nil, err
	}
	mem := memory.NewGoAllocator()
	snap := &tableSnapshot{}
	for {
		resp, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return snap, nil
		}
		if err != nil {
			return nil, err
		}
		batch := resp.GetArrowRecordBatch()
		if batch == nil {
			return nil, status.Error(codes.Unimplemented, "bqemu proxy: snapshot sessions need the ARROW format")
		}
		rdr, err := ipc.NewReader(bytes.NewReader(batch.GetSerializedRecordBatch()), ipc.WithAllocator(mem))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "bqemu proxy: decode emulator record batch stream: %v", err)
		}
		if snap.schemaMsg == nil {
			if snap.schemaMsg, err = schemaMessage(rdr.Schema()); err != nil {
				rdr.Release()
				return nil, status.Errorf(codes.Internal, "bqemu proxy: %v", err)
			}
		}
		for rdr.Next() {
			rec, err := fixBinaryColumns(rdr.RecordBatch(), mem)
			if err != nil {
				rdr.Release()
				return nil, status.Errorf(codes.Internal, "bqemu proxy: %v", err)
			}
			snap.records = append(snap.records, rec)
			snap.rows += rec.NumRows()
			snap.bytes += recordBytes(rec)
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "bqemu proxy: decode emulator record batch stream: %v", err)
		}
	}
}

// recordBytes is the size of a record's buffers.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
	}
	for _, col := range rec.Columns() {
		walk(col.Data())
	}
	return n
}

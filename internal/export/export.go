// Package export moves one table from a BigQuery read session into parquet shards in the
// customer's bucket. It is the data path of the ExportTable activity, free of Temporal so it
// can be tested and benchmarked on its own.
//
// Resumability: shard boundaries depend only on the rows (row groups are cut by the rows'
// sizes, shards at row-group boundaries), so re-reading a stream from the offset where shard k
// began reproduces shard k and every shard after it byte for byte. A retry resumes from the
// last recorded Progress and overwrites, with identical content, any shard a lost heartbeat
// did not record; it never leaves a stale extra shard behind.
package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// DefaultTargetShardBytes is the shard size a table is cut at. A shard ends at the first
// row-group boundary at or past it, so shards overshoot by at most one row group.
const DefaultTargetShardBytes = 256 << 20

// ParquetContentType is sent with every shard. Shards are never gzip-wrapped as a whole and
// never carry Content-Encoding: gzip: the GZIP codec is inside the parquet file.
const ParquetContentType = "application/vnd.apache.parquet"

// Reader reads the streams of an open session.
type Reader interface {
	Read(ctx context.Context, s *bqsource.Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error
}

// Job is one table of one dump.
type Job struct {
	Table      string
	Prefix     string // account sub-folder
	DumpFolder string // YYYY-MM-DDTHH:MM
	Extension  string
	// MinShards makes the export write at least this many shards, padding with empty ones. A
	// rerun of a table that once had more shards overwrites them all, so no stale shard of the
	// earlier run stays counted in the folder.
	MinShards int
}

// Progress is where a table export stands. It is the activity's heartbeat detail: small, and
// free of secrets (the session name is an opaque handle, readable only with BigQuery access).
type Progress struct {
	Session *bqsource.Session `json:"session"`
	// Stream and Offset are where the next unfinished shard starts.
	Stream int   `json:"stream"`
	Offset int64 `json:"offset"`
	// Files are the shards uploaded so far, in index order.
	Files []receipt.File `json:"files"`
}

// Rows counts the rows in uploaded shards.
func (p *Progress) Rows() (n int64) {
	for _, f := range p.Files {
		n += f.Rows
	}
	return n
}

// Exporter runs table exports. Its fields are injected; it is safe for concurrent use.
type Exporter struct {
	Reader Reader
	Writer s3dest.Writer
	// TargetShardBytes: zero means DefaultTargetShardBytes.
	TargetShardBytes int64
	// RowGroupBytes: zero means the encoder's default.
	RowGroupBytes int64
	// TempDir holds a shard while it is written and uploaded; empty means os.TempDir().
	TempDir string
}

// Run exports the rows of p.Session (which the caller opened, or resumed from a heartbeat),
// calling record after every uploaded shard with the progress to resume from.
func (e *Exporter) Run(ctx context.Context, job Job, p *Progress, record func(Progress)) ([]receipt.File, error) {
	if p.Session == nil {
		return nil, errNoSession
	}
	schema, err := p.Session.Schema()
	if err != nil {
		return nil, err
	}
	target := e.TargetShardBytes
	if target <= 0 {
		target = DefaultTargetShardBytes
	}
	run := &tableRun{e: e, job: job, p: p, schema: schema, record: record}
	defer run.discard()
	for si := p.Stream; si < len(p.Session.Streams); si++ {
		off := int64(0)
		if si == p.Stream {
			off = p.Offset
		}
		err := e.Reader.Read(ctx, p.Session, p.Session.Streams[si], off, func(rec arrow.RecordBatch) error {
			n := rec.NumRows()
			for from := int64(0); from < n; {
				if err := run.open(); err != nil {
					return err
				}
				consumed, flushed, err := run.cur.w.Append(rec, from)
				if err != nil {
					return fmt.Errorf("encode %s: %w", job.Table, err)
				}
				from += consumed
				off += consumed
				if flushed && run.cur.w.BytesWritten() >= target {
					// The next shard starts right after this one's last row.
					if err := run.finish(ctx, si, off); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// The last, partial shard; or the only one of an empty table, which still gets a valid
	// parquet file with the schema so loaders see the columns.
	end := len(p.Session.Streams)
	if run.cur != nil && run.cur.w.Rows() > 0 || len(p.Files) == 0 {
		if err := run.open(); err != nil {
			return nil, err
		}
		if err := run.finish(ctx, end, 0); err != nil {
			return nil, err
		}
	}
	for len(p.Files) < job.MinShards {
		if err := run.open(); err != nil {
			return nil, err
		}
		if err := run.finish(ctx, end, 0); err != nil {
			return nil, err
		}
	}
	return p.Files, nil
}

type tableRun struct {
	e      *Exporter
	job    Job
	p      *Progress
	schema *arrow.Schema
	record func(Progress)

	cur *shard
}

type shard struct {
	f   *os.File
	buf *bufio.Writer
	w   *parquetenc.Writer
}

func (r *tableRun) open() error {
	if r.cur != nil {
		return nil
	}
	f, err := os.CreateTemp(r.e.TempDir, "shard-*.parquet")
	if err != nil {
		return fmt.Errorf("create shard file: %w", err)
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	w, err := parquetenc.NewWriter(buf, r.schema, parquetenc.Options{RowGroupBytes: r.e.RowGroupBytes})
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("table %s: %w", r.job.Table, err)
	}
	r.cur = &shard{f: f, buf: buf, w: w}
	return nil
}

// finish closes the current shard, uploads it as the next index and records progress: the
// next shard starts at row nextOffset of stream nextStream.
func (r *tableRun) finish(ctx context.Context, nextStream int, nextOffset int64) error {
	s := r.cur
	defer r.discard()
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("finish shard of %s: %w", r.job.Table, err)
	}
	if err := s.buf.Flush(); err != nil {
		return fmt.Errorf("write shard of %s: %w", r.job.Table, err)
	}
	size, err := s.f.Seek(0, 1)
	if err != nil {
		return err
	}
	if _, err := s.f.Seek(0, 0); err != nil {
		return err
	}
	index := len(r.p.Files)
	key := layout.ShardKey(r.job.Prefix, r.job.DumpFolder, r.job.Table, index, r.job.Extension)
	res, err := r.e.Writer.Put(ctx, s3dest.Object{Key: key, Body: s.f, Size: size, ContentType: ParquetContentType})
	if err != nil {
		return err
	}
	r.p.Files = append(r.p.Files, receipt.File{Key: key, Rows: s.w.Rows(), Bytes: size, CRC32C: res.ChecksumCRC32C})
	r.p.Stream, r.p.Offset = nextStream, nextOffset
	if r.record != nil {
		r.record(*r.p)
	}
	return nil
}

func (r *tableRun) discard() {
	if r.cur == nil {
		return
	}
	r.cur.f.Close()
	os.Remove(r.cur.f.Name())
	r.cur = nil
}

var errNoSession = errors.New("export: progress has no read session")

// Package export moves one table from a BigQuery read session into parquet shards in the
// customer's bucket. It is the data path of the ExportTable activity, free of Temporal so it
// can be tested and benchmarked on its own.
//
// Order: a table's shards are numbered in a global order that only the session fixes: every
// shard of stream 0, then every shard of stream 1, and so on. A shard never spans two streams.
// The streams are read and encoded in parallel into local files, but shards are uploaded one
// at a time, strictly in that order; a stream's finished shards wait on local disk until every
// earlier stream has been uploaded (see Exporter.BufferBytes for the bound).
//
// Resumability: within a stream, shard boundaries depend only on that stream's rows (row
// groups are cut by the rows' sizes, a shard at the first row-group boundary at or past the
// target size), so re-reading a stream from the offset where one of its shards began
// reproduces that shard and every later shard of the stream byte for byte, whatever the batch
// boundaries. Progress names the first position not yet uploaded; a retry resumes there (that
// stream from that offset, every later stream from 0) and overwrites, with identical content
// under identical keys, any shard a lost heartbeat did not record. It never leaves a stale
// extra shard behind.
package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Limits of the data path. Zero values of the matching Exporter fields mean these.
const (
	// DefaultTargetShardBytes is the shard size a table is cut at. A shard ends at the first
	// row-group boundary at or past it, so shards overshoot by at most one row group.
	DefaultTargetShardBytes = 256 << 20
	// DefaultMaxStreams is how many streams of a table are read and encoded at once, and how
	// many the ExportTable activity asks BigQuery for. Each costs one encoder (about one row
	// group of memory) and one shard being written on local disk. Two matches a 2-core worker:
	// more streams add memory (about one row group each) without more cores to encode them.
	DefaultMaxStreams = 2
	// DefaultBufferBytes bounds the finished shards that wait on local disk for an earlier
	// stream to be uploaded.
	DefaultBufferBytes = 2 << 30
	// DefaultReadyShards is how many finished shards of the stream being uploaded may wait
	// behind the shard being uploaded: 1 lets shard n+1 be encoded while shard n uploads.
	DefaultReadyShards = 1
	// ReserveAhead is how far past the next shard index a reservation reaches (see
	// Progress.Reserved). A larger value survives more uploads between two heartbeats that
	// reach Temporal; its only cost is empty padding shards when a table has to start again
	// on a new read session, which is rare (a table read for more than five hours).
	ReserveAhead = 8
)

// ParquetContentType is sent with every shard. Shards are never gzip-wrapped as a whole and
// never carry Content-Encoding: gzip: the GZIP codec is inside the parquet file.
const ParquetContentType = "application/vnd.apache.parquet"

// Reader reads the streams of an open session. Read must be safe for concurrent use on
// different streams, hand fn the stream's rows in order from offset, and return fn's error.
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
	// UploadUntil, when set, is the last moment a shard upload may start: past it Run stops
	// with ErrUploadWindowClosed. A read session that is about to expire stops uploading well
	// before a successor may start the table again on a new session (whose shard boundaries
	// differ), so two sessions never write the same folder at the same time.
	UploadUntil time.Time
	// Now is the clock for UploadUntil; nil means time.Now.
	Now func() time.Time
	// Touch, when set, is called whenever data moves: a batch read, a shard file finished,
	// upload bytes sent (through the Writer). It must be cheap and safe for concurrent use;
	// the activity's stall watchdog and progress heartbeats hang on it.
	Touch func()
	// Interleave, when set, makes this job one of several stream groups exporting the same
	// table from one read session: the job's k-th shard gets the table index Interleave.Index(k).
	// Progress, MinShards and Reserved count the job's own shards.
	Interleave Interleave
}

// Interleave numbers the shards of stream group Group of Of: its k-th shard is the table's
// shard Group + k×Of. The groups of a table together write every index below Of × the most
// shards any group wrote (the shorter groups pad), so the table's shards stay numbered
// 0, 1, 2, ... without gaps, whatever order the groups finish in.
type Interleave struct {
	Group int `json:"group"`
	Of    int `json:"of"`
}

// Index is the table index of the job's k-th shard.
func (l Interleave) Index(k int) int {
	if l.Of <= 1 {
		return k
	}
	return l.Group + k*l.Of
}

// ErrUploadWindowClosed is returned by Run when Job.UploadUntil has passed.
var ErrUploadWindowClosed = errors.New("export: the read session is too close to its expiry to start another upload")

// Progress is where a table export stands. It is the activity's heartbeat detail: small, and
// free of secrets (the session name is an opaque handle, readable only with BigQuery access).
type Progress struct {
	Session *bqsource.Session `json:"session"`
	// Stream and Offset are the first position, in the global shard order, not yet uploaded:
	// the next shard starts at row Offset of stream Stream. Stream equal to the number of
	// streams means every stream is uploaded (only the empty or padding shards may be left).
	Stream int   `json:"stream"`
	Offset int64 `json:"offset"`
	// Files are the shards uploaded so far, in index order: exactly the shards before
	// (Stream, Offset).
	Files Shards `json:"files"`
	// Reserved is the table's shard high-water mark: no shard index at or past it has been
	// written by any attempt that recorded this progress or an earlier one. It is raised
	// (and recorded) before an upload reaches it, ReserveAhead past the shard being written,
	// so it stays an upper bound even when the last few heartbeats never reached Temporal
	// (they are throttled, and lost when a worker dies). A table started again on a new
	// read session pads up to it, so no stale shard index of the old session survives.
	Reserved int `json:"reserved,omitempty"`
}

// Rows counts the rows in uploaded shards.
func (p *Progress) Rows() (n int64) {
	for _, f := range p.Files {
		n += f.Rows
	}
	return n
}

// Exporter runs table exports. Its fields are injected; it is safe for concurrent use.
//
// Local disk use per Run is at most about BufferBytes + (MaxStreams + ReadyShards + 1) ×
// (TargetShardBytes + one row group); memory about MaxStreams × (one row group + one Arrow
// batch) plus the uploader's part buffers.
type Exporter struct {
	Reader Reader
	Writer s3dest.Writer
	// TargetShardBytes: zero means DefaultTargetShardBytes.
	TargetShardBytes int64
	// RowGroupBytes: zero means the encoder's default.
	RowGroupBytes int64
	// TempDir holds shards while they are written and until they are uploaded; empty means
	// os.TempDir().
	TempDir string
	// MaxStreams is how many streams are read and encoded at once; zero means
	// DefaultMaxStreams.
	MaxStreams int
	// BufferBytes bounds the bytes of finished shards waiting on local disk for an earlier
	// stream to be uploaded; zero means DefaultBufferBytes. While it is reached, streams ahead
	// of the one being uploaded pause before starting a shard (they never drop rows). The
	// stream being uploaded never waits for it, so any budget, even one smaller than a shard,
	// makes progress.
	BufferBytes int64
	// ReadyShards: zero means DefaultReadyShards.
	ReadyShards int
}

func (e *Exporter) targetShardBytes() int64 {
	if e.TargetShardBytes <= 0 {
		return DefaultTargetShardBytes
	}
	return e.TargetShardBytes
}

func (e *Exporter) maxStreams() int {
	if e.MaxStreams <= 0 {
		return DefaultMaxStreams
	}
	return e.MaxStreams
}

func (e *Exporter) bufferBytes() int64 {
	if e.BufferBytes <= 0 {
		return DefaultBufferBytes
	}
	return e.BufferBytes
}

func (e *Exporter) readyShards() int {
	if e.ReadyShards <= 0 {
		return DefaultReadyShards
	}
	return e.ReadyShards
}

// Run exports the rows of p.Session (which the caller opened, or resumed from a heartbeat)
// from the position p names, calling record after every uploaded shard with the progress to
// resume from. record is called from Run's own goroutine, one call at a time, with a snapshot
// it may keep. Run updates *p as it goes and returns only once every goroutine it started has
// stopped and every local file it created is removed.
func (e *Exporter) Run(ctx context.Context, job Job, p *Progress, record func(Progress)) (Shards, error) {
	if p.Session == nil {
		return nil, errNoSession
	}
	schema, err := p.Session.Schema()
	if err != nil {
		return nil, err
	}
	// A column the encoder cannot write is found before any shard, and no retry will fix it.
	if _, err := parquetenc.NewWriter(io.Discard, schema, parquetenc.Options{RowGroupBytes: e.RowGroupBytes}); err != nil {
		return nil, &SchemaError{Table: job.Table, Err: err}
	}
	n := len(p.Session.Streams)
	if p.Stream < 0 || p.Stream > n || p.Offset < 0 {
		return nil, fmt.Errorf("export %s: progress at stream %d, offset %d does not fit the session's %d streams", job.Table, p.Stream, p.Offset, n)
	}
	if p.Stream == n {
		p.Offset = 0
	}
	r := &tableRun{e: e, job: job, p: p, session: p.Session, schema: schema, record: record, target: e.targetShardBytes()}
	if p.Stream < n {
		if err := r.streams(ctx); err != nil {
			return nil, err
		}
	}
	// An empty table still gets one valid parquet file with the schema, so loaders see the
	// columns; then padding up to MinShards.
	for len(p.Files) == 0 || len(p.Files) < job.MinShards {
		w, err := r.create()
		if err != nil {
			return nil, err
		}
		sh, err := w.finish(n, 0)
		if err != nil {
			return nil, err
		}
		if err := r.upload(ctx, sh, n, 0); err != nil {
			return nil, err
		}
	}
	return p.Files, nil
}

// tableRun is the state of one Run.
type tableRun struct {
	e       *Exporter
	job     Job
	p       *Progress // written by the uploading goroutine only
	session *bqsource.Session
	schema  *arrow.Schema
	record  func(Progress)
	target  int64
}

// streams reads, encodes and uploads the streams from p.Stream on. Encoders run in up to
// MaxStreams goroutines, each taking the next stream in order; this goroutine uploads.
func (r *tableRun) streams(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, firstOffset, n := r.p.Stream, r.p.Offset, len(r.session.Streams)
	pl := newPipeline(ctx, first, n, r.e.bufferBytes(), r.e.readyShards())
	defer pl.close()

	var wg sync.WaitGroup
	for range min(r.e.maxStreams(), n-first) {
		wg.Go(func() {
			for {
				k, ok := pl.take()
				if !ok {
					return
				}
				off := int64(0)
				if k == first {
					off = firstOffset
				}
				if err := r.encodeStream(ctx, pl, k, off); err != nil {
					pl.fail(err)
					cancel()
					return
				}
			}
		})
	}
	if err := r.uploadStreams(ctx, pl, first, n); err != nil {
		pl.fail(err)
	}
	cancel()
	wg.Wait()
	pl.removeLeftovers()
	return pl.failure()
}

// encodeStream reads stream k from row off and hands its shards to the pipeline in order.
func (r *tableRun) encodeStream(ctx context.Context, pl *pipeline, k int, off int64) (err error) {
	var cur *shardWriter // the shard being encoded
	// pending is the last finished shard, held back until the stream shows whether rows
	// follow it: the stream's last shard resumes at the next stream, not at its own end.
	var pending *stagedShard
	defer func() {
		if err != nil {
			cur.discard()
			pending.remove()
		}
	}()
	err = r.e.Reader.Read(ctx, r.session, r.session.Streams[k], off, func(rec arrow.RecordBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.touch()
		for from, n := int64(0), rec.NumRows(); from < n; {
			if cur == nil {
				if pending != nil {
					pl.push(pending)
					pending = nil
				}
				if err := pl.waitToStart(ctx, k); err != nil {
					return err
				}
				w, err := r.create()
				if err != nil {
					return err
				}
				cur = w
			}
			consumed, flushed, err := cur.w.Append(rec, from)
			if err != nil {
				return fmt.Errorf("encode %s stream %d at row %d: %w", r.job.Table, k, off, err)
			}
			from += consumed
			off += consumed
			r.touch()
			if flushed && cur.w.BytesWritten() >= r.target {
				// The next shard starts right after this one's last row.
				w := cur
				cur = nil
				if pending, err = w.finish(k, off); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cur != nil {
		w := cur
		cur = nil
		if pending, err = w.finish(k, off); err != nil {
			return err
		}
	}
	if pending != nil {
		pending.last = true
		pl.push(pending)
		pending = nil
	}
	pl.streamDone(k)
	return nil
}

// uploadStreams uploads the shards of streams first..n-1 in the global order.
func (r *tableRun) uploadStreams(ctx context.Context, pl *pipeline, first, n int) error {
	for k := first; k < n; k++ {
		for {
			sh, err := pl.nextShard(ctx, k)
			if err != nil {
				return err
			}
			if sh == nil {
				break
			}
			nextStream, nextOffset := k, sh.end
			if sh.last {
				nextStream, nextOffset = k+1, 0
			}
			err = r.upload(ctx, sh, nextStream, nextOffset)
			pl.uploaded(sh)
			if err != nil {
				return err
			}
		}
		pl.advance(k + 1)
	}
	return nil
}

// upload puts a staged shard as the next index, removes its local file and records progress:
// the next shard starts at row nextOffset of stream nextStream.
func (r *tableRun) upload(ctx context.Context, sh *stagedShard, nextStream int, nextOffset int64) error {
	defer sh.remove()
	f, err := os.Open(sh.path)
	if err != nil {
		return fmt.Errorf("open shard of %s: %w", r.job.Table, err)
	}
	defer f.Close()
	index := len(r.p.Files)
	if !r.job.UploadUntil.IsZero() && r.now().After(r.job.UploadUntil) {
		return ErrUploadWindowClosed
	}
	if index >= r.p.Reserved {
		// Record the raised mark before the upload can make it true.
		r.p.Reserved = index + 1 + ReserveAhead
		r.recordProgress()
	}
	key := layout.ShardKey(r.job.Prefix, r.job.DumpFolder, r.job.Table, r.job.Interleave.Index(index), r.job.Extension)
	res, err := r.e.Writer.Put(ctx, s3dest.Object{Key: key, Body: f, Size: sh.size, ContentType: ParquetContentType, OnProgress: r.touchBytes})
	if err != nil {
		return err
	}
	r.p.Files = append(r.p.Files, receipt.File{Key: key, Rows: sh.rows, Bytes: sh.size, CRC32C: res.ChecksumCRC32C})
	r.p.Stream, r.p.Offset = nextStream, nextOffset
	r.recordProgress()
	return nil
}

// recordProgress hands the caller a snapshot of the progress.
func (r *tableRun) recordProgress() {
	if r.record != nil {
		snap := *r.p
		snap.Files = slices.Clip(r.p.Files) // the callee may keep it; our appends never show
		r.record(snap)
	}
}

func (r *tableRun) now() time.Time {
	if r.job.Now != nil {
		return r.job.Now()
	}
	return time.Now()
}

func (r *tableRun) touch() {
	if r.job.Touch != nil {
		r.job.Touch()
	}
}

func (r *tableRun) touchBytes(int64) { r.touch() }

// shardWriter is a shard being encoded into a local file.
type shardWriter struct {
	f   *os.File
	buf *bufio.Writer
	w   *parquetenc.Writer
}

func (r *tableRun) create() (*shardWriter, error) {
	f, err := os.CreateTemp(r.e.TempDir, "shard-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("create shard file: %w", err)
	}
	buf := fileBuffers.Get().(*bufio.Writer)
	buf.Reset(f)
	w, err := parquetenc.NewWriter(buf, r.schema, parquetenc.Options{RowGroupBytes: r.e.RowGroupBytes})
	if err != nil {
		releaseBuffer(buf)
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("table %s: %w", r.job.Table, err)
	}
	return &shardWriter{f: f, buf: buf, w: w}, nil
}

// fileBuffers hold the 1 MiB write buffers of shard files: allocating and zeroing one per
// shard was a tenth of a small table's export CPU.
var fileBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

// releaseBuffer returns a shard file's buffer to the pool, holding nothing of the file.
func releaseBuffer(b *bufio.Writer) {
	b.Reset(nil)
	fileBuffers.Put(b)
}

// finish completes the file of a shard of stream k that ends before row end. The writer is
// gone afterwards, whatever the outcome.
func (s *shardWriter) finish(k int, end int64) (*stagedShard, error) {
	err := s.w.Close()
	if err == nil {
		err = s.buf.Flush()
	}
	releaseBuffer(s.buf)
	s.buf = nil
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.f.Name())
		return nil, fmt.Errorf("write shard file: %w", err)
	}
	return &stagedShard{stream: k, path: s.f.Name(), size: s.w.BytesWritten(), rows: s.w.Rows(), end: end}, nil
}

func (s *shardWriter) discard() {
	if s == nil {
		return
	}
	if s.buf != nil {
		releaseBuffer(s.buf)
		s.buf = nil
	}
	s.f.Close()
	os.Remove(s.f.Name())
}

// stagedShard is a finished shard file waiting for its upload.
type stagedShard struct {
	stream int
	path   string
	size   int64
	rows   int64
	end    int64 // the stream's row offset right after the shard
	last   bool  // the stream's last shard
}

func (s *stagedShard) remove() {
	if s != nil {
		os.Remove(s.path)
	}
}

var errNoSession = errors.New("export: progress has no read session")

// SchemaError reports a table with a column the parquet encoder cannot write: it needs a
// code change, not a retry.
type SchemaError struct {
	Table string
	Err   error
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("table %s has a column this exporter cannot write to parquet: %v", e.Table, e.Err)
}

func (e *SchemaError) Unwrap() error { return e.Err }

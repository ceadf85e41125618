package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// rowsPerStreamID separates streams in the generated ids: row i of stream s has id
// s*rowsPerStreamID + i.
const rowsPerStreamID = 1_000_000

// fakeSource serves streams of generated rows, cut into batches of random sizes: a resumed
// read (seed differs) sees other batch boundaries than the first one, as with BigQuery. It is
// safe for concurrent reads of different streams, like the real client.
type fakeSource struct {
	streams []int64 // rows per stream
	seed    int64
	// failAt makes Read fail once stream failStream reaches this many rows (-1: never).
	failStream int
	failAt     int64
	// hang makes Read of these streams block until ctx ends, like a stalled gRPC stream.
	hang map[int]bool
	// delivered counts rows handed to fn.
	delivered atomic.Int64
}

func (f *fakeSource) session() *bqsource.Session {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema))
	_ = w.Close()
	s := &bqsource.Session{Name: "sessions/test", ArrowSchema: buf.Bytes()[:buf.Len()-8]}
	for i := range f.streams {
		s.Streams = append(s.Streams, fmt.Sprintf("stream-%d", i))
	}
	return s
}

func (f *fakeSource) Read(ctx context.Context, s *bqsource.Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error {
	var si int
	fmt.Sscanf(stream, "stream-%d", &si)
	if f.hang[si] {
		<-ctx.Done()
		return fmt.Errorf("read %s: %w", stream, ctx.Err())
	}
	rng := rand.New(rand.NewSource(f.seed*7919 + int64(si) + offset))
	for off := offset; off < f.streams[si]; {
		n := min(int64(1+rng.Intn(700)), f.streams[si]-off)
		if f.failAt >= 0 && si == f.failStream && off+n > f.failAt {
			return errors.New("injected stream reset")
		}
		rec := makeRows(si, off, n)
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
		f.delivered.Add(n)
		off += n
	}
	return nil
}

func rowName(id int64) (string, bool) {
	if id%7 == 0 {
		return "", false
	}
	return fmt.Sprintf("row %d ✓ %s", id, string(rune('a'+id%26))), true
}

func rowTS(id int64) arrow.Timestamp { return arrow.Timestamp(1_700_000_000_000_000 + id) }

func makeRows(stream int, from, n int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		id := int64(stream)*rowsPerStreamID + i
		b.Field(0).(*array.Int64Builder).Append(id)
		if name, ok := rowName(id); ok {
			b.Field(1).(*array.StringBuilder).Append(name)
		} else {
			b.Field(1).AppendNull()
		}
		b.Field(2).(*array.TimestampBuilder).Append(rowTS(id))
	}
	return b.NewRecordBatch()
}

// memBucket is an in-memory write-only bucket that records the order of puts.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    []string
	failOn  int // fail the failOn-th put (1-based); 0: never
	// before, when set, runs before every put with its 1-based number; an error fails it.
	// It runs outside the lock, so it may block.
	before func(ctx context.Context, n int) error
	calls  atomic.Int64
}

func newBucket() *memBucket { return &memBucket{objects: map[string][]byte{}} }

func (b *memBucket) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	n := int(b.calls.Add(1))
	if b.before != nil {
		if err := b.before(ctx, n); err != nil {
			return s3dest.PutResult{}, err
		}
	}
	data, err := io.ReadAll(o.Body)
	if err != nil {
		return s3dest.PutResult{}, err
	}
	if o.ContentType != ParquetContentType {
		return s3dest.PutResult{}, fmt.Errorf("content type %q", o.ContentType)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failOn > 0 && len(b.puts)+1 == b.failOn {
		b.failOn = 0
		return s3dest.PutResult{}, errors.New("injected 503")
	}
	if int64(len(data)) != o.Size {
		return s3dest.PutResult{}, fmt.Errorf("size %d != %d", len(data), o.Size)
	}
	b.objects[o.Key] = data
	b.puts = append(b.puts, o.Key)
	return s3dest.PutResult{}, nil
}

func (b *memBucket) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var k []string
	for key := range b.objects {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func (b *memBucket) clone() *memBucket {
	c := newBucket()
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.objects {
		c.objects[k] = v
	}
	return c
}

// row is one row read back from a shard.
type row struct {
	id   int64
	name string
	null bool
	ts   arrow.Timestamp
}

// readShard reads one object with arrow-go's parquet reader, every column.
func readShard(t *testing.T, key string, data []byte) []row {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not parquet: %v", key, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if int(tbl.NumCols()) != testSchema.NumFields() {
		t.Fatalf("%s: schema %v", key, tbl.Schema())
	}
	for i, f := range tbl.Schema().Fields() {
		want := testSchema.Field(i)
		if f.Name != want.Name || !arrow.TypeEqual(f.Type, want.Type) || f.Nullable != want.Nullable {
			t.Fatalf("%s: column %d is %v, want %v", key, i, f, want)
		}
	}
	var rows []row
	for _, c := range tbl.Column(0).Data().Chunks() {
		for _, id := range c.(*array.Int64).Int64Values() {
			rows = append(rows, row{id: id})
		}
	}
	i := 0
	for _, c := range tbl.Column(1).Data().Chunks() {
		s := c.(*array.String)
		for j := 0; j < s.Len(); j, i = j+1, i+1 {
			rows[i].null = s.IsNull(j)
			rows[i].name = s.Value(j)
		}
	}
	i = 0
	for _, c := range tbl.Column(2).Data().Chunks() {
		for _, v := range c.(*array.Timestamp).TimestampValues() {
			rows[i].ts = v
			i++
		}
	}
	return rows
}

// ids reads every object and returns all ids, sorted, checking every value of every row.
func (b *memBucket) ids(t *testing.T) []int64 {
	t.Helper()
	var ids []int64
	for _, k := range b.keys() {
		for _, r := range readShard(t, k, b.objects[k]) {
			name, ok := rowName(r.id)
			if r.null == ok || r.name != name || r.ts != rowTS(r.id) {
				t.Fatalf("%s: row %d has wrong values %+v", k, r.id, r)
			}
			ids = append(ids, r.id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func expectedIDs(streams []int64) []int64 {
	var ids []int64
	for s, n := range streams {
		for i := int64(0); i < n; i++ {
			ids = append(ids, int64(s)*rowsPerStreamID+i)
		}
	}
	return ids
}

var job = Job{Table: "events", Prefix: "p", DumpFolder: "2023-03-14T04:03", Extension: ".parquet.gz"}

func shardKey(i int) string {
	return layout.ShardKey(job.Prefix, job.DumpFolder, job.Table, i, job.Extension)
}

// exporter has small shards (a few row groups each) and a temp dir checked to be empty when
// the test ends: no shard file outlives Run, whatever happened.
func exporter(t *testing.T, src Reader, b *memBucket) *Exporter {
	dir := t.TempDir()
	t.Cleanup(func() {
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("%d shard files left in the temp dir", len(left))
		}
	})
	return &Exporter{Reader: src, Writer: b, TargetShardBytes: 24 << 10, RowGroupBytes: 8 << 10, TempDir: dir, MaxStreams: 3}
}

func sameObjects(t *testing.T, want, got *memBucket) {
	t.Helper()
	wk, gk := want.keys(), got.keys()
	if fmt.Sprint(wk) != fmt.Sprint(gk) {
		t.Fatalf("objects differ:\nwant %v\n got %v", wk, gk)
	}
	for _, k := range wk {
		if !bytes.Equal(want.objects[k], got.objects[k]) {
			t.Errorf("%s differs", k)
		}
	}
}

// reference exports src serially in one pass: the objects every other run must reproduce.
func reference(t *testing.T, streams []int64) *memBucket {
	t.Helper()
	src := &fakeSource{streams: streams, failAt: -1}
	b := newBucket()
	e := exporter(t, src, b)
	e.MaxStreams = 1
	if _, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkLayout checks invariant 2 on a finished export: contiguous keys uploaded in index
// order, each shard within one stream, shards in (stream, offset) order, every row once.
func checkLayout(t *testing.T, b *memBucket, streams []int64, files int) {
	t.Helper()
	if len(b.puts) != files || len(b.objects) != files {
		t.Fatalf("%d puts, %d objects, %d files", len(b.puts), len(b.objects), files)
	}
	for i, k := range b.puts {
		if k != shardKey(i) {
			t.Fatalf("put %d is %s, want %s", i, k, shardKey(i))
		}
	}
	nextStream, nextOffset := 0, int64(0)
	for i := range files {
		rows := readShard(t, shardKey(i), b.objects[shardKey(i)])
		if len(rows) == 0 {
			continue
		}
		s, off := int(rows[0].id/rowsPerStreamID), rows[0].id%rowsPerStreamID
		if s < nextStream || s == nextStream && off != nextOffset || s > nextStream && off != 0 {
			t.Fatalf("shard %d starts at stream %d row %d, after stream %d row %d", i, s, off, nextStream, nextOffset)
		}
		for s2 := nextStream; s2 < s; s2++ {
			if s2 == nextStream && nextOffset < streams[s2] || s2 > nextStream && streams[s2] > 0 {
				t.Fatalf("shard %d starts stream %d before stream %d is complete", i, s, s2)
			}
		}
		for j, r := range rows {
			if r.id != rows[0].id+int64(j) {
				t.Fatalf("shard %d: row %d has id %d: a shard spans streams or skips rows", i, j, r.id)
			}
		}
		nextStream, nextOffset = s, off+int64(len(rows))
	}
	if got, want := b.ids(t), expectedIDs(streams); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows differ: got %d ids, want %d", len(got), len(want))
	}
}

func TestShardsAreContiguousAndComplete(t *testing.T) {
	src := &fakeSource{streams: []int64{9000, 0, 4000}, failAt: -1}
	b := newBucket()
	var progress []Progress
	files, err := exporter(t, src, b).Run(context.Background(), job, &Progress{Session: src.session()}, uploadsOnly(&progress))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want several shards, got %d", len(files))
	}
	for i, f := range files {
		if f.Key != shardKey(i) || f.Bytes != int64(len(b.objects[f.Key])) {
			t.Errorf("file %d: %+v", i, f)
		}
	}
	checkLayout(t, b, src.streams, len(files))
	if len(progress) != len(files) || len(progress[len(progress)-1].Files) != len(files) {
		t.Errorf("progress recorded %d times for %d shards", len(progress), len(files))
	}
	if last := progress[len(progress)-1]; last.Stream != 3 || last.Offset != 0 {
		t.Errorf("final progress at stream %d offset %d, want 3, 0", last.Stream, last.Offset)
	}
}

// TestGlobalOrderManyStreams: many streams of random sizes (some empty), read in parallel
// with random batch sizes, give contiguous keys uploaded in global order, each shard inside
// one stream, and exactly the table's rows.
func TestGlobalOrderManyStreams(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	streams := make([]int64, 9)
	for i := range streams {
		if i%4 != 1 {
			streams[i] = int64(rng.Intn(6000))
		}
	}
	for _, maxStreams := range []int{1, 3, 16} {
		t.Run(fmt.Sprint("max streams ", maxStreams), func(t *testing.T) {
			src := &fakeSource{streams: streams, seed: int64(maxStreams), failAt: -1}
			b := newBucket()
			e := exporter(t, src, b)
			e.MaxStreams = maxStreams
			files, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, b, streams, len(files))
		})
	}
}

// TestOutputIndependentOfScheduling: parallelism, batch boundaries, budget and pipeline depth
// change when shards are encoded, never what they hold: every run gives the serial run's
// objects byte for byte.
func TestOutputIndependentOfScheduling(t *testing.T) {
	streams := []int64{5000, 3000, 0, 7000, 1200}
	want := reference(t, streams)
	for name, tune := range map[string]func(*Exporter){
		"parallel":           func(e *Exporter) { e.MaxStreams = 5 },
		"tiny budget":        func(e *Exporter) { e.MaxStreams = 4; e.BufferBytes = 1 },
		"deep pipeline":      func(e *Exporter) { e.MaxStreams = 2; e.ReadyShards = 4 },
		"budget of 2 shards": func(e *Exporter) { e.MaxStreams = 3; e.BufferBytes = 50 << 10 },
	} {
		t.Run(name, func(t *testing.T) {
			src := &fakeSource{streams: streams, seed: int64(len(name)), failAt: -1}
			b := newBucket()
			e := exporter(t, src, b)
			tune(e)
			if _, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil); err != nil {
				t.Fatal(err)
			}
			sameObjects(t, want, b)
		})
	}
}

// TestResumeReproducesShards: a failure mid-stream, resumed from the last recorded progress
// or from an older one (a heartbeat lost in a crash), with different batch boundaries and
// parallelism, ends with exactly the objects of an uninterrupted run, byte for byte.
func TestResumeReproducesShards(t *testing.T) {
	streams := []int64{7000, 5000, 6000, 3000}
	clean := reference(t, streams)
	for _, failStream := range []int{0, 2} {
		for _, lag := range []int{0, 1, 3, 1000} {
			t.Run(fmt.Sprintf("fail in stream %d, heartbeat lag %d", failStream, lag), func(t *testing.T) {
				b := newBucket()
				failing := &fakeSource{streams: streams, seed: 1, failStream: failStream, failAt: 3000}
				var recorded []Progress
				e := exporter(t, failing, b)
				e.MaxStreams = 4
				_, err := e.Run(context.Background(), job, &Progress{Session: failing.session()}, func(p Progress) {
					recorded = append(recorded, p)
				})
				if err == nil || !strings.Contains(err.Error(), "injected stream reset") {
					t.Fatalf("want the injected failure, got %v", err)
				}
				resume := Progress{Session: failing.session()}
				if i := len(recorded) - 1 - lag; i >= 0 {
					resume = recorded[i]
				}
				retry := &fakeSource{streams: streams, seed: 99, failAt: -1}
				e = exporter(t, retry, b)
				e.MaxStreams = 2
				got, err := e.Run(context.Background(), job, &resume, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(clean.objects) {
					t.Fatalf("resumed run has %d files, clean run %d", len(got), len(clean.objects))
				}
				sameObjects(t, clean, b)
			})
		}
	}
}

// TestResumeFromEveryHeartbeat: every progress a run records is a consistent snapshot (its
// files are the run's first shards; its position is where the next one starts), and resuming
// from it, after a crash that uploaded any number of later shards (here: junk under every
// later key), rewrites every later index and gives the clean run's objects.
func TestResumeFromEveryHeartbeat(t *testing.T) {
	streams := []int64{9000, 0, 2500, 0, 7500}
	clean := newBucket()
	src := &fakeSource{streams: streams, failAt: -1}
	var recorded []Progress
	e := exporter(t, src, clean)
	files, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, uploadsOnly(&recorded))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d shards, %d snapshots", len(files), len(recorded))
	starts := make([][2]int64, len(files)) // stream and offset where shard i starts
	for i := range files {
		r := readShard(t, files[i].Key, clean.objects[files[i].Key])
		starts[i] = [2]int64{r[0].id / rowsPerStreamID, r[0].id % rowsPerStreamID}
	}
	for i, p := range append([]Progress{{Session: src.session()}}, recorded...) {
		done := len(p.Files)
		if done != i {
			t.Fatalf("snapshot %d has %d files", i, done)
		}
		for j, f := range p.Files {
			if f != files[j] {
				t.Fatalf("snapshot %d file %d is %+v, the run's is %+v", i, j, f, files[j])
			}
		}
		if done < len(files) {
			s, off := starts[done][0], starts[done][1]
			skipped := int64(0)
			for k := int64(p.Stream); k < s; k++ {
				skipped += streams[k]
			}
			if int64(p.Stream) > s || int64(p.Stream) == s && p.Offset != off || int64(p.Stream) < s && (p.Offset != 0 || skipped != 0) {
				t.Fatalf("snapshot %d at stream %d offset %d, next shard starts at stream %d row %d", i, p.Stream, p.Offset, s, off)
			}
		}
		b := clean.clone()
		for j := done; j < len(files); j++ {
			b.objects[shardKey(j)] = []byte("stale shard of a crashed attempt")
		}
		retry := &fakeSource{streams: streams, seed: int64(i + 1), failAt: -1}
		e := exporter(t, retry, b)
		e.MaxStreams = 1 + i%4
		resume := p
		if _, err := e.Run(context.Background(), job, &resume, nil); err != nil {
			t.Fatal(err)
		}
		if len(b.puts) != len(files)-done || len(b.puts) > 0 && b.puts[0] != shardKey(done) {
			t.Fatalf("resume from snapshot %d put %v", i, b.puts)
		}
		sameObjects(t, clean, b)
	}
}

func TestUploadFailureIsReturnedAndResumable(t *testing.T) {
	for name, streams := range map[string][]int64{"one stream": {8000}, "several streams": {3000, 0, 4000, 2500}} {
		t.Run(name, func(t *testing.T) {
			clean := reference(t, streams)
			src := &fakeSource{streams: streams, failAt: -1}
			b := newBucket()
			b.failOn = 3
			var last Progress
			_, err := exporter(t, src, b).Run(context.Background(), job, &Progress{Session: src.session()}, func(p Progress) { last = p })
			if err == nil || !strings.Contains(err.Error(), "injected 503") || len(last.Files) != 2 {
				t.Fatalf("want the injected failure after two shards, got err=%v files=%d", err, len(last.Files))
			}
			files, err := exporter(t, src, b).Run(context.Background(), job, &last, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(clean.objects) {
				t.Fatalf("%d files, clean run %d", len(files), len(clean.objects))
			}
			sameObjects(t, clean, b)
		})
	}
}

// TestReadFailureStopsEveryStream: a stream failing while others read returns that stream's
// error, not the cancellation it causes in the others; what was uploaded is still in order
// (and the temp dir is left empty: see exporter).
func TestReadFailureStopsEveryStream(t *testing.T) {
	src := &fakeSource{streams: []int64{20000, 20000, 20000, 20000}, failStream: 3, failAt: 100}
	b := newBucket()
	e := exporter(t, src, b)
	e.MaxStreams = 4
	_, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil)
	if err == nil || !strings.Contains(err.Error(), "injected stream reset") {
		t.Fatalf("want the injected failure, got %v", err)
	}
	for i, k := range b.puts {
		if k != shardKey(i) {
			t.Fatalf("put %d is %s", i, k)
		}
	}
}

// TestBackpressure: with a budget smaller than one shard and the first upload stuck, the
// streams ahead of the head stop after one shard each and the head after its pipeline depth:
// reading stops, local files stay few, nothing is dropped. Once uploads resume the table
// completes (no deadlock) with the serial run's objects.
func TestBackpressure(t *testing.T) {
	streams := []int64{15000, 15000, 15000, 15000}
	want := reference(t, streams)
	src := &fakeSource{streams: streams, seed: 5, failAt: -1}
	b := newBucket()
	gate := make(chan struct{})
	b.before = func(ctx context.Context, n int) error {
		if n == 1 {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	e := exporter(t, src, b)
	e.MaxStreams = 4
	e.BufferBytes = 1
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil)
		done <- err
	}()
	// Wait until reading settles.
	var files int
	for last, stable := int64(-1), 0; stable < 5; time.Sleep(50 * time.Millisecond) {
		if d := src.delivered.Load(); d == last {
			stable++
		} else {
			last, stable = d, 0
		}
	}
	entries, _ := os.ReadDir(e.TempDir)
	files = len(entries)
	// Head: the shard uploading, one ready, one being encoded (paused in waitToStart it has
	// none). Each other stream: at most one finished shard, none started after it.
	if files > 3+3 {
		t.Errorf("%d shard files on disk with a 1-byte budget", files)
	}
	total := streams[0] * 4
	t.Logf("while the first upload is stuck: %d shard files on disk, %d of %d rows read", files, src.delivered.Load(), total)
	if d := src.delivered.Load(); d >= total/2 {
		t.Errorf("%d of %d rows read while the first upload is stuck", d, total)
	}
	close(gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("export did not finish after uploads resumed: deadlock")
	}
	sameObjects(t, want, b)
}

func TestEmptyTableAndPadding(t *testing.T) {
	for name, src := range map[string]*fakeSource{
		"no stream":      {streams: nil, failAt: -1},
		"empty stream":   {streams: []int64{0}, failAt: -1},
		"empty streams":  {streams: []int64{0, 0, 0, 0, 0}, failAt: -1},
		"no stream left": {streams: []int64{0, 0}, failAt: -1}, // resumed at the end
	} {
		t.Run(name, func(t *testing.T) {
			b := newBucket()
			p := &Progress{Session: src.session()}
			if name == "no stream left" {
				p.Stream = 2
			}
			files, err := exporter(t, src, b).Run(context.Background(), job, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || files[0].Rows != 0 || len(b.ids(t)) != 0 || b.puts[0] != shardKey(0) {
				t.Fatalf("an empty table must give exactly one valid, empty shard: %+v", files)
			}
		})
	}
	// A rerun that needs fewer shards than an earlier pass pads with empty shards, so the
	// earlier pass's higher indexes are overwritten and the count stays true.
	src := &fakeSource{streams: []int64{100, 0, 50}, failAt: -1}
	b := newBucket()
	j := job
	j.MinShards = 4
	files, err := exporter(t, src, b).Run(context.Background(), j, &Progress{Session: src.session()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || files[0].Rows != 100 || files[1].Rows != 50 || files[3].Rows != 0 || len(b.ids(t)) != 150 {
		t.Fatalf("padding: %+v", files)
	}
}

// TestEmptyStreamsBetweenShards: empty streams anywhere produce no shard and no gap.
func TestEmptyStreamsBetweenShards(t *testing.T) {
	streams := []int64{0, 0, 300, 0, 0, 9000, 0, 200, 0}
	src := &fakeSource{streams: streams, failAt: -1}
	b := newBucket()
	e := exporter(t, src, b)
	e.MaxStreams = 4
	files, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, b, streams, len(files))
	if files[0].Rows != 300 || files[len(files)-1].Rows != 200 {
		t.Errorf("first and last shards: %+v, %+v", files[0], files[len(files)-1])
	}
}

func TestBadProgress(t *testing.T) {
	src := &fakeSource{streams: []int64{10, 10}, failAt: -1}
	for _, p := range []Progress{{Stream: 3}, {Stream: -1}, {Offset: -5}} {
		p.Session = src.session()
		if _, err := exporter(t, src, newBucket()).Run(context.Background(), job, &p, nil); err == nil {
			t.Errorf("progress %d/%d accepted", p.Stream, p.Offset)
		}
	}
	if _, err := exporter(t, src, newBucket()).Run(context.Background(), job, &Progress{}, nil); !errors.Is(err, errNoSession) {
		t.Errorf("no session: %v", err)
	}
}

// TestCancellationStopsEverything: cancelling the context stops Run promptly wherever its
// goroutines are (uploading, paused by the budget, blocked in a read), and leaves none behind.
func TestCancellationStopsEverything(t *testing.T) {
	streams := []int64{20000, 20000, 20000, 20000, 20000}
	for name, setup := range map[string]func(cancel func(), src *fakeSource, b *memBucket, e *Exporter){
		"during uploads": func(cancel func(), src *fakeSource, b *memBucket, e *Exporter) {
			b.before = func(ctx context.Context, n int) error {
				if n == 3 {
					cancel()
				}
				return nil
			}
		},
		"paused by the budget": func(cancel func(), src *fakeSource, b *memBucket, e *Exporter) {
			e.BufferBytes = 1
			b.before = func(ctx context.Context, n int) error {
				// Cancel once the streams ahead have paused: reading stopped.
				go func() {
					for last, stable := int64(-1), 0; stable < 4; time.Sleep(50 * time.Millisecond) {
						if d := src.delivered.Load(); d == last {
							stable++
						} else {
							last, stable = d, 0
						}
					}
					cancel()
				}()
				<-ctx.Done()
				return ctx.Err()
			}
		},
		"blocked in reads": func(cancel func(), src *fakeSource, b *memBucket, e *Exporter) {
			src.hang = map[int]bool{1: true, 2: true, 3: true}
			b.before = func(ctx context.Context, n int) error {
				if n == 2 {
					cancel()
				}
				return nil
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelledAt atomic.Int64
			src := &fakeSource{streams: streams, failAt: -1}
			b := newBucket()
			e := exporter(t, src, b)
			e.MaxStreams = 4
			setup(func() { cancelledAt.CompareAndSwap(0, time.Now().UnixNano()); cancel() }, src, b, e)
			_, err := e.Run(ctx, job, &Progress{Session: src.session()}, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("want context.Canceled, got %v", err)
			}
			stopped := time.Since(time.Unix(0, cancelledAt.Load()))
			t.Logf("Run returned %s after the cancellation", stopped)
			if stopped > 5*time.Second {
				t.Errorf("Run took %s to stop", stopped)
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines after Run, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// uploadsOnly records the snapshots that follow an upload, leaving out the reservations
// recorded before one.
func uploadsOnly(into *[]Progress) func(Progress) {
	done := 0
	return func(p Progress) {
		if len(p.Files) > done {
			done = len(p.Files)
			*into = append(*into, p)
		}
	}
}

// Every upload is covered by a reservation recorded before it: a successor that reads any
// recorded snapshot knows an upper bound of the indexes written.
func TestReservationPrecedesEveryUpload(t *testing.T) {
	src := &fakeSource{streams: []int64{9000, 0, 4000}, failAt: -1}
	b := newBucket()
	reserved := 0
	var bad []string
	e := exporter(t, src, b)
	e.Writer = putHook{b, func(key string) {
		var index int
		fmt.Sscanf(key[strings.LastIndex(key, "_")+1:], "%d", &index)
		if index >= reserved {
			bad = append(bad, fmt.Sprintf("index %d uploaded with %d reserved", index, reserved))
		}
	}}
	files, err := e.Run(context.Background(), job, &Progress{Session: src.session()}, func(p Progress) {
		if p.Reserved < reserved {
			bad = append(bad, fmt.Sprintf("reservation went down from %d to %d", reserved, p.Reserved))
		}
		reserved = p.Reserved
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "; "))
	}
	if reserved <= len(files) || reserved > len(files)+ReserveAhead {
		t.Errorf("final reservation %d for %d shards", reserved, len(files))
	}
}

// A job whose upload window has closed uploads nothing.
func TestUploadWindowClosed(t *testing.T) {
	src := &fakeSource{streams: []int64{5000}, failAt: -1}
	b := newBucket()
	j := job
	j.UploadUntil = time.Now().Add(-time.Second)
	_, err := exporter(t, src, b).Run(context.Background(), j, &Progress{Session: src.session()}, nil)
	if !errors.Is(err, ErrUploadWindowClosed) {
		t.Fatalf("got %v", err)
	}
	if len(b.keys()) != 0 {
		t.Errorf("%d objects uploaded after the window closed", len(b.keys()))
	}
}

type putHook struct {
	*memBucket
	before func(key string)
}

func (h putHook) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	h.before(o.Key)
	return h.memBucket.Put(ctx, o)
}

package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// fakeSource serves streams of generated rows, cut into batches of random sizes: a resumed
// read (seed differs) sees other batch boundaries than the first one, as with BigQuery.
type fakeSource struct {
	streams []int64 // rows per stream
	seed    int64
	// failAt makes Read fail once the stream reaches this many rows (-1: never).
	failStream int
	failAt     int64
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
	rng := rand.New(rand.NewSource(f.seed + int64(si)))
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
		off += n
	}
	return nil
}

func makeRows(stream int, from, n int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		id := int64(stream)*1_000_000 + i
		b.Field(0).(*array.Int64Builder).Append(id)
		if id%7 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d ✓ %s", id, string(rune('a'+id%26))))
		}
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + id))
	}
	return b.NewRecordBatch()
}

// memBucket is an in-memory write-only bucket.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    []string
	failOn  int // fail the failOn-th put (1-based); 0: never
}

func newBucket() *memBucket { return &memBucket{objects: map[string][]byte{}} }

func (b *memBucket) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	data, err := io.ReadAll(o.Body)
	if err != nil {
		return s3dest.PutResult{}, err
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
	var k []string
	for key := range b.objects {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// ids reads every object with arrow-go's parquet reader and returns all ids.
func (b *memBucket) ids(t *testing.T) []int64 {
	t.Helper()
	var ids []int64
	for _, k := range b.keys() {
		rdr, err := file.NewParquetReader(bytes.NewReader(b.objects[k]))
		if err != nil {
			t.Fatalf("%s is not parquet: %v", k, err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		col := tbl.Column(0).Data()
		for _, c := range col.Chunks() {
			ids = append(ids, c.(*array.Int64).Int64Values()...)
		}
		tbl.Release()
		rdr.Close()
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func expectedIDs(streams []int64) []int64 {
	var ids []int64
	for s, n := range streams {
		for i := int64(0); i < n; i++ {
			ids = append(ids, int64(s)*1_000_000+i)
		}
	}
	return ids
}

var job = Job{Table: "events", Prefix: "p", DumpFolder: "2023-03-14T04:03", Extension: ".parquet.gz"}

func exporter(src Reader, b *memBucket) *Exporter {
	return &Exporter{Reader: src, Writer: b, TargetShardBytes: 24 << 10, RowGroupBytes: 8 << 10, TempDir: ""}
}

func TestShardsAreContiguousAndComplete(t *testing.T) {
	src := &fakeSource{streams: []int64{9000, 0, 4000}, failAt: -1}
	b := newBucket()
	var progress []Progress
	files, err := exporter(src, b).Run(context.Background(), job, &Progress{Session: src.session()}, func(p Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want several shards, got %d", len(files))
	}
	for i, f := range files {
		want := fmt.Sprintf("p/2023-03-14T04:03/events/events_%012d.parquet.gz", i)
		if f.Key != want || b.puts[i] != want {
			t.Errorf("shard %d: key %s, put %s, want %s", i, f.Key, b.puts[i], want)
		}
	}
	if len(b.objects) != len(files) {
		t.Errorf("%d objects for %d files", len(b.objects), len(files))
	}
	if got, want := b.ids(t), expectedIDs(src.streams); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows differ: got %d ids, want %d", len(got), len(want))
	}
	if len(progress) != len(files) || len(progress[len(progress)-1].Files) != len(files) {
		t.Errorf("progress recorded %d times for %d shards", len(progress), len(files))
	}
}

// TestResumeReproducesShards: a failure mid-table, resumed from the last recorded progress
// or from an older one (a heartbeat lost in a crash), with different batch boundaries, ends
// with exactly the objects of an uninterrupted run, byte for byte.
func TestResumeReproducesShards(t *testing.T) {
	streams := []int64{7000, 5000}
	clean := newBucket()
	src := &fakeSource{streams: streams, failAt: -1}
	want, err := exporter(src, clean).Run(context.Background(), job, &Progress{Session: src.session()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, lag := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("heartbeat lag %d", lag), func(t *testing.T) {
			b := newBucket()
			failing := &fakeSource{streams: streams, seed: 1, failStream: 1, failAt: 3000}
			var recorded []Progress
			_, err := exporter(failing, b).Run(context.Background(), job, &Progress{Session: failing.session()}, func(p Progress) {
				p.Files = append(p.Files[:0:0], p.Files...)
				recorded = append(recorded, p)
			})
			if err == nil {
				t.Fatal("expected the injected failure")
			}
			resume := Progress{Session: failing.session()}
			if i := len(recorded) - 1 - lag; i >= 0 {
				resume = recorded[i]
			}
			retry := &fakeSource{streams: streams, seed: 99, failAt: -1}
			got, err := exporter(retry, b).Run(context.Background(), job, &resume, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(b.objects) != len(want) {
				t.Fatalf("resumed run has %d files / %d objects, clean run %d", len(got), len(b.objects), len(want))
			}
			for _, k := range clean.keys() {
				if !bytes.Equal(clean.objects[k], b.objects[k]) {
					t.Errorf("%s differs from the uninterrupted run", k)
				}
			}
		})
	}
}

func TestUploadFailureIsReturnedAndResumable(t *testing.T) {
	src := &fakeSource{streams: []int64{8000}, failAt: -1}
	b := newBucket()
	b.failOn = 2
	var last Progress
	_, err := exporter(src, b).Run(context.Background(), job, &Progress{Session: src.session()}, func(p Progress) { last = p })
	if err == nil || len(last.Files) != 1 {
		t.Fatalf("want failure after one shard, got err=%v files=%d", err, len(last.Files))
	}
	files, err := exporter(src, b).Run(context.Background(), job, &last, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ids(t); len(got) != 8000 || len(b.objects) != len(files) {
		t.Errorf("after resume: %d rows in %d objects, %d files", len(got), len(b.objects), len(files))
	}
}

func TestEmptyTableAndPadding(t *testing.T) {
	for name, src := range map[string]*fakeSource{
		"no stream":    {streams: nil, failAt: -1},
		"empty stream": {streams: []int64{0}, failAt: -1},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBucket()
			files, err := exporter(src, b).Run(context.Background(), job, &Progress{Session: src.session()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || files[0].Rows != 0 || len(b.ids(t)) != 0 {
				t.Fatalf("an empty table must give exactly one valid, empty shard: %+v", files)
			}
		})
	}
	// A rerun that needs fewer shards than an earlier pass pads with empty shards, so the
	// earlier pass's higher indexes are overwritten and the count stays true.
	src := &fakeSource{streams: []int64{100}, failAt: -1}
	b := newBucket()
	j := job
	j.MinShards = 4
	files, err := exporter(src, b).Run(context.Background(), j, &Progress{Session: src.session()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || files[0].Rows != 100 || files[3].Rows != 0 || len(b.ids(t)) != 100 {
		t.Fatalf("padding: %+v", files)
	}
}

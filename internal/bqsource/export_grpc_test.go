package bqsource_test

import (
	"bytes"
	"context"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"google.golang.org/grpc/codes"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

type bucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    []string
}

func (b *bucket) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	data, err := io.ReadAll(o.Body)
	if err != nil {
		return s3dest.PutResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[o.Key] = data
	b.puts = append(b.puts, o.Key)
	return s3dest.PutResult{}, nil
}

// TestExportOverGRPC runs the exporter on the real client against a server granting several
// streams, one of which breaks mid-way: every row lands once, the keys are contiguous, and the
// objects equal those of a run where nothing broke.
func TestExportOverGRPC(t *testing.T) {
	run := func(breakStream bool) *bucket {
		f := &bqsource.FakeBigQuery{Rows: 40000, MaxStreams: 4}
		c := bqsource.StartFakeBigQuery(t, f)
		s, err := c.Open(context.Background(), bqsource.TableRef{Project: "p", Dataset: "d", Table: "events"}, time.Time{}, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 4 {
			t.Fatalf("%d streams", len(s.Streams))
		}
		if breakStream {
			f.Break(s.Streams[2], 1500, codes.Unavailable)
		}
		b := &bucket{objects: map[string][]byte{}}
		e := &export.Exporter{Reader: c, Writer: b, TargetShardBytes: 64 << 10, RowGroupBytes: 16 << 10, TempDir: t.TempDir(), MaxStreams: 4}
		files, err := e.Run(context.Background(), export.Job{Table: "events", DumpFolder: "2023-03-14T04:03", Extension: ".parquet"}, &export.Progress{Session: s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 4 || len(b.puts) != len(files) {
			t.Fatalf("%d files, %d puts", len(files), len(b.puts))
		}
		for i, f := range files {
			if b.puts[i] != f.Key {
				t.Fatalf("put %d is %s, file %s", i, b.puts[i], f.Key)
			}
		}
		var ids []int64
		for _, k := range b.puts {
			ids = append(ids, readIDs(t, b.objects[k])...)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		if int64(len(ids)) != f.Rows {
			t.Fatalf("%d rows exported, table has %d", len(ids), f.Rows)
		}
		for i, id := range ids {
			if id != int64(i) {
				t.Fatalf("row %d missing or duplicated", i)
			}
		}
		return b
	}
	clean, broken := run(false), run(true)
	if len(clean.puts) != len(broken.puts) {
		t.Fatalf("%d shards without a break, %d with", len(clean.puts), len(broken.puts))
	}
	for _, k := range clean.puts {
		if !bytes.Equal(clean.objects[k], broken.objects[k]) {
			t.Errorf("%s differs after a broken stream", k)
		}
	}
}

func readIDs(t *testing.T, data []byte) []int64 {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
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
	var ids []int64
	for _, c := range tbl.Column(0).Data().Chunks() {
		ids = append(ids, c.(*array.Int64).Int64Values()...)
	}
	return ids
}

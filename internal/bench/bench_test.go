package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// TestMain lets Run's peak-RSS measurement re-execute this test binary as its child.
func TestMain(m *testing.M) {
	if spec, ok := ChildSpecFromArgs(os.Args[1:]); ok {
		if err := RunChild(context.Background(), spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func minioAvailable() bool {
	_, err := os.Stat(filepath.Join(devstack.DefaultBinDir(), "minio"))
	return err == nil
}

// TestQuickRun runs every measurement at tiny sizes and checks the table's shape: one row per
// metric, every figure measured. MinIO is used only when its binary is there and not -short.
func TestQuickRun(t *testing.T) {
	cfg := QuickConfig()
	cfg.PoolBatches, cfg.BatchRows = 2, 1024
	cfg.EncodeRows = 4096
	cfg.ExportBytes = 4 << 20
	cfg.RSSSmallBytes, cfg.RSSLargeBytes = 1<<20, 4<<20
	cfg.FlatSizes = []int64{1 << 20, 4 << 20}
	cfg.Concurrent, cfg.ConcurrentBytes = []int{1, 2}, 2<<20
	cfg.MinIO = minioAvailable() && !testing.Short()
	cfg.TempDir = t.TempDir()
	var log bytes.Buffer
	cfg.Log = &log
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if len(rep.Rows) != 11 {
		t.Fatalf("%d rows, want 11", len(rep.Rows))
	}
	for i, row := range rep.Rows {
		if row.Met != "yes" && row.Met != "NO" && !(i == 3 && !cfg.MinIO && row.Met == "n/a") {
			t.Errorf("row %q: met %q", row.Metric, row.Met)
		}
		if strings.Contains(row.Ours+row.Baseline+row.Ratio, "NaN") || strings.Contains(row.Ours+row.Baseline+row.Ratio, "Inf") {
			t.Errorf("row %q has a non-number: %+v", row.Metric, row)
		}
	}
	if want := "| metric"; !strings.HasPrefix(out.String(), want) {
		t.Errorf("table does not start with %q", want)
	}
}

// TestSourceResume checks the synthetic source the way the exporter relies on it: a read
// from an offset (inside a batch) hands out exactly the rows a full read has from there; the
// session's schema is a real IPC schema message; event ids are unique.
func TestSourceResume(t *testing.T) {
	src, err := NewSource(SourceOptions{Streams: 3, TableBytes: 2 << 20, PoolBatches: 3, BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	sess := src.Session()
	schema, err := sess.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if !schema.Equal(EventSchema()) {
		t.Fatalf("session schema %s, want %s", schema, EventSchema())
	}
	read := func(stream int, off int64) (ids []string, tss []int64) {
		err := src.Read(context.Background(), sess, sess.Streams[stream], off, func(rec arrow.RecordBatch) error {
			if !rec.Schema().Equal(schema) {
				t.Fatalf("batch schema %s", rec.Schema())
			}
			for i := range int(rec.NumRows()) {
				// Clone: the value points into a buffer the source reuses.
				ids = append(ids, strings.Clone(rec.Column(colEventID).(*array.String).Value(i)))
				tss = append(tss, int64(rec.Column(colTimestamp).(*array.Timestamp).Value(i)))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, tss
	}
	seen := map[string]bool{}
	var rows int64
	for k := range 3 {
		ids, tss := read(k, 0)
		rows += int64(len(ids))
		for _, id := range ids {
			if seen[id] || len(id) != eventIDLen {
				t.Fatalf("event id %q repeated or malformed", id)
			}
			seen[id] = true
		}
		for _, off := range []int64{1, 999, 1000, 1537, int64(len(ids))} {
			rids, rtss := read(k, off)
			if fmt.Sprint(rids) != fmt.Sprint(ids[off:]) || fmt.Sprint(rtss) != fmt.Sprint(tss[off:]) {
				t.Fatalf("stream %d from %d differs from the full read's tail", k, off)
			}
		}
	}
	if rows != src.Rows() {
		t.Fatalf("read %d rows, source has %d", rows, src.Rows())
	}
	if b := src.ArrowBytes(); b < 2<<20 || b > 2<<20+int64(3*src.opts.BatchRows*200) {
		t.Fatalf("table has %d Arrow bytes, want about %d", b, 2<<20)
	}
}

// TestEncodersAgree reads both writers' files back with arrow-go and compares every value
// with the source batches: the throughput comparison is between two correct writers.
func TestEncodersAgree(t *testing.T) {
	src, err := NewSource(SourceOptions{Streams: 1, TableBytes: 1 << 20, PoolBatches: 2, BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	batches := src.Batches(0, 2500)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	for name, enc := range map[string]func(w *bytes.Buffer) (int64, error){
		"parquetenc": func(w *bytes.Buffer) (int64, error) { return EncodeParquetenc(w, src.Schema(), batches) },
		"pqarrow":    func(w *bytes.Buffer) (int64, error) { return EncodePqarrow(w, src.Schema(), batches) },
	} {
		var buf bytes.Buffer
		n, err := enc(&buf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != int64(buf.Len()) {
			t.Fatalf("%s: reported %d bytes, wrote %d", name, n, buf.Len())
		}
		rd, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fr, err := pqarrow.NewFileReader(rd, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tbl.NumRows() != 2500 {
			t.Fatalf("%s: %d rows", name, tbl.NumRows())
		}
		for c := range numCols {
			got := tbl.Column(c).Data()
			want, err := array.Concatenate(columnOf(batches, c), memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			gotArr, err := array.Concatenate(got.Chunks(), memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			// Compare values, not types: readers may map JSON or timestamps' zone differently.
			for i := range want.Len() {
				if want.IsNull(i) != gotArr.IsNull(i) || (!want.IsNull(i) && valueString(want, i) != valueString(gotArr, i)) {
					t.Fatalf("%s: column %s row %d: got %s, want %s", name, src.Schema().Field(c).Name, i, valueString(gotArr, i), valueString(want, i))
				}
			}
			want.Release()
			gotArr.Release()
		}
		tbl.Release()
	}
}

// valueString is a value as text; binary and JSON values as their raw bytes.
func valueString(a arrow.Array, i int) string {
	switch a := a.(type) {
	case array.ExtensionArray:
		return valueString(a.Storage(), i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.String:
		return a.Value(i)
	}
	return a.ValueStr(i)
}

func columnOf(batches []arrow.RecordBatch, c int) []arrow.Array {
	out := make([]arrow.Array, len(batches))
	for i, b := range batches {
		out[i] = b.Column(c)
	}
	return out
}

// BenchmarkEncode compares the writers on the same batches (run with -cpu 1 for the per-core
// figure): rows/s, Arrow MB/s and the file's size.
func BenchmarkEncode(b *testing.B) {
	const rows = 256 << 10
	src, err := NewSource(SourceOptions{Streams: 1, PoolBatches: 16, BatchRows: 8192})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	batches := src.Batches(0, rows)
	defer func() {
		for _, rec := range batches {
			rec.Release()
		}
	}()
	arrowBytes := src.streamBytes(0, 0, rows)
	for _, w := range []struct {
		name string
		enc  func(*arrow.Schema, []arrow.RecordBatch) (int64, error)
	}{
		{"parquetenc", func(s *arrow.Schema, bs []arrow.RecordBatch) (int64, error) { return EncodeParquetenc(nil, s, bs) }},
		{"pqarrow", func(s *arrow.Schema, bs []arrow.RecordBatch) (int64, error) { return EncodePqarrow(nil, s, bs) }},
	} {
		b.Run(w.name, func(b *testing.B) {
			var size int64
			for b.Loop() {
				if size, err = w.enc(src.Schema(), batches); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(arrowBytes)*float64(b.N)/1e6/b.Elapsed().Seconds(), "MB/s")
			b.ReportMetric(float64(size), "file-bytes")
		})
	}
}

// BenchmarkExport exports a 256 MiB table through export.Exporter with production defaults,
// into a discarding writer and, when MinIO's binary is there and not -short, into MinIO
// through STS and SigV4.
func BenchmarkExport(b *testing.B) {
	src, err := NewSource(SourceOptions{Streams: 4, TableBytes: 256 << 20, PoolBatches: 16, BatchRows: 8192})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	ctx := context.Background()
	run := func(b *testing.B, w s3dest.Writer) {
		n := 0
		for b.Loop() {
			n++
			if _, err := runExport(ctx, src, w, b.TempDir(), fmt.Sprintf("2030-01-01T00:%02d", n%60)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(src.ArrowBytes())*float64(b.N)/1e6/b.Elapsed().Seconds(), "MB/s")
		b.ReportMetric(float64(src.Rows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("discard", func(b *testing.B) { run(b, &Discard{}) })
	b.Run("minio", func(b *testing.B) {
		if testing.Short() || !minioAvailable() {
			b.Skip("needs the minio binary (make tools) and no -short")
		}
		st, err := devstack.StartMinIO(ctx, devstack.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Stop()
		w, err := minioWriter(ctx, st.S3Endpoint, st.ExporterSecret)
		if err != nil {
			b.Fatal(err)
		}
		run(b, w)
	})
}

// BenchmarkSource is the synthetic source alone on one stream: it must be far faster than
// the exports it feeds.
func BenchmarkSource(b *testing.B) {
	src, err := NewSource(SourceOptions{Streams: 1, TableBytes: 256 << 20, PoolBatches: 16, BatchRows: 8192})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	sess := src.Session()
	for b.Loop() {
		if err := src.Read(context.Background(), sess, sess.Streams[0], 0, func(arrow.RecordBatch) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.ArrowBytes())*float64(b.N)/1e6/b.Elapsed().Seconds(), "MB/s")
}

package bench

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
)

// countingDiscard counts bytes and keeps none.
type countingDiscard int64

func (c *countingDiscard) Write(p []byte) (int, error) {
	*c += countingDiscard(len(p))
	return len(p), nil
}

// EncodeParquetenc writes batches into one parquet file with this service's writer, with
// its default options (the exporter's), and returns the file's size.
func EncodeParquetenc(w io.Writer, schema *arrow.Schema, batches []arrow.RecordBatch) (int64, error) {
	var n countingDiscard
	out := io.Writer(&n)
	if w != nil {
		out = io.MultiWriter(w, &n)
	}
	pw, err := parquetenc.NewWriter(out, schema, parquetenc.Options{})
	if err != nil {
		return 0, err
	}
	for _, rec := range batches {
		for from := int64(0); from < rec.NumRows(); {
			k, _, err := pw.Append(rec, from)
			if err != nil {
				return 0, err
			}
			from += k
		}
	}
	if err := pw.Close(); err != nil {
		return 0, err
	}
	return int64(n), nil
}

// EncodePqarrow writes batches into one parquet file with arrow-go's pqarrow writer, GZIP
// codec, its other properties at their defaults (dictionaries on, 1 MiB pages, one row group
// for everything WriteBuffered gets), and returns the file's size.
func EncodePqarrow(w io.Writer, schema *arrow.Schema, batches []arrow.RecordBatch) (int64, error) {
	var n countingDiscard
	out := io.Writer(&n)
	if w != nil {
		out = io.MultiWriter(w, &n)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Gzip))
	pw, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return 0, err
	}
	for _, rec := range batches {
		if err := pw.WriteBuffered(rec); err != nil {
			return 0, err
		}
	}
	if err := pw.Close(); err != nil {
		return 0, err
	}
	return int64(n), nil
}

// encodeResult is one writer's best pass over the batches.
type encodeResult struct {
	Rows, ArrowBytes, FileBytes int64
	Best                        time.Duration
	Passes                      []time.Duration
}

func (r encodeResult) rowsPerSec() float64 { return float64(r.Rows) / r.Best.Seconds() }
func (r encodeResult) mbPerSec() float64   { return float64(r.ArrowBytes) / 1e6 / r.Best.Seconds() }

// compareEncode times both writers on the same batches on one core (GOMAXPROCS=1, so the
// garbage collector's work counts too), alternating them pass by pass so that a neighbour's
// load hits both alike, and keeps each one's fastest pass.
func compareEncode(src *Source, rows int64, passes int, logf func(string, ...any)) (ours, base encodeResult, err error) {
	batches := src.Batches(0, rows)
	defer func() {
		for _, rec := range batches {
			rec.Release()
		}
	}()
	arrowBytes := src.streamBytes(0, 0, rows)
	ours = encodeResult{Rows: rows, ArrowBytes: arrowBytes}
	base = ours
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	run := func(res *encodeResult, name string, f func(io.Writer, *arrow.Schema, []arrow.RecordBatch) (int64, error)) error {
		runtime.GC()
		t0 := time.Now()
		size, err := f(nil, src.Schema(), batches)
		d := time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if res.FileBytes != 0 && res.FileBytes != size {
			return fmt.Errorf("%s: file size changed between passes: %d then %d", name, res.FileBytes, size)
		}
		res.FileBytes = size
		res.Passes = append(res.Passes, d)
		if res.Best == 0 || d < res.Best {
			res.Best = d
		}
		logf("encode pass %d %-10s %6.2fs  %s", len(res.Passes), name, d.Seconds(), mib(size))
		return nil
	}
	for i := range passes {
		first, second := &ours, &base
		fn1, fn2, n1, n2 := EncodeParquetenc, EncodePqarrow, "parquetenc", "pqarrow"
		if i%2 == 1 {
			first, second, fn1, fn2, n1, n2 = second, first, fn2, fn1, n2, n1
		}
		if err := run(first, n1, fn1); err != nil {
			return ours, base, err
		}
		if err := run(second, n2, fn2); err != nil {
			return ours, base, err
		}
	}
	return ours, base, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

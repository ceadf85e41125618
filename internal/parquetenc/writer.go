// Package parquetenc encodes the Arrow record batches that BigQuery's Storage
// Read API returns into one standard parquet file (magic PAR1) whose column
// chunks are GZIP-compressed, in the parquet format's own structures as
// github.com/xitongsys/parquet-go defines them (its thrift types).
//
// Every BigQuery type is written exactly; docs/types.md has the type matrix.
// RECORD columns become parquet groups and REPEATED columns the standard
// 3-level LIST, at any depth; INTERVAL becomes a group of its three integer
// parts and RANGE a group {start, end}.
//
// The library's row path (reflection, values boxed in interfaces, its page
// and row-group writer) is bypassed: values and their definition and
// repetition levels are computed column by column straight from the Arrow
// arrays into typed buffers; pages are encoded from those buffers (PLAIN or
// dictionary indices bit-packed at the dictionary's width, levels in
// RLE/bit-packed hybrid runs) and gzipped with one reused compressor;
// row-group and page boundaries are decided here from the row values alone
// (so a file does not depend on how rows were split into batches); chunk
// statistics and the footer are written here.
package parquetenc

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/xitongsys/parquet-go/parquet"
)

const (
	// DefaultRowGroupBytes is the default estimated uncompressed size of a row
	// group. A writer keeps a whole row group in memory (as compressed
	// pages), so this bounds memory per writer; 32 MiB keeps row groups large
	// enough for readers to skip and scan efficiently.
	DefaultRowGroupBytes int64 = 32 << 20

	// DefaultPageBytes is the default estimated uncompressed size of a data
	// page. Gzip compresses larger pages better; 1 MiB is the usual reader
	// friendly size (parquet-mr and arrow use the same order of magnitude).
	DefaultPageBytes int64 = 1 << 20

	// MaxPageValues caps the number of values in one page whatever their size,
	// so that a page of tiny values (NULLs, booleans) stays a page of
	// reasonable length for readers. Pages hold whole rows, so one row whose
	// array has more elements makes one larger page.
	MaxPageValues = 128 << 10

	// DictionaryBytesLimit is the dictionary size per column chunk above which
	// a column falls back to plain encoding for the rest of the row group
	// (parquet-mr and arrow fall back at 1 MiB too): a bigger dictionary means
	// the column is not repetitive enough for the dictionary to pay.
	DictionaryBytesLimit int64 = 1 << 20

	// MaxStatisticsValueBytes is the longest min or max value written into a
	// column chunk's statistics; longer values would bloat the footer that
	// every reader loads, so such chunks carry only their null count
	// (arrow uses the same limit).
	MaxStatisticsValueBytes = 4096

	// CreatedBy is written into the footer so that readers can tell which
	// writer produced a file (and which writer bugs to work around).
	CreatedBy = "destination-aws-s3"

	// nullBytes is what a NULL adds to the size estimates: not zero, so that
	// an all-NULL column still closes pages and row groups.
	nullBytes = 1

	// sizeScanRows is the most rows Append measures at a time while looking
	// for the end of the row group; it starts with minSizeScanRows and
	// doubles, so that a call that ends a row group soon measures few rows
	// past its end (measuring nested columns means walking their arrays).
	sizeScanRows    = 4096
	minSizeScanRows = 128

	// maxPageBytes bounds Options.PageBytes: page sizes are int32 in the
	// parquet format.
	maxPageBytes int64 = 1 << 30
)

// ErrClosed is returned by Append on a Writer that has been closed.
var ErrClosed = errors.New("parquetenc: writer is closed")

// Options tune one Writer. Zero values mean the documented defaults.
type Options struct {
	RowGroupBytes int64 // estimated uncompressed bytes per row group; default 32 MiB (DefaultRowGroupBytes)
	PageBytes     int64 // estimated uncompressed bytes per data page; default 1 MiB (DefaultPageBytes)
}

func resolveOptions(o Options) (Options, error) {
	if o.RowGroupBytes < 0 || o.PageBytes < 0 {
		return o, fmt.Errorf("parquetenc: negative size in options %+v", o)
	}
	if o.RowGroupBytes == 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.PageBytes == 0 {
		o.PageBytes = DefaultPageBytes
	}
	if o.PageBytes > maxPageBytes {
		return o, fmt.Errorf("parquetenc: PageBytes %d above the limit of %d", o.PageBytes, maxPageBytes)
	}
	return o, nil
}

// Writer encodes Arrow record batches of one table into ONE parquet file
// written to w. A Writer is not safe for concurrent use.
type Writer struct {
	opts   Options
	out    *countingWriter
	fields []*field  // top-level columns, in record order
	cols   []*column // leaf columns, in schema order (the order of column chunks)
	schema []*parquet.SchemaElement
	groups []*parquet.RowGroup // written so far
	enc    *pageEncoder
	// rowSizes is scratch space for Append's per-row size estimates.
	rowSizes []int64

	// dictLimit is DictionaryBytesLimit; a field so tests can reach the
	// fallback with little data.
	dictLimit int64

	rows       int64 // rows appended so far
	groupRows  int64 // rows in the open row group
	groupBytes int64 // estimated bytes in the open row group
	closed     bool
	err        error // sticky: once encoding or writing failed, the file is unusable
}

// NewWriter checks that every column of schema can be encoded, writes the
// parquet magic to w and returns a Writer. The error names the unsupported
// column and type.
func NewWriter(w io.Writer, schema *arrow.Schema, opts Options) (*Writer, error) {
	opts, err := resolveOptions(opts)
	if err != nil {
		return nil, err
	}
	ps, err := buildSchema(schema)
	if err != nil {
		return nil, err
	}
	enc := &Writer{
		opts:      opts,
		out:       &countingWriter{w: w},
		fields:    ps.fields,
		cols:      ps.leaves,
		schema:    ps.elems,
		dictLimit: DictionaryBytesLimit,
	}
	if _, err := enc.out.Write([]byte(parquetMagic)); err != nil {
		return nil, fmt.Errorf("parquetenc: writing the parquet header: %w", err)
	}
	return enc, nil
}

// Append encodes rows [from, rec.NumRows()) of rec, but stops right after a
// row group has been flushed to w. It returns how many rows it consumed and
// whether a row group was flushed. The caller releases rec; Append copies the
// values out and does not retain it.
//
// Row-group boundaries depend only on the row values (an estimate of each
// row's uncompressed size, accumulated row by row), never on how rows were
// split into record batches: appending the same rows in batches of any sizes
// yields byte-identical files.
func (w *Writer) Append(rec arrow.RecordBatch, from int64) (consumed int64, flushed bool, err error) {
	if w.err != nil {
		return 0, false, w.err
	}
	if w.closed {
		return 0, false, ErrClosed
	}
	if err := w.checkRecord(rec, from); err != nil {
		return 0, false, err
	}
	n := rec.NumRows()
	if from == n {
		return 0, false, nil
	}
	defer func() {
		if err != nil {
			w.err = err
		}
	}()
	defer recoverInto(&err, "encoding a record batch")

	if w.enc == nil {
		// Buffers are taken at the first rows, not in NewWriter: a writer
		// made only to check a schema takes none.
		w.enc = getPageEncoder()
		for _, c := range w.cols {
			c.takeBuffers()
		}
	}
	end, full := w.rowGroupEnd(rec, from)
	for i, f := range w.fields {
		for _, c := range f.leaves {
			if err := c.appendRange(w, rec.Column(i), int(from), int(end)); err != nil {
				return 0, false, fmt.Errorf("parquetenc: column %q: %w", c.name, err)
			}
		}
	}
	consumed = end - from
	w.rows += consumed
	w.groupRows += consumed
	if full {
		if err := w.flushRowGroup(); err != nil {
			return 0, false, err
		}
		return consumed, true, nil
	}
	return consumed, false, nil
}

// checkRecord refuses batches whose columns do not match the writer's schema:
// the typed appenders rely on it.
func (w *Writer) checkRecord(rec arrow.RecordBatch, from int64) error {
	if from < 0 || from > rec.NumRows() {
		return fmt.Errorf("parquetenc: from %d out of range [0, %d]", from, rec.NumRows())
	}
	if int(rec.NumCols()) != len(w.fields) {
		return fmt.Errorf("parquetenc: record has %d columns, schema has %d", rec.NumCols(), len(w.fields))
	}
	for i, f := range w.fields {
		col := rec.Column(i)
		if !arrow.TypeEqual(col.DataType(), f.arrowType) {
			return fmt.Errorf("parquetenc: column %q: record type %s, schema type %s", f.name, col.DataType(), f.arrowType)
		}
		// NULLs in non-nullable nested fields are found while walking the
		// rows (column.walk).
		if !f.optional && col.NullN() > 0 {
			return fmt.Errorf("parquetenc: column %q is not nullable but the record has %d NULLs", f.name, col.NullN())
		}
	}
	return nil
}

// rowGroupEnd returns the row (exclusive) where the open row group reaches
// RowGroupBytes, or the end of rec, and whether the row group is full. Rows
// are measured in growing slices (minSizeScanRows doubling up to
// sizeScanRows), so a large batch that holds many row groups is not measured
// again to its end on every call. Slicing does not move the boundary: it
// depends on the sum of per-row sizes only.
func (w *Writer) rowGroupEnd(rec arrow.RecordBatch, from int64) (end int64, full bool) {
	n := rec.NumRows()
	if w.rowSizes == nil {
		w.rowSizes = make([]int64, sizeScanRows)
	}
	scan := int64(minSizeScanRows)
	for start := from; start < n; start, scan = start+scan, min(2*scan, sizeScanRows) {
		sizes := w.rowSizes[:min(scan, n-start)]
		clear(sizes)
		for i, f := range w.fields {
			for _, c := range f.leaves {
				c.addRowSizes(rec.Column(i), int(start), sizes)
			}
		}
		for i, s := range sizes {
			w.groupBytes += s
			if w.groupBytes >= w.opts.RowGroupBytes {
				return start + int64(i) + 1, true
			}
		}
	}
	return n, false
}

// flushPage encodes the pending values of one column into a compressed page
// kept until the row group is written.
func (w *Writer) flushPage(c *column) error {
	if err := w.encodePage(c); err != nil {
		return fmt.Errorf("parquetenc: column %q: %w", c.name, err)
	}
	c.resetPage()
	return nil
}

// flushRowGroup encodes every pending page and writes the row group to w:
// each column chunk is its dictionary page, if any, then its data pages.
func (w *Writer) flushRowGroup() error {
	if w.groupRows == 0 {
		return nil
	}
	for _, c := range w.cols {
		if c.n > 0 {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	start := w.out.n
	rg := &parquet.RowGroup{NumRows: w.groupRows, FileOffset: &start}
	if len(w.groups) <= math.MaxInt16 {
		ordinal := int16(len(w.groups))
		rg.Ordinal = &ordinal
	}
	var total, compressed int64
	for _, c := range w.cols {
		cc, err := w.writeChunk(c)
		if err != nil {
			return fmt.Errorf("parquetenc: column %q: %w", c.name, err)
		}
		rg.Columns = append(rg.Columns, cc)
		total += cc.MetaData.TotalUncompressedSize
		compressed += cc.MetaData.TotalCompressedSize
	}
	rg.TotalByteSize = total
	rg.TotalCompressedSize = &compressed
	w.groups = append(w.groups, rg)
	for _, c := range w.cols {
		c.resetRowGroup()
	}
	w.groupRows = 0
	w.groupBytes = 0
	return nil
}

// writeChunk writes c's column chunk of the open row group and returns its
// metadata.
func (w *Writer) writeChunk(c *column) (*parquet.ColumnChunk, error) {
	ch := &c.chunk
	start := w.out.n
	md := &parquet.ColumnMetaData{
		Type:           c.ptype,
		Encodings:      []parquet.Encoding{parquet.Encoding_PLAIN, parquet.Encoding_RLE},
		PathInSchema:   c.pathInSchema,
		Codec:          parquet.CompressionCodec_GZIP,
		NumValues:      ch.numValues,
		DataPageOffset: start,
		Statistics:     c.stats.encode(c),
	}
	var dictBytes, dictUncompressed int64
	if ch.dictPages {
		md.Encodings = append(md.Encodings, parquet.Encoding_PLAIN_DICTIONARY)
		page, uncompressed, err := w.dictionaryPage(c)
		if err != nil {
			return nil, err
		}
		if _, err := w.out.Write(page); err != nil {
			return nil, fmt.Errorf("writing a row group: %w", err)
		}
		md.DictionaryPageOffset = &start
		md.DataPageOffset = w.out.n
		dictBytes, dictUncompressed = int64(len(page)), uncompressed
	}
	if err := ch.buf.writeTo(w.out); err != nil {
		return nil, fmt.Errorf("writing a row group: %w", err)
	}
	md.TotalCompressedSize = dictBytes + int64(ch.buf.n)
	md.TotalUncompressedSize = dictUncompressed + ch.uncompressed
	return &parquet.ColumnChunk{FileOffset: start, MetaData: md}, nil
}

// Close flushes the last row group and writes the footer. It is valid with 0
// rows: the file then has the full schema and no row group. Close does not
// close the underlying io.Writer.
func (w *Writer) Close() (err error) {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	defer func() {
		if err != nil {
			w.err = err
		}
	}()
	defer recoverInto(&err, "closing the parquet file")
	if err := w.flushRowGroup(); err != nil {
		return err
	}
	if err := w.writeFooter(); err != nil {
		return err
	}
	w.closed = true
	if w.enc != nil {
		// In reverse: the next writer takes them back in column order, so
		// each column tends to get the buffers of the same column, grown to
		// its size.
		for i := len(w.cols) - 1; i >= 0; i-- {
			w.cols[i].releaseBuffers()
		}
		putPageEncoder(w.enc)
		w.enc = nil
	}
	return nil
}

// Rows returns the number of rows appended so far.
func (w *Writer) Rows() int64 { return w.rows }

// BytesWritten returns the number of bytes written to the underlying writer
// so far. It grows when a row group is flushed and when the file is closed,
// so callers can roll over to a new file at row-group boundaries.
func (w *Writer) BytesWritten() int64 { return w.out.n }

// countingWriter counts what reaches the destination, for BytesWritten.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// recoverInto turns a panic (an Arrow array that does not match its type,
// an internal error) into an error describing what was being done.
func recoverInto(err *error, doing string) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("parquetenc: panic while %s: %w", doing, e)
			return
		}
		*err = fmt.Errorf("parquetenc: panic while %s: %v", doing, r)
	}
}

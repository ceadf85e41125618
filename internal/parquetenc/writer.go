// Package parquetenc encodes the Arrow record batches that BigQuery's Storage
// Read API returns into one standard parquet file (magic PAR1) whose column
// chunks are GZIP-compressed, using github.com/xitongsys/parquet-go.
//
// Every BigQuery type is written exactly; docs/types.md has the type matrix.
// RECORD columns become parquet groups and REPEATED columns the standard
// 3-level LIST, at any depth; INTERVAL becomes a group of its three integer
// parts and RANGE a group {start, end}.
//
// The library is used for what it does well (page encoding, dictionaries,
// compression, row-group layout) and bypassed where it is slow or wrong:
// values and their definition and repetition levels are computed column by
// column straight from the Arrow arrays (no reflection, no per-row Go
// values), row-group and page boundaries are decided here from the row
// values alone (so a file does not depend on how rows were split into
// batches), chunk statistics are computed here (the library miscounts nulls
// and lets NaN into bounds), and the footer is written here (the library's
// WriteStop writes page indexes that are misaligned for dictionary chunks).
// The Writer recovers the library's panics into errors.
package parquetenc

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/xitongsys/parquet-go/layout"
	"github.com/xitongsys/parquet-go/parquet"
	"github.com/xitongsys/parquet-go/schema"
	"github.com/xitongsys/parquet-go/writer"
)

const (
	// DefaultRowGroupBytes is the default estimated uncompressed size of a row
	// group. The library keeps a whole row group in memory (as compressed
	// pages), so this bounds memory per writer; 32 MiB keeps row groups large
	// enough for readers to skip and scan efficiently.
	DefaultRowGroupBytes int64 = 32 << 20

	// DefaultPageBytes is the default estimated uncompressed size of a data
	// page. Gzip compresses larger pages better; 1 MiB is the usual reader
	// friendly size (parquet-mr and arrow use the same order of magnitude).
	DefaultPageBytes int64 = 1 << 20

	// MaxPageValues caps the number of values in one page whatever their size,
	// so that a page of tiny values (NULLs, booleans) does not turn into
	// millions of boxed values in the library's []interface{} tables. Pages
	// hold whole rows, so one row whose array has more elements makes one
	// larger page.
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
	// parquet format and the library.
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
	pw     *writer.ParquetWriter
	fields []*field  // top-level columns, in record order
	cols   []*column // leaf columns, in schema order (the order of column chunks)

	// marshalOut holds the tables handed to the library by the next Flush,
	// through pw.MarshalFunc.
	marshalOut map[string]*layout.Table
	// oneObject is what pw.Objs is set to before a Flush that must encode
	// marshalOut: the library only calls MarshalFunc when it has objects.
	oneObject []interface{}
	// zeros backs the levels of columns that have none (repetition levels of
	// columns outside lists, definition levels of REQUIRED columns outside
	// OPTIONAL groups); the library only reads them.
	zeros []int32
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
		oneObject: []interface{}{struct{}{}},
		dictLimit: DictionaryBytesLimit,
	}
	if err := enc.newParquetWriter(ps); err != nil {
		return nil, err
	}
	return enc, nil
}

func (w *Writer) newParquetWriter(ps *parquetSchema) (err error) {
	defer recoverInto(&err, "creating the parquet writer")
	// One goroutine: the library would only split pw.Objs, which we keep at
	// one placeholder object per Flush.
	pw, err := writer.NewParquetWriterFromWriter(w.out, nil, 1)
	if err != nil {
		return fmt.Errorf("parquetenc: writing the parquet header: %w", err)
	}
	elems := ps.elems
	sh := schema.NewSchemaHandlerFromSchemaList(elems)
	// The handler derived its internal names and page-map keys from the
	// placeholder names (see buildSchema); from here on the elements carry the
	// exact names (columns, RECORD fields, LIST's list and element) that go
	// into the footer, at every nesting level.
	for i, e := range elems {
		e.Name = ps.names[i]
		sh.Infos[i].ExName = ps.names[i]
	}
	for _, c := range w.cols {
		tag := sh.Infos[c.elem]
		if c.dictCapable {
			tag.Encoding = parquet.Encoding_PLAIN_DICTIONARY
		}
		tag.OmitStats = true
		c.dictTag = tag
		plain := *tag
		plain.Encoding = parquet.Encoding_PLAIN
		c.plainTag = &plain
		if got := sh.IndexMap[int32(c.elem)]; got != c.key {
			return fmt.Errorf("parquetenc: column %q: schema handler path %q, want %q", c.name, got, c.key)
		}
	}
	if got := len(sh.ValueColumns); got != len(w.cols) {
		return fmt.Errorf("parquetenc: internal error: schema handler has %d leaves, want %d", got, len(w.cols))
	}
	pw.SchemaHandler = sh
	pw.Footer.Schema = elems
	createdBy := CreatedBy
	pw.Footer.CreatedBy = &createdBy
	pw.CompressionType = parquet.CompressionCodec_GZIP
	// Page and row-group boundaries are decided by this package from its own
	// estimates (so they depend only on the values): the library must put each
	// table it is given into one page and never close a row group by itself.
	pw.PageSize = math.MaxInt32
	pw.RowGroupSize = math.MaxInt64
	pw.MarshalFunc = w.marshal
	w.pw = pw
	return nil
}

// marshal is the library's MarshalFunc: the tables were already built, column
// by column, from the Arrow arrays.
func (w *Writer) marshal(_ []interface{}, _ *schema.SchemaHandler) (*map[string]*layout.Table, error) {
	out := w.marshalOut
	w.marshalOut = nil
	if out == nil {
		return nil, errors.New("parquetenc: internal error: nothing to marshal")
	}
	return &out, nil
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
// kept by the library until the row group is flushed.
func (w *Writer) flushPage(c *column) error {
	t, err := c.buildTable(w)
	if err != nil {
		return err
	}
	if err := w.encodeTables(map[string]*layout.Table{c.key: t}); err != nil {
		return fmt.Errorf("parquetenc: column %q: %w", c.name, err)
	}
	c.afterPage(w)
	return nil
}

// encodeTables has the library turn tables into compressed pages.
func (w *Writer) encodeTables(tables map[string]*layout.Table) (err error) {
	defer recoverInto(&err, "encoding pages")
	w.marshalOut = tables
	// The library marshals pw.Objs only; one placeholder makes it call
	// w.marshal once. It counts that object as a row in pw.NumRows and
	// Footer.NumRows: both are overwritten with the real counts when the row
	// group and the footer are written.
	w.pw.Objs = w.oneObject
	return w.pw.Flush(false)
}

// flushRowGroup encodes every pending page and writes the row group to w.
func (w *Writer) flushRowGroup() (err error) {
	if w.groupRows == 0 {
		return nil
	}
	tables := make(map[string]*layout.Table, len(w.cols))
	for _, c := range w.cols {
		if c.n == 0 {
			continue
		}
		t, err := c.buildTable(w)
		if err != nil {
			return fmt.Errorf("parquetenc: column %q: %w", c.name, err)
		}
		tables[c.key] = t
	}
	if len(tables) > 0 {
		if err := w.encodeTables(tables); err != nil {
			return err
		}
		for _, c := range w.cols {
			c.afterPage(w)
		}
	}
	if err := w.writeRowGroup(); err != nil {
		return err
	}
	for _, c := range w.cols {
		c.resetRowGroup()
	}
	w.groupRows = 0
	w.groupBytes = 0
	return nil
}

// writeRowGroup has the library write the buffered pages as one row group,
// then fixes the row group's metadata.
func (w *Writer) writeRowGroup() (err error) {
	defer recoverInto(&err, "writing a row group")
	pw := w.pw
	for _, pages := range pw.PagesMapBuf {
		for _, p := range pages {
			// Pages carry no statistics (OmitStats): the library's page null
			// counts are wrong. But for dictionary chunks it reads OmitStats
			// from the dictionary page it creates itself (always false) and
			// dereferences every data page's NullCount.
			if p.NullCount == nil {
				p.NullCount = new(int64)
			}
		}
	}
	before := len(pw.Footer.RowGroups)
	pw.Objs = pw.Objs[:0]
	if err := pw.Flush(true); err != nil {
		return fmt.Errorf("parquetenc: writing a row group: %w", err)
	}
	// The library also builds page indexes, which this package does not write
	// (see writeFooter): drop them instead of keeping them for the whole file.
	pw.ColumnIndexes = pw.ColumnIndexes[:0]
	pw.OffsetIndexes = pw.OffsetIndexes[:0]
	pw.NumRows = 0
	if len(pw.Footer.RowGroups) != before+1 {
		return errors.New("parquetenc: internal error: the library wrote no row group")
	}
	rg := pw.Footer.RowGroups[before]
	if len(rg.Columns) != len(w.cols) {
		return fmt.Errorf("parquetenc: internal error: row group has %d column chunks, schema has %d columns", len(rg.Columns), len(w.cols))
	}
	rg.NumRows = w.groupRows
	ordinal := int16(before)
	if before <= math.MaxInt16 {
		rg.Ordinal = &ordinal
	}
	var compressed int64
	for i, cc := range rg.Columns {
		c := w.cols[i]
		md := cc.MetaData
		// The library records paths with its internal root and column names
		// and renames them only in WriteStop, which is not used.
		md.PathInSchema = c.pathInSchema
		md.Statistics = c.stats.encode(c)
		compressed += md.TotalCompressedSize
	}
	start := rg.Columns[0].MetaData.DataPageOffset
	if off := rg.Columns[0].MetaData.DictionaryPageOffset; off != nil && *off < start {
		start = *off
	}
	rg.FileOffset = &start
	rg.TotalCompressedSize = &compressed
	return nil
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

// recoverInto turns a panic (the library panics on some malformed input
// instead of returning errors) into an error describing what was being done.
func recoverInto(err *error, doing string) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("parquetenc: panic while %s: %w", doing, e)
			return
		}
		*err = fmt.Errorf("parquetenc: panic while %s: %v", doing, r)
	}
}

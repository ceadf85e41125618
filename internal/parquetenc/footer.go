package parquetenc

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/xitongsys/parquet-go/parquet"
)

// parquetMagic starts and ends every parquet file.
const parquetMagic = "PAR1"

// writeFooter writes the file metadata, its length and the closing magic.
//
// It replaces the library's WriteStop, which writes column indexes whose
// entries are misaligned for dictionary-encoded chunks (one entry per page
// including the dictionary page), never mark all-NULL pages and, with the
// page statistics omitted, carry empty bounds: readers that filter pages by
// them (Trino/Athena, parquet-mr) could skip rows they must return. Page
// indexes are optional, so none are written. This also does not depend on
// WriteStop's handling of a file without rows (a known panic in some uses).
func (w *Writer) writeFooter() error {
	f := w.pw.Footer
	f.NumRows = w.rows // the library counted its placeholder objects instead
	if f.RowGroups == nil {
		f.RowGroups = []*parquet.RowGroup{}
	}
	// Without column_orders, min_value/max_value have no defined meaning
	// (parquet.thrift): declare the type-defined order for every column.
	f.ColumnOrders = make([]*parquet.ColumnOrder, len(w.cols))
	for i := range f.ColumnOrders {
		f.ColumnOrders[i] = &parquet.ColumnOrder{TYPE_ORDER: parquet.NewTypeDefinedOrder()}
	}
	ts := thrift.NewTSerializer()
	ts.Protocol = thrift.NewTCompactProtocolFactoryConf(&thrift.TConfiguration{}).GetProtocol(ts.Transport)
	meta, err := ts.Write(context.Background(), f)
	if err != nil {
		return fmt.Errorf("parquetenc: encoding the footer: %w", err)
	}
	if len(meta) > math.MaxUint32 {
		return fmt.Errorf("parquetenc: footer of %d bytes is too large", len(meta))
	}
	tail := binary.LittleEndian.AppendUint32(nil, uint32(len(meta)))
	tail = append(tail, parquetMagic...)
	for _, b := range [][]byte{meta, tail} {
		if _, err := w.out.Write(b); err != nil {
			return fmt.Errorf("parquetenc: writing the footer: %w", err)
		}
	}
	return nil
}

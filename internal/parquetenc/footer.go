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
// No page indexes are written: they are optional, and the library's
// (WriteStop, not used) are misaligned for dictionary-encoded chunks.
func (w *Writer) writeFooter() error {
	createdBy := CreatedBy
	f := &parquet.FileMetaData{
		Version:   1,
		Schema:    w.schema,
		NumRows:   w.rows,
		RowGroups: w.groups,
		CreatedBy: &createdBy,
	}
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

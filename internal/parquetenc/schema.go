package parquetenc

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/xitongsys/parquet-go/common"
	"github.com/xitongsys/parquet-go/parquet"
)

const (
	// rootName is the name of the parquet schema's root element (arrow's
	// writer uses the same).
	rootName = "schema"

	// internalRoot and internalColumnPrefix name the schema elements while the
	// library's schema handler is built: it derives its internal names with
	// common.StringToVariableName, which can map two distinct column names
	// (unicode, spaces, "a b" and "A32b") to the same key. Placeholders keep
	// the keys unique; the exact names are put back before anything is
	// written.
	internalRoot         = "Root"
	internalColumnPrefix = "C"

	// extensionNameKey is the Arrow field metadata key under which BigQuery
	// names its SQL type when the Arrow type alone is ambiguous.
	extensionNameKey = "ARROW:extension:name"
	// bigQueryJSON marks a utf8 column holding BigQuery JSON values.
	bigQueryJSON = "google:sqlType:json"

	// decimal128Bytes is the size of an Arrow decimal128 value.
	decimal128Bytes = 16
	// decimal256TextBytes is the size estimate of a BIGNUMERIC value written
	// as text (the estimate must not depend on formatting the value twice).
	decimal256TextBytes = 32
)

// ErrNestedNotSupported is wrapped by NewWriter's error for STRUCT and LIST
// columns.
var ErrNestedNotSupported = errors.New("RECORD/REPEATED columns are not supported yet")

// storage is how a column keeps its pending values before they become a page.
type storage int

const (
	storeBool    storage = iota // BOOLEAN
	storeInt32                  // INT32
	storeInt64                  // INT64
	storeDouble                 // DOUBLE
	storeBytes                  // BYTE_ARRAY
	storeDecimal                // FIXED_LEN_BYTE_ARRAY from decimal128
)

// buildSchema maps an Arrow schema to parquet columns and the flat list of
// schema elements (root first) that the library's schema handler takes.
func buildSchema(s *arrow.Schema) ([]*column, []*parquet.SchemaElement, error) {
	if s == nil || s.NumFields() == 0 {
		return nil, nil, errors.New("parquetenc: schema has no columns")
	}
	fields := s.Fields()
	numChildren := int32(len(fields))
	elems := []*parquet.SchemaElement{{Name: internalRoot, NumChildren: &numChildren}}
	cols := make([]*column, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for i, f := range fields {
		if seen[f.Name] {
			return nil, nil, fmt.Errorf("parquetenc: duplicate column name %q", f.Name)
		}
		seen[f.Name] = true
		c, elem, err := newColumn(i, f)
		if err != nil {
			return nil, nil, fmt.Errorf("parquetenc: column %q (%s): %w", f.Name, f.Type, err)
		}
		cols = append(cols, c)
		elems = append(elems, elem)
	}
	return cols, elems, nil
}

// newColumn maps one Arrow field to its parquet schema element, with both the
// (legacy) ConvertedType and the LogicalType set where they exist, so that old
// and new readers agree on the type.
func newColumn(i int, f arrow.Field) (*column, *parquet.SchemaElement, error) {
	internal := internalColumnPrefix + strconv.Itoa(i)
	path := []string{internalRoot, internal}
	c := &column{
		index:     i,
		name:      f.Name,
		arrowType: f.Type,
		optional:  f.Nullable,
		path:      path,
		key:       common.PathToStr(path),
	}
	rep := parquet.FieldRepetitionType_REQUIRED
	if f.Nullable {
		rep = parquet.FieldRepetitionType_OPTIONAL
		c.maxDef = 1
	}
	elem := &parquet.SchemaElement{Name: internal, RepetitionType: &rep}
	setType := func(t parquet.Type) { elem.Type = &t }
	setConverted := func(ct parquet.ConvertedType) { elem.ConvertedType = &ct }

	switch t := f.Type.(type) {
	case *arrow.BooleanType:
		setType(parquet.Type_BOOLEAN)
		c.store, c.width = storeBool, 1
	case *arrow.Int64Type:
		setType(parquet.Type_INT64)
		c.store, c.width = storeInt64, 8
	case *arrow.Float64Type:
		setType(parquet.Type_DOUBLE)
		c.store, c.width = storeDouble, 8
	case *arrow.StringType, *arrow.LargeStringType:
		setType(parquet.Type_BYTE_ARRAY)
		c.store, c.dictCapable = storeBytes, true
		if ext, _ := fieldExtension(f); ext == bigQueryJSON {
			setConverted(parquet.ConvertedType_JSON)
			elem.LogicalType = &parquet.LogicalType{JSON: parquet.NewJsonType()}
		} else {
			// google:sqlType:geography (WKT) is a plain string too.
			setConverted(parquet.ConvertedType_UTF8)
			elem.LogicalType = &parquet.LogicalType{STRING: parquet.NewStringType()}
		}
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		setType(parquet.Type_BYTE_ARRAY)
		c.store, c.dictCapable = storeBytes, true
	case *arrow.Decimal128Type:
		n := decimalBytesForPrecision(t.Precision)
		setType(parquet.Type_FIXED_LEN_BYTE_ARRAY)
		length, precision, scale := int32(n), t.Precision, t.Scale
		elem.TypeLength, elem.Precision, elem.Scale = &length, &precision, &scale
		setConverted(parquet.ConvertedType_DECIMAL)
		elem.LogicalType = &parquet.LogicalType{DECIMAL: &parquet.DecimalType{Precision: precision, Scale: scale}}
		c.store, c.width = storeDecimal, n
	case *arrow.Decimal256Type:
		// BIGNUMERIC needs up to 76 digits; parquet readers (DuckDB, Spark,
		// Athena) stop at 38, so the exact value is written as text.
		setType(parquet.Type_BYTE_ARRAY)
		setConverted(parquet.ConvertedType_UTF8)
		elem.LogicalType = &parquet.LogicalType{STRING: parquet.NewStringType()}
		c.store, c.scale = storeBytes, t.Scale
	case *arrow.Date32Type:
		setType(parquet.Type_INT32)
		setConverted(parquet.ConvertedType_DATE)
		elem.LogicalType = &parquet.LogicalType{DATE: parquet.NewDateType()}
		c.store, c.width = storeInt32, 4
	case *arrow.TimestampType:
		unit, converted, err := timeUnit(t.Unit)
		if err != nil {
			return nil, nil, err
		}
		setType(parquet.Type_INT64)
		// A time zone (BigQuery TIMESTAMP: "UTC") means instants; none
		// (BigQuery DATETIME) means wall-clock values. The legacy
		// TIMESTAMP_* converted types imply UTC, so DATETIME has none.
		utc := t.TimeZone != ""
		elem.LogicalType = &parquet.LogicalType{TIMESTAMP: &parquet.TimestampType{IsAdjustedToUTC: utc, Unit: unit}}
		if utc && converted != nil {
			setConverted(*converted)
		}
		c.store, c.width = storeInt64, 8
	case *arrow.Time64Type:
		unit, _, err := timeUnit(t.Unit)
		if err != nil {
			return nil, nil, err
		}
		setType(parquet.Type_INT64)
		// BigQuery TIME is a wall-clock time: not adjusted to UTC, so no
		// TIME_MICROS converted type (which implies UTC).
		elem.LogicalType = &parquet.LogicalType{TIME: &parquet.TimeType{IsAdjustedToUTC: false, Unit: unit}}
		c.store, c.width = storeInt64, 8
	case *arrow.StructType, *arrow.ListType, *arrow.LargeListType, *arrow.FixedSizeListType,
		*arrow.MapType, *arrow.ListViewType, *arrow.LargeListViewType:
		return nil, nil, ErrNestedNotSupported
	default:
		return nil, nil, fmt.Errorf("arrow type %s is not supported", f.Type)
	}
	return c, elem, nil
}

// timeUnit maps an Arrow time unit to the parquet unit and, for timestamps,
// the matching legacy converted type (none exists for nanoseconds).
func timeUnit(u arrow.TimeUnit) (*parquet.TimeUnit, *parquet.ConvertedType, error) {
	switch u {
	case arrow.Millisecond:
		ct := parquet.ConvertedType_TIMESTAMP_MILLIS
		return &parquet.TimeUnit{MILLIS: parquet.NewMilliSeconds()}, &ct, nil
	case arrow.Microsecond:
		ct := parquet.ConvertedType_TIMESTAMP_MICROS
		return &parquet.TimeUnit{MICROS: parquet.NewMicroSeconds()}, &ct, nil
	case arrow.Nanosecond:
		return &parquet.TimeUnit{NANOS: parquet.NewNanoSeconds()}, nil, nil
	default:
		return nil, nil, fmt.Errorf("time unit %s is not supported", u)
	}
}

// fieldExtension returns the extension name BigQuery put in the field's
// metadata, if any.
func fieldExtension(f arrow.Field) (string, bool) {
	i := f.Metadata.FindKey(extensionNameKey)
	if i < 0 {
		return "", false
	}
	return f.Metadata.Values()[i], true
}

// decimalBytesForPrecision returns the fewest bytes of big-endian two's
// complement that hold every value of the given decimal precision (16 for
// NUMERIC's 38), as the parquet spec recommends for FIXED_LEN_BYTE_ARRAY.
func decimalBytesForPrecision(precision int32) int {
	for n := 1; n < decimal128Bytes; n++ {
		// Largest value with n bytes is 2^(8n-1)-1; it must hold 10^p-1.
		if float64(precision) <= float64(8*n-1)*log10of2 {
			return n
		}
	}
	return decimal128Bytes
}

// log10of2 is log10(2), for decimalBytesForPrecision: digits(n bytes) =
// floor((8n-1)*log10(2)).
const log10of2 = 0.30102999566398119521

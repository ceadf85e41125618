package bqsource

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// Field metadata with which BigQuery tells apart the column types that share an Arrow type.
// JSON, GEOGRAPHY and DATETIME carry an Arrow extension name; RANGE carries
// google:sqlType=range. A REPEATED column's metadata is on the list field, not its element.
const (
	extensionNameKey = "ARROW:extension:name"
	sqlTypeKey       = "google:sqlType"

	extJSON      = "google:sqlType:json"
	extGeography = "google:sqlType:geography"
	sqlTypeRange = "range"
)

// BigQuery's type names as its REST API (tables.get) spells them, which the receipt has
// always used.
const (
	typeInteger    = "INTEGER"
	typeFloat      = "FLOAT"
	typeBoolean    = "BOOLEAN"
	typeString     = "STRING"
	typeBytes      = "BYTES"
	typeJSON       = "JSON"
	typeGeography  = "GEOGRAPHY"
	typeNumeric    = "NUMERIC"
	typeBigNumeric = "BIGNUMERIC"
	typeDate       = "DATE"
	typeTime       = "TIME"
	typeDatetime   = "DATETIME"
	typeTimestamp  = "TIMESTAMP"
	typeInterval   = "INTERVAL"
	typeRange      = "RANGE"
	typeRecord     = "RECORD"

	modeNullable = "NULLABLE"
	modeRequired = "REQUIRED"
	modeRepeated = "REPEATED"
)

// Fields is the table's schema at the session's snapshot, as the receipt lists it: BigQuery's
// types and modes mapped back from the session's Arrow schema, the one every row was read
// with (table metadata fetched later may already show a changed schema). A RANGE lists no
// fields, as BigQuery's table schema does not. An Arrow type BigQuery never sends is a
// KindUnsupportedSchema error.
func (s *Session) Fields() ([]receipt.Field, error) {
	schema, err := s.Schema()
	if err != nil {
		return nil, err
	}
	return receiptFields(schema.Fields(), "")
}

func receiptFields(fields []arrow.Field, parent string) ([]receipt.Field, error) {
	out := make([]receipt.Field, 0, len(fields))
	for _, f := range fields {
		rf, err := receiptField(f, parent+f.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, rf)
	}
	return out, nil
}

// receiptField maps one column; path is its dotted name, for errors.
func receiptField(f arrow.Field, path string) (receipt.Field, error) {
	mode := modeNullable
	if !f.Nullable {
		mode = modeRequired
	}
	typ, md := f.Type, f.Metadata
	switch t := f.Type.(type) {
	case *arrow.ListType, *arrow.LargeListType:
		// REPEATED: a list of the element type, whatever the nullabilities (BigQuery sends a
		// non-null list of nullable items). The element's metadata is on the list field.
		mode = modeRepeated
		elem := t.(arrow.ListLikeType).ElemField()
		typ = elem.Type
		if md.Len() == 0 {
			md = elem.Metadata
		}
		if _, nested := typ.(arrow.ListLikeType); nested {
			return receipt.Field{}, unsupported(path, f.Type)
		}
	}
	out := receipt.Field{Name: f.Name, Mode: mode}
	switch t := typ.(type) {
	case *arrow.Int64Type:
		out.Type = typeInteger
	case *arrow.Float64Type:
		out.Type = typeFloat
	case *arrow.BooleanType:
		out.Type = typeBoolean
	case *arrow.StringType, *arrow.LargeStringType:
		switch metadata(md, extensionNameKey) {
		case extJSON:
			out.Type = typeJSON
		case extGeography:
			out.Type = typeGeography
		default:
			out.Type = typeString
		}
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		out.Type = typeBytes
	case *arrow.Decimal128Type:
		// NUMERIC is decimal128(38, 9), a NUMERIC(P, S) column its own precision and scale.
		out.Type = typeNumeric
	case *arrow.Decimal256Type:
		out.Type = typeBigNumeric
	case *arrow.Date32Type:
		out.Type = typeDate
	case *arrow.TimestampType:
		// The time zone decides, as it does for the parquet column (instants or wall-clock
		// values): BigQuery sends TIMESTAMP with "UTC" and DATETIME with none (and
		// google:sqlType:datetime, which therefore adds nothing).
		out.Type = typeTimestamp
		if t.TimeZone == "" {
			out.Type = typeDatetime
		}
	case *arrow.Time64Type, *arrow.Time32Type:
		out.Type = typeTime
	case *arrow.MonthDayNanoIntervalType:
		out.Type = typeInterval
	case *arrow.StructType:
		// RANGE arrives as struct<start, end>; only its metadata tells it from a RECORD of two
		// fields that happen to have those names.
		if metadata(md, sqlTypeKey) == sqlTypeRange {
			out.Type = typeRange
			break
		}
		out.Type = typeRecord
		children, err := receiptFields(t.Fields(), path+".")
		if err != nil {
			return receipt.Field{}, err
		}
		out.Fields = children
	default:
		return receipt.Field{}, unsupported(path, f.Type)
	}
	return out, nil
}

func metadata(md arrow.Metadata, key string) string {
	if i := md.FindKey(key); i >= 0 {
		return md.Values()[i]
	}
	return ""
}

func unsupported(path string, t arrow.DataType) error {
	return failure.New(failure.KindUnsupportedSchema, nil,
		"column %q has Arrow type %s, which BigQuery sends for no column type: the exporter needs a new release to name it", path, t)
}

package parquetenc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/xitongsys/parquet-go/parquet"
)

const (
	// rootName is the name of the parquet schema's root element (arrow's
	// writer uses the same).
	rootName = "schema"

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

// ErrNestedNotSupported is wrapped by NewWriter's error for nested Arrow
// types that BigQuery's Storage Read API never sends (map, fixed-size list,
// list view, union): RECORD (struct) and REPEATED (list) columns are
// supported.
var ErrNestedNotSupported = errors.New("nested Arrow type not supported (BigQuery sends only struct and list)")

// storage is how a column keeps its pending values before they become a page.
type storage int

const (
	storeBool    storage = iota // BOOLEAN
	storeInt32                  // INT32
	storeInt64                  // INT64
	storeDouble                 // DOUBLE
	storeBytes                  // BYTE_ARRAY
	storeDecimal                // FIXED_LEN_BYTE_ARRAY from decimal128
	numStorages
)

// intervalPart says which part of a month_day_nano_interval a leaf holds.
type intervalPart int

const (
	notInterval intervalPart = iota
	intervalMonths
	intervalDays
	intervalNanoseconds
)

// Names of the INTERVAL group's fields, those of Arrow's MonthDayNanoInterval.
const (
	intervalMonthsName      = "months"
	intervalDaysName        = "days"
	intervalNanosecondsName = "nanoseconds"
)

// Names of the standard 3-level LIST structure's inner elements
// (parquet-format LogicalTypes.md).
const (
	listRepeatedName = "list"
	listElementName  = "element"
)

// stepKind is the kind of group a leaf's path goes through.
type stepKind uint8

const (
	stepStruct   stepKind = iota // RECORD: the path continues in one of its fields
	stepList                     // REPEATED: the path continues in every element
	stepInterval                 // INTERVAL: its three leaves read the same array
)

// step is one group on the path from a top-level column to a leaf. Levels
// are computed by walking these steps over the Arrow arrays (see
// column.walk).
type step struct {
	kind     stepKind
	optional bool   // the group is OPTIONAL: a NULL ends the path at this level
	field    int    // stepStruct: index of the field the path continues in
	rep      int32  // stepList: repetition level of every element but the first
	name     string // the group's dotted path, for error messages
}

// field is one top-level column of the record and the leaf columns under it
// (one for a flat column).
type field struct {
	name      string
	arrowType arrow.DataType
	optional  bool
	leaves    []*column
}

// parquetSchema is an Arrow schema mapped to parquet.
type parquetSchema struct {
	fields []*field                 // top-level columns, in record order
	leaves []*column                // every leaf, in schema order: the order of column chunks
	elems  []*parquet.SchemaElement // root first, depth first
}

// position is where a field lands in the parquet schema: under which group,
// through which steps, at which levels.
type position struct {
	exact   []string     // exact names of the parent group's path (no root)
	steps   []step       // groups from the top-level column down to the parent
	def     int32        // definition level of the parent
	rep     int32        // repetition level of the parent
	sibling int          // index among the parent's children
	part    intervalPart // the leaf is this part of an INTERVAL
}

// under returns the position of the sibling-th child of the group at p,
// exact being that group's own name and s the step into it (nil for LIST's
// repeated group, which is not a step of its own).
func (p position) under(exact string, s *step, def, rep int32, sibling int) position {
	c := position{
		exact:   append(slices.Clip(p.exact), exact),
		steps:   slices.Clip(p.steps),
		def:     def,
		rep:     rep,
		sibling: sibling,
	}
	if s != nil {
		c.steps = append(c.steps, *s)
	}
	return c
}

// buildSchema maps an Arrow schema to parquet leaf columns and the flat list
// of schema elements (root first, depth first) of the footer.
func buildSchema(s *arrow.Schema) (*parquetSchema, error) {
	if s == nil || s.NumFields() == 0 {
		return nil, errors.New("parquetenc: schema has no columns")
	}
	fields := s.Fields()
	numChildren := int32(len(fields))
	ps := &parquetSchema{
		elems: []*parquet.SchemaElement{{Name: rootName, NumChildren: &numChildren}},
	}
	if err := checkNames(fields); err != nil {
		return nil, fmt.Errorf("parquetenc: %w", err)
	}
	for i, f := range fields {
		before := len(ps.leaves)
		at := position{sibling: i}
		if err := ps.add(f, f.Name, at); err != nil {
			return nil, fmt.Errorf("parquetenc: column %q (%s): %w", f.Name, f.Type, err)
		}
		ps.fields = append(ps.fields, &field{
			name:      f.Name,
			arrowType: f.Type,
			optional:  f.Nullable,
			leaves:    ps.leaves[before:len(ps.leaves):len(ps.leaves)],
		})
	}
	return ps, nil
}

// checkNames refuses duplicate names among one group's fields: parquet
// paths would be ambiguous.
func checkNames(fields []arrow.Field) error {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if seen[f.Name] {
			return fmt.Errorf("duplicate column name %q", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// add appends the schema elements of field f, named exact in the file, and
// its leaf columns, at position at.
func (ps *parquetSchema) add(f arrow.Field, exact string, at position) error {
	exactPath := append(slices.Clip(at.exact), exact)
	dotted := strings.Join(exactPath, ".")
	rep := parquet.FieldRepetitionType_REQUIRED
	def := at.def
	if f.Nullable {
		rep = parquet.FieldRepetitionType_OPTIONAL
		def++
	}
	elem := &parquet.SchemaElement{Name: exact, RepetitionType: &rep}
	ps.elems = append(ps.elems, elem)

	switch t := f.Type.(type) {
	case *arrow.StructType:
		// RECORD, and RANGE, which BigQuery sends as struct<start, end>.
		if t.NumFields() == 0 {
			return fmt.Errorf("RECORD %q has no fields", dotted)
		}
		if err := checkNames(t.Fields()); err != nil {
			return fmt.Errorf("RECORD %q: %w", dotted, err)
		}
		n := int32(t.NumFields())
		elem.NumChildren = &n
		for k, cf := range t.Fields() {
			s := &step{kind: stepStruct, optional: f.Nullable, field: k, name: dotted}
			if err := ps.add(cf, cf.Name, at.under(exact, s, def, at.rep, k)); err != nil {
				return err
			}
		}
		return nil
	case *arrow.ListType, *arrow.LargeListType:
		// REPEATED: the standard 3-level LIST, which every reader maps back
		// to a list (the legacy 2-level forms are read differently by
		// different readers):
		//   <optional|required> group name (LIST) {
		//     repeated group list { <optional|required> element } }
		one := int32(1)
		elem.NumChildren = &one
		lt := parquet.ConvertedType_LIST
		elem.ConvertedType = &lt
		elem.LogicalType = &parquet.LogicalType{LIST: parquet.NewListType()}
		repeated := parquet.FieldRepetitionType_REPEATED
		ps.elems = append(ps.elems, &parquet.SchemaElement{Name: listRepeatedName, RepetitionType: &repeated, NumChildren: &one})
		// The repeated group adds one definition level (the list has an
		// element) and one repetition level.
		s := &step{kind: stepList, optional: f.Nullable, rep: at.rep + 1, name: dotted}
		list := at.under(exact, s, def+1, at.rep+1, 0)
		return ps.add(t.(arrow.ListLikeType).ElemField(), listElementName, list.under(listRepeatedName, nil, def+1, at.rep+1, 0))
	case *arrow.MonthDayNanoIntervalType:
		// INTERVAL: a group of its three exact integer parts (docs/types.md
		// explains why not parquet's INTERVAL, which holds no nanoseconds
		// and no negative values).
		three := int32(3)
		elem.NumChildren = &three
		s := &step{kind: stepInterval, optional: f.Nullable, name: dotted}
		for k, part := range []struct {
			name string
			part intervalPart
			typ  arrow.DataType
		}{
			{intervalMonthsName, intervalMonths, arrow.PrimitiveTypes.Int32},
			{intervalDaysName, intervalDays, arrow.PrimitiveTypes.Int32},
			{intervalNanosecondsName, intervalNanoseconds, arrow.PrimitiveTypes.Int64},
		} {
			pos := at.under(exact, s, def, at.rep, k)
			pos.part = part.part
			if err := ps.add(arrow.Field{Name: part.name, Type: part.typ}, part.name, pos); err != nil {
				return err
			}
		}
		return nil
	case *arrow.MapType, *arrow.FixedSizeListType, *arrow.ListViewType, *arrow.LargeListViewType,
		*arrow.SparseUnionType, *arrow.DenseUnionType:
		return inField(exactPath, ErrNestedNotSupported)
	}

	c := &column{
		name:         dotted,
		pathInSchema: exactPath,
		arrowType:    f.Type,
		optional:     f.Nullable,
		maxDef:       def,
		maxRep:       at.rep,
		steps:        at.steps,
		part:         at.part,
		elem:         len(ps.elems) - 1,
	}
	if err := setLeafType(c, elem, f); err != nil {
		return inField(exactPath, err)
	}
	c.ptype = *elem.Type
	// Booleans are one bit each: a dictionary cannot make them smaller.
	c.dictCapable = c.store != storeBool
	ps.leaves = append(ps.leaves, c)
	return nil
}

// inField names the nested field an error is about (the caller names the
// top-level column).
func inField(exactPath []string, err error) error {
	if len(exactPath) < 2 {
		return err
	}
	return fmt.Errorf("field %q: %w", strings.Join(exactPath, "."), err)
}

// setLeafType maps one Arrow leaf field to its parquet type, with both the
// (legacy) ConvertedType and the LogicalType set where they exist, so that old
// and new readers agree on the type.
func setLeafType(c *column, elem *parquet.SchemaElement, f arrow.Field) error {
	setType := func(t parquet.Type) { elem.Type = &t }
	setConverted := func(ct parquet.ConvertedType) { elem.ConvertedType = &ct }

	switch t := f.Type.(type) {
	case *arrow.BooleanType:
		setType(parquet.Type_BOOLEAN)
		c.store, c.width = storeBool, 1
	case *arrow.Int32Type:
		// Only INTERVAL's months and days: BigQuery sends no int32 column.
		if c.part == notInterval {
			return fmt.Errorf("arrow type %s is not supported", f.Type)
		}
		setType(parquet.Type_INT32)
		c.store, c.width = storeInt32, 4
	case *arrow.Int64Type:
		setType(parquet.Type_INT64)
		c.store, c.width = storeInt64, 8
	case *arrow.Float64Type:
		setType(parquet.Type_DOUBLE)
		c.store, c.width = storeDouble, 8
	case *arrow.StringType, *arrow.LargeStringType:
		setType(parquet.Type_BYTE_ARRAY)
		c.store = storeBytes
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
		c.store = storeBytes
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
			return err
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
			return err
		}
		setType(parquet.Type_INT64)
		// BigQuery TIME is a wall-clock time: not adjusted to UTC, so no
		// TIME_MICROS converted type (which implies UTC).
		elem.LogicalType = &parquet.LogicalType{TIME: &parquet.TimeType{IsAdjustedToUTC: false, Unit: unit}}
		c.store, c.width = storeInt64, 8
	default:
		return fmt.Errorf("arrow type %s is not supported", f.Type)
	}
	return nil
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

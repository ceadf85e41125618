package bqsource

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// tableSchemaFields is activities.receiptSchema, the receipt's schema as it was built from the
// table's metadata: Session.Fields must give the same for the same table.
func tableSchemaFields(s bigquery.Schema) []receipt.Field {
	out := make([]receipt.Field, 0, len(s))
	for _, f := range s {
		mode := "NULLABLE"
		switch {
		case f.Repeated:
			mode = "REPEATED"
		case f.Required:
			mode = "REQUIRED"
		}
		out = append(out, receipt.Field{Name: f.Name, Type: string(f.Type), Mode: mode, Fields: tableSchemaFields(f.Schema)})
	}
	return out
}

// Field metadata as BigQuery sets it (checked against sessions of the real service by the
// clients that document it: python-bigquery's system tests, and others).
var (
	jsonMD      = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:json"})
	geographyMD = arrow.NewMetadata([]string{"ARROW:extension:name", "ARROW:extension:metadata"}, []string{"google:sqlType:geography", `{"encoding": "WKT"}`})
	datetimeMD  = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:datetime"})
	intervalMD  = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:interval"})
	rangeMD     = arrow.NewMetadata([]string{"google:sqlType"}, []string{"range"})
)

var (
	timestampUS = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	datetimeUS  = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// column is one BigQuery column and the Arrow field a read session has for it.
type column struct {
	bq    *bigquery.FieldSchema
	arrow arrow.Field
}

func nullable(name string, t arrow.DataType, md arrow.Metadata) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true, Metadata: md}
}

func required(name string, t arrow.DataType, md arrow.Metadata) arrow.Field {
	return arrow.Field{Name: name, Type: t, Metadata: md}
}

// repeatedOf is a REPEATED column as BigQuery sends it: a non-null list of nullable "item",
// the element's metadata on the list field.
func repeatedOf(name string, elem arrow.DataType, md arrow.Metadata) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.ListOfField(arrow.Field{Name: "item", Type: elem, Nullable: true}), Metadata: md}
}

func rangeOf(bound arrow.DataType) arrow.DataType {
	return arrow.StructOf(arrow.Field{Name: "start", Type: bound, Nullable: true}, arrow.Field{Name: "end", Type: bound, Nullable: true})
}

// everyType is a table with a column of every BigQuery type, in every mode, nested.
func everyType() []column {
	var none arrow.Metadata
	record := arrow.StructOf(
		required("a", arrow.PrimitiveTypes.Int64, none),
		nullable("b", arrow.BinaryTypes.String, none),
		repeatedOf("c", timestampUS, none),
		nullable("d", arrow.StructOf(nullable("e", arrow.BinaryTypes.String, jsonMD), nullable("w", rangeOf(datetimeUS), rangeMD)), none),
	)
	item := arrow.StructOf(nullable("sku", arrow.BinaryTypes.String, none), required("qty", arrow.PrimitiveTypes.Int64, none))
	return []column{
		{&bigquery.FieldSchema{Name: "id", Type: bigquery.IntegerFieldType, Required: true}, required("id", arrow.PrimitiveTypes.Int64, none)},
		{&bigquery.FieldSchema{Name: "f", Type: bigquery.FloatFieldType}, nullable("f", arrow.PrimitiveTypes.Float64, none)},
		{&bigquery.FieldSchema{Name: "ok", Type: bigquery.BooleanFieldType}, nullable("ok", arrow.FixedWidthTypes.Boolean, none)},
		{&bigquery.FieldSchema{Name: "s", Type: bigquery.StringFieldType, Required: true}, required("s", arrow.BinaryTypes.String, none)},
		{&bigquery.FieldSchema{Name: "by", Type: bigquery.BytesFieldType}, nullable("by", arrow.BinaryTypes.Binary, none)},
		{&bigquery.FieldSchema{Name: "j", Type: bigquery.JSONFieldType}, nullable("j", arrow.BinaryTypes.String, jsonMD)},
		{&bigquery.FieldSchema{Name: "g", Type: bigquery.GeographyFieldType}, nullable("g", arrow.BinaryTypes.String, geographyMD)},
		{&bigquery.FieldSchema{Name: "n", Type: bigquery.NumericFieldType}, nullable("n", &arrow.Decimal128Type{Precision: 38, Scale: 9}, none)},
		{&bigquery.FieldSchema{Name: "n_10_2", Type: bigquery.NumericFieldType, Precision: 10, Scale: 2}, nullable("n_10_2", &arrow.Decimal128Type{Precision: 10, Scale: 2}, none)},
		{&bigquery.FieldSchema{Name: "bn", Type: bigquery.BigNumericFieldType}, nullable("bn", &arrow.Decimal256Type{Precision: 76, Scale: 38}, none)},
		{&bigquery.FieldSchema{Name: "bn_40", Type: bigquery.BigNumericFieldType, Precision: 40}, nullable("bn_40", &arrow.Decimal256Type{Precision: 40, Scale: 0}, none)},
		{&bigquery.FieldSchema{Name: "d", Type: bigquery.DateFieldType}, nullable("d", arrow.FixedWidthTypes.Date32, none)},
		{&bigquery.FieldSchema{Name: "t", Type: bigquery.TimeFieldType}, nullable("t", arrow.FixedWidthTypes.Time64us, none)},
		{&bigquery.FieldSchema{Name: "dt", Type: bigquery.DateTimeFieldType}, nullable("dt", datetimeUS, datetimeMD)},
		{&bigquery.FieldSchema{Name: "ts", Type: bigquery.TimestampFieldType, Required: true}, required("ts", timestampUS, none)},
		{&bigquery.FieldSchema{Name: "iv", Type: bigquery.IntervalFieldType}, nullable("iv", arrow.FixedWidthTypes.MonthDayNanoInterval, intervalMD)},
		{&bigquery.FieldSchema{Name: "r_date", Type: bigquery.RangeFieldType, RangeElementType: &bigquery.RangeElementType{Type: bigquery.DateFieldType}}, nullable("r_date", rangeOf(arrow.FixedWidthTypes.Date32), rangeMD)},
		{&bigquery.FieldSchema{Name: "r_ts", Type: bigquery.RangeFieldType, Required: true, RangeElementType: &bigquery.RangeElementType{Type: bigquery.TimestampFieldType}}, required("r_ts", rangeOf(timestampUS), rangeMD)},
		{&bigquery.FieldSchema{Name: "rec", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
			{Name: "a", Type: bigquery.IntegerFieldType, Required: true},
			{Name: "b", Type: bigquery.StringFieldType},
			{Name: "c", Type: bigquery.TimestampFieldType, Repeated: true},
			{Name: "d", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
				{Name: "e", Type: bigquery.JSONFieldType},
				{Name: "w", Type: bigquery.RangeFieldType, RangeElementType: &bigquery.RangeElementType{Type: bigquery.DateTimeFieldType}},
			}},
		}}, nullable("rec", record, none)},
		// A RECORD whose fields are named like RANGE's is a RECORD: only metadata makes a RANGE.
		{&bigquery.FieldSchema{Name: "span", Type: bigquery.RecordFieldType, Required: true, Schema: bigquery.Schema{
			{Name: "start", Type: bigquery.DateFieldType},
			{Name: "end", Type: bigquery.DateFieldType},
		}}, required("span", rangeOf(arrow.FixedWidthTypes.Date32), none)},
		{&bigquery.FieldSchema{Name: "tags", Type: bigquery.StringFieldType, Repeated: true}, repeatedOf("tags", arrow.BinaryTypes.String, none)},
		{&bigquery.FieldSchema{Name: "docs", Type: bigquery.JSONFieldType, Repeated: true}, repeatedOf("docs", arrow.BinaryTypes.String, jsonMD)},
		{&bigquery.FieldSchema{Name: "places", Type: bigquery.GeographyFieldType, Repeated: true}, repeatedOf("places", arrow.BinaryTypes.String, geographyMD)},
		{&bigquery.FieldSchema{Name: "seen", Type: bigquery.DateTimeFieldType, Repeated: true}, repeatedOf("seen", datetimeUS, datetimeMD)},
		{&bigquery.FieldSchema{Name: "amounts", Type: bigquery.NumericFieldType, Repeated: true}, repeatedOf("amounts", &arrow.Decimal128Type{Precision: 38, Scale: 9}, none)},
		{&bigquery.FieldSchema{Name: "periods", Type: bigquery.RangeFieldType, Repeated: true, RangeElementType: &bigquery.RangeElementType{Type: bigquery.DateFieldType}}, repeatedOf("periods", rangeOf(arrow.FixedWidthTypes.Date32), rangeMD)},
		{&bigquery.FieldSchema{Name: "items", Type: bigquery.RecordFieldType, Repeated: true, Schema: bigquery.Schema{
			{Name: "sku", Type: bigquery.StringFieldType},
			{Name: "qty", Type: bigquery.IntegerFieldType, Required: true},
		}}, repeatedOf("items", item, none)},
	}
}

// TestFieldsMatchTableSchema: the receipt schema read from a session's Arrow schema, framed as
// BigQuery frames it, equals the one the table's metadata gave, column by column.
func TestFieldsMatchTableSchema(t *testing.T) {
	cols := everyType()
	var bq bigquery.Schema
	var fields []arrow.Field
	for _, c := range cols {
		bq = append(bq, c.bq)
		fields = append(fields, c.arrow)
	}
	schemaMsg, _ := bigQueryFraming(t, arrow.NewSchema(fields, nil))
	got, err := (&Session{ArrowSchema: schemaMsg}).Fields()
	if err != nil {
		t.Fatal(err)
	}
	want := tableSchemaFields(bq)
	if len(got) != len(want) {
		t.Fatalf("%d fields, want %d", len(got), len(want))
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if string(g) != string(w) {
			t.Errorf("column %s:\n got %s\nwant %s", want[i].Name, g, w)
		}
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("receipt schema differs:\n got %s\nwant %s", g, w)
	}
}

// TestFieldsOfOpenedSession: Open keeps what Fields needs, the snapshot's schema.
func TestFieldsOfOpenedSession(t *testing.T) {
	c := StartFakeBigQuery(t, &FakeBigQuery{Rows: 10, MaxStreams: 1})
	s, err := c.Open(context.Background(), fakeRef, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Fields()
	if err != nil {
		t.Fatal(err)
	}
	want := []receipt.Field{
		{Name: "id", Type: "INTEGER", Mode: "REQUIRED"},
		{Name: "name", Type: "STRING", Mode: "NULLABLE"},
		{Name: "ts", Type: "TIMESTAMP", Mode: "NULLABLE"},
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) || s.Table != fakeRef {
		t.Errorf("fields %s, want %s; table %v", g, w, s.Table)
	}
}

// TestFieldsRefusesUnknownTypes: an Arrow type BigQuery never sends is named, not guessed.
func TestFieldsRefusesUnknownTypes(t *testing.T) {
	var none arrow.Metadata
	for _, f := range []arrow.Field{
		nullable("small", arrow.PrimitiveTypes.Int32, none),
		nullable("rec", arrow.StructOf(nullable("half", arrow.FixedWidthTypes.Float16, none)), none),
		repeatedOf("matrix", arrow.ListOf(arrow.PrimitiveTypes.Int64), none),
		nullable("m", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), none),
	} {
		schemaMsg, _ := bigQueryFraming(t, arrow.NewSchema([]arrow.Field{f}, nil))
		_, err := (&Session{ArrowSchema: schemaMsg}).Fields()
		if failure.KindOf(err) != failure.KindUnsupportedSchema {
			t.Errorf("%s (%s): %v", f.Name, f.Type, err)
		}
	}
	if _, err := (&Session{ArrowSchema: []byte{1, 2, 3}}).Fields(); err == nil {
		t.Error("garbage schema: no error")
	}
}

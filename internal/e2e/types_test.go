//go:build integration

package e2e

import (
	"context"
	"math"
	"math/big"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

// typesSchema covers every type the emulator serves through the Storage Read API (it fails on
// REPEATED, DATETIME and TIME, and on BIGNUMERIC values of 77 digits; those are proven with
// Arrow batches in internal/parquetenc).
var typesSchema = bigquery.Schema{
	{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
	{Name: "Float_Col", Type: bigquery.FloatFieldType},
	{Name: "numeric_col", Type: bigquery.NumericFieldType},
	{Name: "bignumeric_col", Type: bigquery.BigNumericFieldType},
	{Name: "bool_col", Type: bigquery.BooleanFieldType},
	{Name: "string_ünï", Type: bigquery.StringFieldType},
	{Name: "bytes_col", Type: bigquery.BytesFieldType},
	{Name: "date_col", Type: bigquery.DateFieldType},
	{Name: "ts_col", Type: bigquery.TimestampFieldType},
	{Name: "geo_col", Type: bigquery.GeographyFieldType},
	{Name: "rec", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
		{Name: "a", Type: bigquery.IntegerFieldType},
		{Name: "b", Type: bigquery.StringFieldType},
		{Name: "nested", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
			{Name: "x", Type: bigquery.FloatFieldType},
			{Name: "deep", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{{Name: "d", Type: bigquery.DateFieldType}}},
		}},
	}},
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

func typesRows() [][]bigquery.Value {
	return [][]bigquery.Value{
		{int64(1), 1.5, rat("99999999999999999999999999999.999999999"), rat("99999999999999999999999999999999999999.99999999999999999999999999999999999999"),
			true, "zoë ✓ 日本", []byte{0, 1, 2, 255}, civil.Date{Year: 1, Month: 1, Day: 1},
			time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "POINT(1 2)",
			[]bigquery.Value{int64(7), "inner ✓", []bigquery.Value{2.25, []bigquery.Value{civil.Date{Year: 2024, Month: 2, Day: 29}}}}},
		{int64(2), -math.MaxFloat64, rat("-99999999999999999999999999999.999999999"), rat("-0.00000000000000000000000000000000000001"),
			false, "", []byte{}, civil.Date{Year: 9999, Month: 12, Day: 31},
			time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), "LINESTRING(0 0, 1 1)",
			[]bigquery.Value{nil, nil, []bigquery.Value{nil, nil}}},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(4), 0.0, rat("0.000000001"), rat("1"), true, "line\nbreak \"quoted\"", []byte("hello"),
			civil.Date{Year: 1969, Month: 12, Day: 31}, time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), "POLYGON((0 0, 1 0, 1 1, 0 0))",
			[]bigquery.Value{int64(-1), "x", nil}},
	}
}

// TestEveryEmulatorTypeExact dumps a table holding every type the emulator serves, with
// extremes and NULLs, and compares what DuckDB reads from S3 with what was inserted, value by
// value.
func TestEveryEmulatorTypeExact(t *testing.T) {
	// Not parallel: it writes to the emulator, whose SQLite store locks every reader while a
	// write runs; serial tests finish before the parallel ones start.
	ctx := context.Background()
	bq, err := stack.BigQueryClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Close()
	const ds = "e2e_types"
	if err := bq.Dataset(ds).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		t.Fatal(err)
	}
	rows := typesRows()
	if err := devstack.CreateTable(ctx, bq, ds, "paid_ads", typesSchema, rows); err != nil {
		t.Fatal(err)
	}
	acc := account("types", devstack.CustomerBucket)
	acc.BigQuery.Dataset = ds
	acc.Tables = []string{"paid_ads"}
	if _, err := runDump(t, acc); err != nil {
		t.Fatal(err)
	}
	_, tables, err := devstack.ReadBack(ctx, stack.RootS3(), devstack.CustomerBucket, acc.Prefix, map[string]bigquery.Schema{"paid_ads": typesSchema})
	if err != nil {
		t.Fatal(err)
	}
	got := tables["paid_ads"]
	t.Logf("DuckDB types: %v", got.DuckDBTypes)
	if got.Rows != int64(len(rows)) {
		t.Fatalf("rows %d, want %d", got.Rows, len(rows))
	}
	if want := devstack.Checksum(typesSchema, rows); got.Checksum != want {
		t.Errorf("values differ from the inserted ones (checksum %s, want %s)", got.Checksum, want)
		for _, r := range rows {
			t.Logf("inserted: %s", devstack.CanonicalRow(typesSchema, toAny(r)))
		}
		for _, r := range got.Canonical {
			t.Logf("read:     %s", r)
		}
	}

	// A column added in BigQuery after this dump is in the next dump's files and receipt,
	// NULL for the rows that predate it. (Same table: the emulator confuses equal table names
	// across datasets.)
	after := append(append(bigquery.Schema{}, typesSchema...), &bigquery.FieldSchema{Name: "added_cost", Type: bigquery.NumericFieldType})
	// The modelling run recreates the table with one more column, as dbt-style runs do (the
	// emulator cannot ALTER a table in place: its analyzer keeps the old columns).
	added := []bigquery.Value{int64(5), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, rat("12.5")}
	var wantRows [][]bigquery.Value
	for _, r := range rows {
		wantRows = append(wantRows, append(append([]bigquery.Value{}, r...), nil))
	}
	wantRows = append(wantRows, added)
	if err := bq.Dataset(ds).Table("paid_ads").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := devstack.CreateTable(ctx, bq, ds, "paid_ads", after, wantRows); err != nil {
		t.Fatal(err)
	}
	second, err := runDump(t, acc)
	if err != nil {
		t.Fatal(err)
	}
	r2, tables, err := devstack.ReadBack(ctx, stack.RootS3(), devstack.CustomerBucket, acc.Prefix, map[string]bigquery.Schema{"paid_ads": after})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Timestamp != second.Timestamp {
		t.Fatalf("read back receipt %s, the second dump's is %s", r2.Timestamp, second.Timestamp)
	}
	schema := r2.Tables["paid_ads"].Schema
	if n := len(schema); n != len(after) || schema[n-1].Name != "added_cost" || schema[n-1].Type != "NUMERIC" {
		t.Fatalf("the next receipt's schema lacks the added column: %+v", schema)
	}
	if got := tables["paid_ads"]; got.Checksum != devstack.Checksum(after, wantRows) {
		t.Errorf("after adding a column: %d rows, types %v", got.Rows, got.DuckDBTypes)
		for _, r := range got.Canonical {
			t.Logf("read: %s", r)
		}
	}
}

func toAny(r []bigquery.Value) []any {
	out := make([]any, len(r))
	for i := range r {
		out[i] = r[i]
	}
	return out
}

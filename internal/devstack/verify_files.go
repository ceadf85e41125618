package devstack

import (
	"context"
	"database/sql"

	"cloud.google.com/go/bigquery"
)

// ReadParquetFiles reads local parquet files as one table with DuckDB, as ReadBack does for
// a table's folder, and returns the row count and the content checksum (see Checksum). It
// lets a caller that downloaded the objects itself (to check their bytes too) reuse the
// same independent reader.
func ReadParquetFiles(ctx context.Context, files []string, schema bigquery.Schema) (rows int64, checksum string, err error) {
	if len(files) == 0 {
		return 0, Checksum(schema, nil), nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	rows, checksum, _, _, err = readParquet(ctx, db, files, schema)
	return rows, checksum, err
}

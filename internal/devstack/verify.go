package devstack

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// TableReadBack is what an independent reader (DuckDB) finds in one table's folder.
type TableReadBack struct {
	Objects  []string // keys listed in the folder
	Rows     int64
	Checksum string // see Checksum
	// DuckDBTypes are the column types DuckDB reports, in order.
	DuckDBTypes []string
	// Canonical are the rows as CanonicalRow renders them, sorted.
	Canonical []string
}

// ReadBack fetches receipt.json with root credentials, lists every table folder it names and
// reads every object with DuckDB. Nothing here uses the exporter's code.
func ReadBack(ctx context.Context, root *s3.Client, bucket, prefix string, schemas map[string]bigquery.Schema) (*receipt.Receipt, map[string]TableReadBack, error) {
	obj, err := root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(layout.ReceiptKey(prefix))})
	if err != nil {
		return nil, nil, fmt.Errorf("get receipt: %w", err)
	}
	defer obj.Body.Close()
	var r receipt.Receipt
	if err := json.NewDecoder(obj.Body).Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("decode receipt: %w", err)
	}
	dir, err := os.MkdirTemp("", "readback-*")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	out := map[string]TableReadBack{}
	for name, t := range r.Tables {
		keys, err := ListAll(ctx, root, bucket, t.Folder+"/")
		if err != nil {
			return nil, nil, err
		}
		rb := TableReadBack{Objects: keys}
		var files []string
		for i, k := range keys {
			local := filepath.Join(dir, fmt.Sprintf("%s_%d.parquet", name, i))
			if err := download(ctx, root, bucket, k, local); err != nil {
				return nil, nil, err
			}
			files = append(files, local)
		}
		if len(files) > 0 {
			rb.Rows, rb.Checksum, rb.DuckDBTypes, rb.Canonical, err = readParquet(ctx, db, files, schemas[name])
			if err != nil {
				return nil, nil, fmt.Errorf("table %s: %w", name, err)
			}
		}
		out[name] = rb
	}
	return &r, out, nil
}

// ListAll lists every key under prefix, page by page.
func ListAll(ctx context.Context, c *s3.Client, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func download(ctx context.Context, c *s3.Client, bucket, key, path string) error {
	o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer o.Body.Close()
	if o.ContentEncoding != nil && *o.ContentEncoding != "" {
		return fmt.Errorf("%s has Content-Encoding %q: shards must be plain parquet objects", key, *o.ContentEncoding)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, o.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readParquet(ctx context.Context, db *sql.DB, files []string, schema bigquery.Schema) (int64, string, []string, []string, error) {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM read_parquet(["+strings.Join(quoted, ",")+"])")
	if err != nil {
		return 0, "", nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return 0, "", nil, nil, err
	}
	var types []string
	for _, c := range cols {
		types = append(types, c.DatabaseTypeName())
	}
	if schema != nil && len(cols) != len(schema) {
		return 0, "", types, nil, fmt.Errorf("parquet has %d columns, BigQuery schema %d", len(cols), len(schema))
	}
	var canon []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, "", types, nil, err
		}
		canon = append(canon, CanonicalRow(schema, vals))
	}
	if err := rows.Err(); err != nil {
		return 0, "", types, nil, err
	}
	sum := digest(canon) // sorts canon
	return int64(len(canon)), sum, types, canon, nil
}

// Checksum is an order-independent digest of rows in BigQuery's Go types (what was inserted).
func Checksum(schema bigquery.Schema, rows [][]bigquery.Value) string {
	canon := make([]string, len(rows))
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		canon[i] = CanonicalRow(schema, vals)
	}
	return digest(canon)
}

func digest(canon []string) string {
	sort.Strings(canon)
	h := sha256.New()
	for _, c := range canon {
		h.Write([]byte(c))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// CanonicalRow renders a row so that equal values from BigQuery's Go types and from DuckDB's
// render identically: exact decimals as reduced fractions, timestamps in microseconds.
func CanonicalRow(schema bigquery.Schema, vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		var f *bigquery.FieldSchema
		if i < len(schema) {
			f = schema[i]
		}
		parts[i] = canonical(f, v)
	}
	return strings.Join(parts, "|")
}

func canonical(f *bigquery.FieldSchema, v any) string {
	var typ bigquery.FieldType
	if f != nil {
		typ = f.Type
	}
	switch x := v.(type) {
	case []bigquery.Value: // a RECORD as inserted
		vals := make([]any, len(x))
		for i := range x {
			vals[i] = x[i]
		}
		return "{" + CanonicalRow(f.Schema, vals) + "}"
	case map[string]any: // a STRUCT as DuckDB returns it
		vals := make([]any, len(f.Schema))
		for i, sub := range f.Schema {
			vals[i] = x[sub.Name]
		}
		return "{" + CanonicalRow(f.Schema, vals) + "}"
	case string:
		if typ == bigquery.BigNumericFieldType { // exact decimal text in the parquet file
			if r, ok := new(big.Rat).SetString(x); ok {
				return r.RatString()
			}
		}
		return strconv.Quote(x)
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return hex.EncodeToString(x)
	case *big.Rat:
		return x.RatString()
	case duckdb.Decimal:
		r := new(big.Rat).SetFrac(x.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Scale)), nil))
		return r.RatString()
	case civil.Date:
		return x.String()
	case time.Time:
		if typ == bigquery.DateFieldType {
			return x.UTC().Format("2006-01-02")
		}
		return strconv.FormatInt(x.UnixMicro(), 10)
	}
	return fmt.Sprintf("%T:%v", v, v)
}

package chaos

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cloud.google.com/go/bigquery"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// sourceTable is what a table holds in BigQuery: the truth a dump is checked against.
type sourceTable struct {
	schema   bigquery.Schema
	rows     int
	checksum string // devstack.Checksum of the inserted rows
}

// expected is what a dump must hold: each table's source content or, for a table whose
// source changed while the dump ran and whose rerun's outcome the campaign could not learn
// (the answer was lost to a server restart), either the content before or after.
type expected struct {
	src map[string]sourceTable
	alt map[string]*sourceTable
}

// verifier checks a finished dump with the bucket owner's credentials, independently of the
// exporter's code: what a consumer triggered by receipt.json would find.
type verifier struct {
	root   *s3.Client
	bucket string
	dir    string // scratch space for downloads
}

// dumpCheck is the outcome of checking one dump.
type dumpCheck struct {
	rows, bytes  int64
	objects      int
	crcChecked   int
	crcComposite int // multipart COMPOSITE checksums, reported but not compared
	problems     []string
}

func (c *dumpCheck) fail(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// check verifies the dump whose workflow returned res: the root receipt is this dump's (not
// stale), its copy in the dump folder is identical, every table's folder holds exactly the
// receipt's files (none missing, none extra, indexes contiguous), every object's bytes and
// CRC32C are the receipt's, and DuckDB reads exactly the source's rows from them.
func (v *verifier) check(ctx context.Context, acc config.Account, want expected, res workflows.ExportResult) dumpCheck {
	var c dumpCheck
	rootBody, err := v.get(ctx, layout.ReceiptKey(acc.Prefix))
	if err != nil {
		c.fail("root receipt: %v", err)
		return c
	}
	var r receipt.Receipt
	if err := json.Unmarshal(rootBody, &r); err != nil {
		c.fail("root receipt does not decode: %v", err)
		return c
	}
	if r.Timestamp != res.Timestamp {
		c.fail("root receipt is stale: timestamp %s, this dump's is %s", r.Timestamp, res.Timestamp)
	}
	if err := r.Check(); err != nil {
		c.fail("root receipt: %v", err)
	}
	copyBody, err := v.get(ctx, layout.DumpReceiptKey(acc.Prefix, res.DumpFolder))
	if err != nil {
		c.fail("dump folder receipt: %v", err)
	} else if !bytes.Equal(copyBody, rootBody) {
		c.fail("the dump folder's receipt differs from the root receipt")
	}
	for name, t := range r.Tables {
		sum, ok := res.Tables[name]
		if !ok || sum.Folder != t.Folder || sum.TotalFileCount != t.TotalFileCount || sum.RowCount != t.RowCount || sum.SnapshotTime != t.SnapshotTime {
			c.fail("root receipt's table %s differs from the dump's summary %+v", name, sum)
		}
	}
	if r.AccountID != acc.ID {
		c.fail("receipt names account %q, want %q", r.AccountID, acc.ID)
	}
	if len(r.Tables) != len(acc.Tables) {
		c.fail("receipt lists %d tables, the account has %d", len(r.Tables), len(acc.Tables))
	}

	// Nothing in the dump folder but the receipt copy and the receipt's tables' files.
	dumpPrefix := strings.TrimSuffix(layout.DumpReceiptKey(acc.Prefix, res.DumpFolder), layout.ReceiptName)
	all, err := v.list(ctx, dumpPrefix)
	if err != nil {
		c.fail("list dump folder: %v", err)
		return c
	}
	listed := map[string]bool{}
	for _, k := range all {
		listed[k] = true
	}
	delete(listed, layout.DumpReceiptKey(acc.Prefix, res.DumpFolder))

	for _, name := range acc.Tables {
		src, alt := want.src[name], want.alt[name]
		t, ok := r.Tables[name]
		if !ok {
			c.fail("%s: missing from the receipt", name)
			continue
		}
		if want := layout.TableFolder(acc.Prefix, res.DumpFolder, name); t.Folder != want {
			c.fail("%s: folder %q, want %q", name, t.Folder, want)
		}
		if t.TotalFileCount != len(t.Files) {
			c.fail("%s: total_file_count %d, %d files listed", name, t.TotalFileCount, len(t.Files))
		}
		if got := schemaString(t.Schema); got != bqSchemaString(src.schema) {
			c.fail("%s: receipt schema %s, source %s", name, got, bqSchemaString(src.schema))
		}
		var sum int64
		var files []string
		for i, f := range t.Files {
			sum += f.Rows
			if want := layout.ShardKey(acc.Prefix, res.DumpFolder, name, i, acc.FileExtension); f.Key != want {
				c.fail("%s: file %d is %q, want %q (indexes contiguous from 0)", name, i, f.Key, want)
			}
			if !listed[f.Key] {
				c.fail("%s: %s is in the receipt but not in the bucket", name, f.Key)
				continue
			}
			delete(listed, f.Key)
			path, err := v.download(ctx, f, &c)
			if err != nil {
				c.fail("%s: %v", name, err)
				continue
			}
			files = append(files, path)
		}
		if sum != t.RowCount || (t.RowCount != int64(src.rows) && (alt == nil || t.RowCount != int64(alt.rows))) {
			c.fail("%s: files hold %d rows, receipt row_count %d, source %d", name, sum, t.RowCount, src.rows)
		}
		if len(files) != len(t.Files) {
			continue
		}
		rows, sumHash, err := devstack.ReadParquetFiles(ctx, files, src.schema)
		for _, f := range files {
			os.Remove(f)
		}
		if err != nil {
			c.fail("%s: DuckDB: %v", name, err)
			continue
		}
		c.rows += rows
		matches := func(s sourceTable) bool { return rows == int64(s.rows) && sumHash == s.checksum }
		if !matches(src) && (alt == nil || !matches(*alt)) {
			c.fail("%s: DuckDB read %d rows with checksum %s, source has %d rows with checksum %s", name, rows, sumHash, src.rows, src.checksum)
		}
	}
	for name := range r.Tables {
		if _, ok := want.src[name]; !ok {
			c.fail("receipt lists table %q the account does not export", name)
		}
	}
	extra := make([]string, 0, len(listed))
	for k := range listed {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		c.fail("object %s is in the dump folder but not in the receipt", k)
	}
	return c
}

// download fetches one shard into the scratch folder and checks its size, CRC32C and framing.
func (v *verifier) download(ctx context.Context, f receipt.File, c *dumpCheck) (string, error) {
	o, err := v.root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(f.Key)})
	if err != nil {
		return "", fmt.Errorf("get %s: %w", f.Key, err)
	}
	body, err := io.ReadAll(o.Body)
	o.Body.Close()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.Key, err)
	}
	c.objects++
	c.bytes += int64(len(body))
	if enc := aws.ToString(o.ContentEncoding); enc != "" {
		c.fail("%s has Content-Encoding %q", f.Key, enc)
	}
	if int64(len(body)) != f.Bytes {
		c.fail("%s has %d bytes, the receipt says %d", f.Key, len(body), f.Bytes)
	}
	if len(body) < 8 || string(body[:4]) != "PAR1" || string(body[len(body)-4:]) != "PAR1" {
		c.fail("%s is not a whole parquet file (PAR1 ... PAR1)", f.Key)
	}
	switch {
	case f.CRC32C == "":
	case strings.Contains(f.CRC32C, "-"):
		c.crcComposite++ // a multipart upload's checksum of checksums: not the object's CRC
	default:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], crc32.Checksum(body, castagnoli))
		c.crcChecked++
		if got := base64.StdEncoding.EncodeToString(b[:]); got != f.CRC32C {
			c.fail("%s has CRC32C %s, the receipt says %s", f.Key, got, f.CRC32C)
		}
	}
	path := filepath.Join(v.dir, strings.NewReplacer("/", "_", ":", "_").Replace(f.Key)+".parquet")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

func (v *verifier) get(ctx context.Context, key string) ([]byte, error) {
	o, err := v.root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer o.Body.Close()
	return io.ReadAll(o.Body)
}

func (v *verifier) list(ctx context.Context, prefix string) ([]string, error) {
	return devstack.ListAll(ctx, v.root, v.bucket, prefix)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func schemaString(fields []receipt.Field) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Name + ":" + f.Type + ":" + f.Mode
	}
	return strings.Join(parts, ",")
}

func bqSchemaString(s bigquery.Schema) string {
	parts := make([]string, len(s))
	for i, f := range s {
		mode := "NULLABLE"
		switch {
		case f.Repeated:
			mode = "REPEATED"
		case f.Required:
			mode = "REQUIRED"
		}
		parts[i] = f.Name + ":" + string(f.Type) + ":" + mode
	}
	return strings.Join(parts, ",")
}

//go:build integration

package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// docExample is the dump folder docs/loading.md uses in its examples.
const docExample = "2023-03-14T04:03"

// TestRecipesOnARealDump runs or checks every recipe of docs/loading.md that can run here
// against one real dump: the receipt against its JSON Schema, the dump check script (then
// again on a tampered dump, where it must fail), the Redshift manifest script, the Lambda
// trigger (ledger and load stubbed), and the paths and types of the Snowflake and Athena
// recipes.
func TestRecipesOnARealDump(t *testing.T) {
	t.Parallel() // most of a dump is the wait for its minute to end; run them side by side
	acc := account("recipes", devstack.CustomerBucket)
	res, err := runDump(t, acc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := getObject(t, acc.Prefix+"/receipt.json")
	var r receipt.Receipt
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Tables) != len(e2eTables) {
		t.Fatalf("receipt lists %d tables", len(r.Tables))
	}
	doc, err := os.ReadFile("../../docs/loading.md")
	if err != nil {
		t.Fatal(err)
	}
	bucket := devstack.CustomerBucket

	t.Run("receipt matches docs/receipt.schema.json", func(t *testing.T) {
		for _, key := range []string{acc.Prefix + "/receipt.json", acc.Prefix + "/" + res.DumpFolder + "/receipt.json"} {
			if errs := validateReceipt(t, getObject(t, key)); len(errs) > 0 {
				t.Errorf("%s does not match the schema:\n%s", key, strings.Join(errs, "\n"))
			}
		}
		// The validator itself rejects what the schema forbids.
		var bad map[string]any
		_ = json.Unmarshal(raw, &bad)
		bad["timestamp"] = "2023-03-14 04:03"
		tbl := bad["tables"].(map[string]any)["companies"].(map[string]any)
		tbl["folder"] = "/" + tbl["folder"].(string)
		tbl["total_file_count"] = 0
		delete(tbl["files"].([]any)[0].(map[string]any), "bytes")
		b, _ := json.Marshal(bad)
		if errs := validateReceipt(t, b); len(errs) != 4 {
			t.Errorf("a broken receipt gave %d schema errors, want 4: %v", len(errs), errs)
		}
	})

	python := pythonWithBoto3(t)
	env := s3Env(t)
	script := filepath.Join(t.TempDir(), "verify_dump.py")
	if err := os.WriteFile(script, []byte(docBlock(t, doc, "verify-script", "python")), 0o755); err != nil {
		t.Fatal(err)
	}
	verify := func() (string, string, error) {
		cmd := exec.Command(python, script, bucket, acc.Prefix+"/receipt.json")
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	t.Run("dump check script passes", func(t *testing.T) {
		out, errs, err := verify()
		if err != nil || !strings.Contains(out, "OK: the dump matches its receipt") {
			t.Fatalf("the check of an intact dump failed (%v):\n%s%s", err, out, errs)
		}
		for _, name := range e2eTables {
			if want := fmt.Sprintf("%s: %d objects checked", name, r.Tables[name].TotalFileCount); !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("%s", out)
	})

	t.Run("redshift manifest script", func(t *testing.T) {
		if _, err := exec.LookPath("jq"); err != nil {
			t.Fatal("the Redshift manifest recipe needs jq (Debian package jq)")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "receipt.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", docBlock(t, doc, "redshift-manifest", "sh"))
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "BUCKET="+bucket)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, name := range e2eTables {
			var m struct {
				Entries []struct {
					URL       string `json:"url"`
					Mandatory bool   `json:"mandatory"`
					Meta      struct {
						ContentLength int64 `json:"content_length"`
					} `json:"meta"`
				} `json:"entries"`
			}
			data, err := os.ReadFile(filepath.Join(dir, name+".manifest"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("%s.manifest: %v", name, err)
			}
			tr := r.Tables[name]
			if len(m.Entries) != tr.TotalFileCount {
				t.Errorf("%s.manifest has %d entries, the receipt %d files", name, len(m.Entries), tr.TotalFileCount)
			}
			for i, e := range m.Entries {
				key, ok := strings.CutPrefix(e.URL, "s3://"+bucket+"/")
				if !ok || !e.Mandatory {
					t.Errorf("%s entry %d: %+v", name, i, e)
					continue
				}
				head, err := stack.RootS3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Errorf("%s entry %d names %s, which is not in the bucket: %v", name, i, e.URL, err)
					continue
				}
				if aws.ToInt64(head.ContentLength) != e.Meta.ContentLength {
					t.Errorf("%s entry %d: content_length %d, the object has %d bytes", name, i, e.Meta.ContentLength, aws.ToInt64(head.ContentLength))
				}
			}
		}
	})

	t.Run("lambda trigger decodes the key and loads a dump once", func(t *testing.T) {
		dir := t.TempDir()
		lambda := filepath.Join(dir, "trigger.py")
		if err := os.WriteFile(lambda, []byte(docBlock(t, doc, "lambda-trigger", "python")), 0o644); err != nil {
			t.Fatal(err)
		}
		harness := filepath.Join(dir, "harness.py")
		if err := os.WriteFile(harness, []byte(lambdaHarness), 0o644); err != nil {
			t.Fatal(err)
		}
		// S3 events URL-encode keys; the dump folder's ':' arrives as %3A.
		root, copyKey := acc.Prefix+"/receipt.json", acc.Prefix+"/"+res.DumpFolder+"/receipt.json"
		encoded := strings.ReplaceAll(url.QueryEscape(copyKey), "%2F", "/")
		if encoded == copyKey {
			t.Fatalf("%s needs no encoding: the test proves nothing", copyKey)
		}
		if _, err := stack.RootS3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(encoded)}); err == nil {
			t.Fatalf("%s exists undecoded", encoded)
		}
		var records []map[string]any
		for _, k := range []string{root, root, encoded} { // the same dump fires three times
			records = append(records, map[string]any{"s3": map[string]any{
				"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": k}}})
		}
		event, _ := json.Marshal(map[string]any{"Records": records})
		cmd := exec.Command(python, harness, lambda, string(event))
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("%v: %s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var got struct {
			Loads  [][]any  `json:"loads"`
			Claims []string `json:"claims"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
			t.Fatalf("harness output %q: %v", out, err)
		}
		wantDump := acc.Prefix + "/" + res.DumpFolder
		if len(got.Claims) != 1 || got.Claims[0] != wantDump {
			t.Errorf("claimed %v, want the one dump %s", got.Claims, wantDump)
		}
		if len(got.Loads) != len(e2eTables) {
			t.Fatalf("%d table loads for three events of one dump, want %d: %v", len(got.Loads), len(e2eTables), got.Loads)
		}
		for _, l := range got.Loads {
			name := l[0].(string)
			tr := r.Tables[name]
			if l[1] != "s3://"+bucket+"/"+tr.Folder+"/" || int(l[2].(float64)) != tr.TotalFileCount || int64(l[3].(float64)) != tr.RowCount {
				t.Errorf("load %v, receipt %s: %+v", l, name, tr)
			}
		}
	})

	t.Run("snowflake recipe paths compose with the receipt", func(t *testing.T) {
		block := docBlock(t, doc, "snowflake-recipe", "sql")
		created := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?is)CREATE\s+(?:OR\s+REPLACE\s+)?FILE\s+FORMAT\s+(\w+)\s+TYPE\s*=\s*PARQUET\s+COMPRESSION\s*=\s*(\w+)`).FindAllStringSubmatch(block, -1) {
			if !strings.EqualFold(m[2], "AUTO") {
				t.Errorf("file format %s declares COMPRESSION = %s: the GZIP is inside the parquet file, AUTO detects it", m[1], m[2])
			}
			created[m[1]] = true
		}
		used := regexp.MustCompile(`(?i)(?:FORMAT_NAME\s*=|FILE_FORMAT\s*=>)\s*'(\w+)'`).FindAllStringSubmatch(block, -1)
		if len(used) < 3 {
			t.Errorf("the stage, INFER_SCHEMA and COPY should all name the file format: %v", used)
		}
		for _, u := range used {
			if !created[u[1]] {
				t.Errorf("file format %q is used but never created", u[1])
			}
		}
		block = strings.NewReplacer("BUCKET", bucket, "PREFIX", acc.Prefix, docExample, res.DumpFolder).Replace(block)
		stage := regexp.MustCompile(`URL\s*=\s*'([^']+)'`).FindStringSubmatch(block)
		if stage == nil {
			t.Fatal("no stage URL")
		}
		paths := regexp.MustCompile(`@dreamdata_dumps/([^'\s]*)`).FindAllStringSubmatch(block, -1)
		if len(paths) != 2 {
			t.Fatalf("want the INFER_SCHEMA and COPY paths, got %v", paths)
		}
		want := "s3://" + bucket + "/" + r.Tables["companies"].Folder + "/"
		for _, p := range paths {
			if got := stage[1] + p[1]; got != want {
				t.Errorf("stage URL %s + path %s = %s, the receipt's folder is %s", stage[1], p[1], got, want)
			}
		}
		keys, err := listKeys(strings.TrimPrefix(want, "s3://"+bucket+"/"))
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, f := range r.Tables["companies"].Files {
			files = append(files, f.Key)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != strings.Join(files, ",") {
			t.Errorf("the COPY path holds %v, the receipt lists %v", keys, files)
		}
	})

	t.Run("athena DDL matches the parquet schema and key layout", func(t *testing.T) {
		block := docBlock(t, doc, "athena-ddl", "sql")
		m := regexp.MustCompile(`(?s)CREATE EXTERNAL TABLE (\w+) \((.*?)\)\s*PARTITIONED BY \((\w+) string\)\s*STORED AS PARQUET\s*LOCATION '([^']+)'\s*TBLPROPERTIES \((.*)\);`).FindStringSubmatch(block)
		if m == nil {
			t.Fatalf("unexpected DDL shape:\n%s", block)
		}
		table, cols, part, location, props := m[1], splitTopLevel(m[2]), m[3], m[4], m[5]
		tr, ok := r.Tables[table]
		if !ok {
			t.Fatalf("the DDL's table %s is not in the dump", table)
		}
		// The parquet schema of a real shard, as DuckDB reads it, in Athena's terms.
		shard := filepath.Join(t.TempDir(), "shard.parquet")
		if err := os.WriteFile(shard, getObject(t, tr.Files[0].Key), 0o644); err != nil {
			t.Fatal(err)
		}
		want := parquetColumns(t, shard)
		var got []string
		for _, c := range cols {
			f := strings.Fields(c)
			if len(f) != 2 {
				t.Fatalf("column %q", c)
			}
			if f[0] == part {
				t.Errorf("partition column %s is also a data column", part)
			}
			got = append(got, f[0]+" "+strings.ReplaceAll(f[1], " ", ""))
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("DDL columns\n  %s\nparquet columns in Athena types\n  %s", strings.Join(got, ", "), strings.Join(want, ", "))
		}
		p := map[string]string{}
		for _, kv := range regexp.MustCompile(`'([^']+)'\s*=\s*'([^']*)'`).FindAllStringSubmatch(props, -1) {
			p[kv[1]] = kv[2]
		}
		if p["projection.enabled"] != "true" || p["projection."+part+".type"] != "injected" {
			t.Errorf("projection properties %v", p)
		}
		sub := strings.NewReplacer("BUCKET", bucket, "PREFIX", acc.Prefix)
		template := strings.ReplaceAll(sub.Replace(p["storage.location.template"]), "${"+part+"}", res.DumpFolder)
		if want := "s3://" + bucket + "/" + tr.Folder + "/"; template != want {
			t.Errorf("storage.location.template gives %s for this dump, the receipt's folder is %s", template, want)
		}
		if !strings.HasPrefix(template, sub.Replace(location)) {
			t.Errorf("LOCATION %s is not above the template's folders %s", location, template)
		}
		// The value a query names (WHERE dump = '...') is the folder's segment before the table.
		if tr.Folder != acc.Prefix+"/"+res.DumpFolder+"/"+table {
			t.Errorf("the dump value %s is not the folder's dump segment of %s", res.DumpFolder, tr.Folder)
		}
	})

	// Last: tamper with the dump, and the check must fail, naming what changed.
	t.Run("dump check script fails on a tampered dump", func(t *testing.T) {
		changed := r.Tables["events"].Files[0]
		body := getObject(t, changed.Key)
		body[len(body)/2] ^= 0xff // same size, different bytes
		if _, err := stack.RootS3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(changed.Key),
			Body: bytes.NewReader(body), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c}); err != nil {
			t.Fatal(err)
		}
		out, errs, err := verify()
		if err == nil || !strings.Contains(errs, changed.Key+" has CRC32C") || !strings.Contains(out, "FAIL") {
			t.Errorf("an overwritten shard passed the check (%v):\n%s%s", err, out, errs)
		}
		gone := r.Tables["companies"].Files[len(r.Tables["companies"].Files)-1]
		if _, err := stack.RootS3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(gone.Key)}); err != nil {
			t.Fatal(err)
		}
		out, errs, err = verify()
		if err == nil || !strings.Contains(errs, gone.Key+" is missing") || !strings.Contains(errs, "companies: "+fmt.Sprint(len(r.Tables["companies"].Files)-1)+" objects in") {
			t.Errorf("a deleted shard passed the check (%v):\n%s%s", err, out, errs)
		}
		t.Logf("tampered dump:\n%s%s", out, errs)
	})
}

// lambdaHarness imports the documented trigger, stubs its ledger (in memory) and its load
// (recorded), points its S3 client at MinIO, and invokes it with the event given.
const lambdaHarness = `import importlib.util, json, os, sys
import boto3
spec = importlib.util.spec_from_file_location("trigger", sys.argv[1])
trigger = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trigger)
trigger.s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
ledger, claims, loads = {}, [], []
def claim(dump):
    if dump in ledger:
        return False
    ledger[dump] = "loading"
    claims.append(dump)
    return True
trigger.claim = claim
trigger.release = lambda dump: ledger.pop(dump, None)
trigger.finish = lambda dump: ledger.__setitem__(dump, "loaded")
trigger.load_table = lambda table, location, files, rows: loads.append([table, location, files, rows])
event = json.loads(sys.argv[2])
for record in event["Records"]:  # S3 delivers one record per event
    trigger.handler({"Records": [record]}, None)
assert all(v == "loaded" for v in ledger.values()), ledger
print(json.dumps({"loads": loads, "claims": claims}))
`

// docBlock is the fenced code block of the given language that follows the marker comment
// <!-- name ... --> in doc.
func docBlock(t *testing.T, doc []byte, name, lang string) string {
	t.Helper()
	m := regexp.MustCompile("(?s)<!-- " + regexp.QuoteMeta(name) + "[^>]*-->\\s*```" + lang + "\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/loading.md has no %s block", name)
	}
	return string(m[1])
}

func getObject(t *testing.T, key string) []byte {
	t.Helper()
	o, err := stack.RootS3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(devstack.CustomerBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer o.Body.Close()
	b, err := io.ReadAll(o.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pythonWithBoto3 finds a Python 3 that imports boto3: the one on PATH, else the system one
// (Debian's python3-boto3 installs there).
func pythonWithBoto3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import boto3").Run() == nil {
			return path
		}
	}
	t.Fatal("the documented scripts need Python 3 with boto3: pip install boto3, or apt-get install python3-boto3")
	return ""
}

// s3Env points boto3 at the local MinIO with root credentials, path-style, ignoring any AWS
// configuration of the machine.
func s3Env(t *testing.T) []string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[default]\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ENDPOINT_URL="+stack.S3Endpoint, "AWS_ACCESS_KEY_ID="+devstack.MinIORootUser,
		"AWS_SECRET_ACCESS_KEY="+stack.MinIORootPassword, "AWS_DEFAULT_REGION="+devstack.Region,
		"AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
}

// splitTopLevel splits a column list at the commas outside parentheses and angle brackets.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(', '<':
			depth++
		case ')', '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// parquetColumns are a parquet file's top-level columns as "name athena_type", read with
// DuckDB and mapped as docs/loading.md's Athena table (after docs/types.md) says.
func parquetColumns(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('" + path + "'))")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	athena := map[string]string{"VARCHAR": "string", "BIGINT": "bigint", "INTEGER": "int", "DOUBLE": "double",
		"BOOLEAN": "boolean", "DATE": "date", "BLOB": "binary", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp"}
	var out []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		a, ok := athena[typ]
		if d, found := strings.CutPrefix(typ, "DECIMAL"); found {
			a, ok = "decimal"+d, true
		}
		if !ok {
			t.Fatalf("column %s: DuckDB type %s has no Athena mapping here", name, typ)
		}
		out = append(out, strings.ToLower(name)+" "+a)
	}
	return out
}

// validateReceipt validates a receipt against docs/receipt.schema.json with the JSON Schema
// keywords that file uses; an unknown keyword fails the test, so the schema cannot outgrow
// the validator unnoticed.
func validateReceipt(t *testing.T, data []byte) []string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/receipt.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return []string{err.Error()}
	}
	v := &validator{t: t, root: schema}
	v.check(schema, doc, "$")
	return v.errs
}

type validator struct {
	t    *testing.T
	root map[string]any
	errs []string
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, path+": "+fmt.Sprintf(format, args...))
}

func (v *validator) check(s map[string]any, doc any, path string) {
	if ref, ok := s["$ref"].(string); ok {
		def, ok := v.root["$defs"].(map[string]any)[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		if !ok {
			v.t.Fatalf("schema: unresolved $ref %s", ref)
		}
		v.check(def, doc, path)
		return
	}
	for k := range s {
		switch k {
		case "$schema", "title", "description", "$defs", "type", "required", "properties", "additionalProperties",
			"pattern", "minimum", "minProperties", "items", "enum":
		default:
			v.t.Fatalf("schema keyword %q at %s is not validated by this test", k, path)
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(doc, typ) {
		v.fail(path, "%v is not of type %s", doc, typ)
		return
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == doc
		}
		if !found {
			v.fail(path, "%v is not one of %v", doc, enum)
		}
	}
	switch d := doc.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(d) {
			v.fail(path, "%q does not match %s", d, p)
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && d < m {
			v.fail(path, "%v is below the minimum %v", d, m)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range d {
				v.check(items, e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case map[string]any:
		for _, r := range asSlice(s["required"]) {
			if _, ok := d[r.(string)]; !ok {
				v.fail(path, "misses required %q", r)
			}
		}
		if m, ok := s["minProperties"].(float64); ok && float64(len(d)) < m {
			v.fail(path, "has %d properties, fewer than %v", len(d), m)
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range d {
			if ps, ok := props[k].(map[string]any); ok {
				v.check(ps, val, path+"."+k)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				v.check(ap, val, path+"."+k)
			}
		}
	}
}

func hasType(doc any, typ string) bool {
	switch typ {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "integer":
		f, ok := doc.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := doc.(float64)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	}
	return false
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

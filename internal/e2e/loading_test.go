//go:build integration

package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

var recipeBlock = regexp.MustCompile("(?s)<!-- duckdb-recipe[^>]*-->\\s*```sql\\n(.*?)```")

// TestDuckDBRecipeLoadsADump runs the DuckDB recipe of docs/loading.md, as written, against a
// real dump mirrored from the bucket to a local folder (DuckDB's httpfs extension cannot be
// downloaded here), with s3://BUCKET/ pointing at that folder.
func TestDuckDBRecipeLoadsADump(t *testing.T) {
	t.Parallel() // most of a dump is the wait for its minute to end; run them side by side
	acc := account("recipe", devstack.CustomerBucket)
	if _, err := runDump(t, acc); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/loading.md")
	if err != nil {
		t.Fatal(err)
	}
	m := recipeBlock.FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/loading.md has no duckdb-recipe block")
	}
	mirror := t.TempDir()
	keys, err := listKeys(acc.Prefix + "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		o, err := stack.RootS3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(devstack.CustomerBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(mirror, k)
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		f, _ := os.Create(path)
		_, err = f.ReadFrom(o.Body)
		o.Body.Close()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	recipe := strings.NewReplacer("s3://BUCKET/PREFIX/", mirror+"/"+acc.Prefix+"/", "s3://BUCKET/", mirror+"/").Replace(string(m[1]))
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := strings.Split(recipe, ";")
	var complete bool
	for i, stmt := range stmts {
		stmt = strings.TrimSpace(stmt)
		if stmt == "" || strings.Trim(stmt, "- \n") == "" {
			continue
		}
		if i == len(stmts)-2 { // the final check returns one row
			if err := db.QueryRow(stmt).Scan(&complete); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if !complete {
		t.Error("the recipe's check says the load is incomplete")
	}
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM companies").Scan(&n); err != nil || n != int64(sizes["companies"]) {
		t.Errorf("companies loaded %d rows (%v), want %d", n, err, sizes["companies"])
	}
	var tables int
	if err := db.QueryRow("SELECT count(*) FROM latest_dump").Scan(&tables); err != nil || tables != len(e2eTables) {
		t.Errorf("latest_dump lists %d tables (%v)", tables, err)
	}
}

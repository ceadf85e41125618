package readserver

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// start serves every sample table of dataset "d" in project "p" with rows[table] rows, and
// connects the worker's own client to it as the worker connects to an emulator.
func start(t *testing.T, rows map[string]int) (*Server, *bqsource.Client) {
	t.Helper()
	s := &Server{BatchRows: 257, Lookup: func(project, dataset, table string) (Table, bool) {
		n, ok := rows[table]
		if project != "p" || dataset != "d" || !ok {
			return Table{}, false
		}
		return Table{Schema: devstack.SampleSchemas[table], Rows: n, Generate: func() [][]bigquery.Value { return devstack.SampleRows(table, n) }}, true
	}}
	addr, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	rest := httptest.NewServer(http.NotFoundHandler()) // REST: never called by a dump
	t.Cleanup(rest.Close)
	c, err := bqsource.New(context.Background(), "p", bqsource.Settings{BillingProject: "p", Endpoint: rest.URL, StorageEndpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// values turns row i of rec back into BigQuery's Go types, for devstack.CanonicalRow.
func values(t *testing.T, rec arrow.RecordBatch, i int) []any {
	out := make([]any, rec.NumCols())
	for c, col := range rec.Columns() {
		if col.IsNull(i) {
			continue
		}
		switch a := col.(type) {
		case *array.String:
			out[c] = a.Value(i)
		case *array.Int64:
			out[c] = a.Value(i)
		case *array.Float64:
			out[c] = a.Value(i)
		case *array.Boolean:
			out[c] = a.Value(i)
		case *array.Binary:
			out[c] = append([]byte(nil), a.Value(i)...)
		case *array.Decimal128:
			out[c] = new(big.Rat).SetFrac(a.Value(i).BigInt(), nanoScale)
		case *array.Date32:
			out[c] = civil.DateOf(a.Value(i).ToTime())
		case *array.Timestamp:
			out[c] = time.UnixMicro(int64(a.Value(i))).UTC()
		default:
			t.Fatalf("column %d: unexpected %T", c, col)
		}
	}
	return out
}

// TestServesSampleTables reads every sample table through the worker's client: the receipt
// schema is the sample schema, and the rows read (every stream, one of them resumed at an
// offset) are exactly SampleRows.
func TestServesSampleTables(t *testing.T) {
	rows := map[string]int{}
	for i, table := range []string{"companies", "contacts", "events", "revenue", "revenue_attribution", "paid_ads"} {
		rows[table] = 900 + 131*i
	}
	s, c := start(t, rows)
	for table, n := range rows {
		schema := devstack.SampleSchemas[table]
		sess, err := c.Open(context.Background(), bqsource.TableRef{Project: "p", Dataset: "d", Table: table}, time.Now(), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(sess.Streams) != 2 {
			t.Fatalf("%s: %d streams, want 2", table, len(sess.Streams))
		}
		fields, err := sess.Fields()
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range fields {
			mode := "NULLABLE"
			if schema[i].Required {
				mode = "REQUIRED"
			}
			if f.Name != schema[i].Name || f.Type != string(schema[i].Type) || f.Mode != mode {
				t.Errorf("%s: field %d is %+v, want %s %s %s", table, i, f, schema[i].Name, schema[i].Type, mode)
			}
		}
		var canon []string
		read := func(stream string, offset int64) {
			err := c.Read(context.Background(), sess, stream, offset, func(rec arrow.RecordBatch) error {
				for i := 0; i < int(rec.NumRows()); i++ {
					canon = append(canon, devstack.CanonicalRow(schema, values(t, rec, i)))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		read(sess.Streams[0], 0)
		first := len(canon)
		// The second stream in two reads: its first 300 rows, then from offset 300, as a
		// resumed export reads it.
		var head []string
		err = c.Read(context.Background(), sess, sess.Streams[1], 0, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()) && len(head) < 300; i++ {
				head = append(head, devstack.CanonicalRow(schema, values(t, rec, i)))
			}
			if len(head) == 300 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("%s: %v", table, err)
		}
		canon = append(canon, head...)
		read(sess.Streams[1], 300)
		if len(canon) != n || first != (n+1)/2 {
			t.Fatalf("%s: read %d rows (%d in stream 0), want %d", table, len(canon), first, n)
		}
		want := make([]string, n)
		for i, r := range devstack.SampleRows(table, n) {
			vals := make([]any, len(r))
			for j := range r {
				vals[j] = r[j]
			}
			want[i] = devstack.CanonicalRow(schema, vals)
		}
		sort.Strings(want)
		sort.Strings(canon)
		for i := range want {
			if canon[i] != want[i] {
				t.Fatalf("%s: row %d read\n%s\nwant\n%s", table, i, canon[i], want[i])
			}
		}
	}
	cnt := s.Counts()
	if cnt.Sessions != len(rows) || cnt.PerTable["d.events"] != 1 || cnt.Reads != 3*len(rows) {
		t.Fatalf("counts %+v", cnt)
	}
}

var errStop = errors.New("stop")

func TestEmptyAndMissingTables(t *testing.T) {
	s, c := start(t, map[string]int{"revenue": 0})
	sess, err := c.Open(context.Background(), bqsource.TableRef{Project: "p", Dataset: "d", Table: "revenue"}, time.Time{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Streams) != 0 {
		t.Fatalf("empty table: %d streams, want none", len(sess.Streams))
	}
	if _, err := sess.Fields(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Open(context.Background(), bqsource.TableRef{Project: "p", Dataset: "d", Table: "events"}, time.Time{}, 2)
	if failure.KindOf(err) != failure.KindTableNotFound {
		t.Fatalf("missing table: %v, want KindTableNotFound", err)
	}
	if got := s.Counts().Sessions; got != 1 {
		t.Fatalf("%d sessions counted, want 1 (a refused session is not opened)", got)
	}
}

func TestSplitRows(t *testing.T) {
	for _, tc := range []struct {
		rows, n int
		want    [][2]int
	}{
		{10, 2, [][2]int{{0, 5}, {5, 10}}},
		{11, 3, [][2]int{{0, 4}, {4, 8}, {8, 11}}},
		{0, 2, nil},
		{5, 0, nil},
	} {
		got := splitRows(tc.rows, tc.n)
		if len(got) != len(tc.want) {
			t.Fatalf("splitRows(%d, %d) = %v, want %v", tc.rows, tc.n, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("splitRows(%d, %d) = %v, want %v", tc.rows, tc.n, got, tc.want)
			}
		}
	}
}

func TestParseTable(t *testing.T) {
	if p, d, tb, ok := parseTable("projects/p/datasets/d/tables/t"); !ok || p != "p" || d != "d" || tb != "t" {
		t.Fatalf("got %q %q %q %v", p, d, tb, ok)
	}
	for _, bad := range []string{"", "projects/p/datasets/d", "projects//datasets/d/tables/t", "p/p/datasets/d/tables/t"} {
		if _, _, _, ok := parseTable(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

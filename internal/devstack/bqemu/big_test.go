package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// TestLargeResponse reads a table whose emulator response (one message for
// the whole table) is far above gRPC's 4 MiB default, through the proxy.
func TestLargeResponse(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const rows, width = 20000, 400
	st := startStack(t, 5000)
	bq := bqClient(ctx, t, st.HTTPAddr)
	if err := bq.Dataset(testDataset).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		t.Fatal(err)
	}
	schema := bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "s", Type: bigquery.StringFieldType}}
	tbl := bq.Dataset(testDataset).Table("big")
	if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pad := strings.Repeat("x", width)
	ins := tbl.Inserter()
	for off := 0; off < rows; off += 2000 {
		var savers []*bigquery.ValuesSaver
		for i := off; i < off+2000; i++ {
			savers = append(savers, &bigquery.ValuesSaver{Schema: schema, InsertID: fmt.Sprint(i), Row: []bigquery.Value{int64(i), fmt.Sprintf("%d-%s", i, pad)}})
		}
		if err := ins.Put(ctx, savers); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("inserted %d rows in %v", rows, time.Since(start))
	start = time.Now()
	rc := storageClient(ctx, t, st.GRPCAddr)
	sess, err := rc.CreateReadSession(ctx, tableSessionRequest("big", 0))
	if err != nil {
		t.Fatal(err)
	}
	got, batches, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), sess.GetStreams()[0].GetName(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d rows in %d batches in %v", len(got), len(batches), time.Since(start))
	if len(got) != rows {
		t.Fatalf("rows = %d, want %d", len(got), rows)
	}
	for i, r := range got {
		if r[0] != int64(i) || r[1] != fmt.Sprintf("%d-%s", i, pad) {
			t.Fatalf("row %d = %v", i, r[0])
		}
	}
}

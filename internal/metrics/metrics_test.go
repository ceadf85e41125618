package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestExporterAndTemporalMetricsAreServed(t *testing.T) {
	r := New()
	r.Exporter.ShardUploaded("events", 1000, 4096)
	r.Exporter.ShardUploaded("events", 500, 2048)
	r.Exporter.TableExported("events", 3*time.Second)
	r.Exporter.Failed("events", "PutObjectDenied")
	r.Exporter.ReceiptWritten("acme")

	h := r.Temporal().WithTags(map[string]string{"namespace": "default", "task-queue": "q"})
	h.Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"operation": "Poll"}).Counter("temporal_request").Inc(1) // extra label: dropped
	r.Temporal().Counter("temporal_request").Inc(1)                                       // missing labels: ""
	h.Gauge("temporal_num_pollers").Update(3)
	h.Timer("temporal.activity.execution.latency").Record(20 * time.Millisecond)
	r.Temporal().Gauge("temporal_request").Update(1) // same name, other kind: ignored, no panic

	out := scrape(t, r)
	for _, want := range []string{
		`s3export_rows_total{table="events"} 1500`,
		`s3export_bytes_total{table="events"} 6144`,
		`s3export_shards_total{table="events"} 2`,
		`s3export_failures_total{class="PutObjectDenied",table="events"} 1`,
		`s3export_receipts_total{account="acme"} 1`,
		`s3export_table_export_seconds_count{table="events"} 1`,
		`temporal_request{namespace="default",task_queue="q"} 3`,
		`temporal_request{namespace="",task_queue=""} 1`,
		`temporal_num_pollers{namespace="default",task_queue="q"} 3`,
		`temporal_activity_execution_latency_seconds_count{namespace="default",task_queue="q"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	var nilExporter *Exporter
	nilExporter.ShardUploaded("x", 1, 1) // a worker without metrics records nothing, safely
}

package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	_, out := get(t, r.Handler())
	return out
}

func TestExporterAndTemporalMetricsAreServed(t *testing.T) {
	var errs []error
	r := NewWithOptions(Options{OnError: func(err error) { errs = append(errs, err) }})
	r.Exporter.ShardUploaded("events", 1000, 4096)
	r.Exporter.ShardUploaded("events", 500, 2048)
	r.Exporter.TableExported("events", 3*time.Second)
	r.Exporter.Failed("events", "PutObjectDenied")
	r.Exporter.ReceiptWritten("acme")
	r.SetBuildInfo("v1.4.0", "go1.26.8", "abc123")

	// As the SDK does: tags accumulate through WithTags, names are the SDK's.
	h := r.Temporal().WithTags(map[string]string{"namespace": "default", "task_queue": "destination-aws-s3"})
	poll := h.WithTags(map[string]string{"operation": "PollActivityTaskQueue"})
	start := h.WithTags(map[string]string{"operation": "StartWorkflowExecution"})
	poll.Counter("temporal_request").Inc(2)
	start.Counter("temporal_request").Inc(1)
	poll.Timer("temporal_request_latency").Record(20 * time.Millisecond)
	act := h.WithTags(map[string]string{"activity_type": "ExportTable", "worker_type": "ActivityWorker"})
	act.Timer("temporal_activity_execution_latency").Record(90 * time.Minute)
	act.Timer("temporal_activity_execution_latency").Record(2 * time.Second)
	h.WithTags(map[string]string{"worker_type": "ActivityWorker"}).Gauge("temporal_worker_task_slots_available").Update(3)
	h.WithTags(map[string]string{"worker_type": "WorkflowWorker"}).Gauge("temporal_worker_task_slots_available").Update(4)
	h.WithTags(map[string]string{"workflow_type": "ExportAccount"}).Timer("temporal_workflow_task_schedule_to_start_latency").Record(time.Second)
	r.Temporal().Counter("temporal.odd-name").Inc(1) // sanitized, not dropped

	// The same name with other tag names cannot share a Prometheus metric: it is counted
	// and reported, and the series above stay as they are.
	r.Temporal().Counter("temporal_request").Inc(5)
	if err := r.Close(); err != nil { // reports what tally still holds
		t.Fatal(err)
	}

	out := scrape(t, r)
	for _, want := range []string{
		`s3export_rows_total{table="events"} 1500`,
		`s3export_bytes_total{table="events"} 6144`,
		`s3export_shards_total{table="events"} 2`,
		`s3export_failures_total{class="PutObjectDenied",table="events"} 1`,
		`s3export_receipts_total{account="acme"} 1`,
		`s3export_table_export_seconds_count{table="events"} 1`,
		`s3export_build_info{goversion="go1.26.8",revision="abc123",version="v1.4.0"} 1`,
		`temporal_request_total{namespace="default",operation="PollActivityTaskQueue",task_queue="destination-aws-s3"} 2`,
		`temporal_request_total{namespace="default",operation="StartWorkflowExecution",task_queue="destination-aws-s3"} 1`,
		`temporal_request_latency_seconds_count{namespace="default",operation="PollActivityTaskQueue",task_queue="destination-aws-s3"} 1`,
		`temporal_activity_execution_latency_seconds_count{activity_type="ExportTable",namespace="default",task_queue="destination-aws-s3",worker_type="ActivityWorker"} 2`,
		// Hours-long exports land in a bucket of their own, not only in +Inf.
		`temporal_activity_execution_latency_seconds_bucket{activity_type="ExportTable",namespace="default",task_queue="destination-aws-s3",worker_type="ActivityWorker",le="4.096"} 1`,
		`temporal_activity_execution_latency_seconds_bucket{activity_type="ExportTable",namespace="default",task_queue="destination-aws-s3",worker_type="ActivityWorker",le="16777.216"} 2`,
		`temporal_worker_task_slots_available{namespace="default",task_queue="destination-aws-s3",worker_type="ActivityWorker"} 3`,
		`temporal_worker_task_slots_available{namespace="default",task_queue="destination-aws-s3",worker_type="WorkflowWorker"} 4`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_count{namespace="default",task_queue="destination-aws-s3",workflow_type="ExportAccount"} 1`,
		`temporal_odd_name_total 1`,
		`s3export_metric_registration_errors_total 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, `temporal_request_total 5`) || strings.Contains(out, `operation=""`) {
		t.Errorf("a use with other tag names was merged or blanked:\n%s", out)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "temporal_request_total") {
		t.Errorf("OnError got %v", errs)
	}
	var nilExporter *Exporter
	nilExporter.ShardUploaded("x", 1, 1) // a worker without metrics records nothing, safely
}

func TestReadiness(t *testing.T) {
	var r Readiness
	for _, c := range []struct {
		state State
		code  int
		body  string
	}{{Starting, 503, "starting\n"}, {Ready, 200, "ready\n"}, {Draining, 503, "draining\n"}} {
		if c.state != Starting {
			r.Set(c.state)
		}
		code, body := get(t, &r)
		if code != c.code || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.state, code, body, c.code, c.body)
		}
	}
}

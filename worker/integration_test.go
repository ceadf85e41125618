//go:build integration

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/dreamdata/destination-aws-s3/internal/metrics"
	"github.com/dreamdata/destination-aws-s3/internal/temporalconn"
	"github.com/dreamdata/destination-aws-s3/internal/temporalconn/conntest"
)

// mtlsEnv points the SDK's environment configuration at an mTLS proxy in front of a dev
// server, naming the server by a SAN other than the address, as a real deployment does.
func mtlsEnv(pki *conntest.PKI, proxy string) map[string]string {
	return map[string]string{
		"TEMPORAL_ADDRESS":                 proxy,
		"TEMPORAL_NAMESPACE":               "default",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile,
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    pki.ClientCert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     pki.ClientKey,
		"TEMPORAL_TLS_SERVER_NAME":         "temporal.test",
	}
}

// A worker built the way main builds it runs a workflow over mTLS against a real Temporal
// server, serves the SDK's metrics under the dashboards' names and sends its spans to OTLP.
func TestSDKWorkerOverMutualTLSWithMetricsAndTracing(t *testing.T) {
	pki := conntest.NewPKI(t)
	proxy := conntest.TLSProxy(t, pki.ServerTLS(true), conntest.DevServer(t))
	for k, v := range mtlsEnv(pki, proxy) {
		t.Setenv(k, v)
	}
	rcv := conntest.NewOTLPReceiver()
	otlp := httptest.NewServer(rcv)
	defer otlp.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)

	opts, err := temporalconn.Options(temporalconn.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var regErrs []error
	reg := metrics.NewWithOptions(metrics.Options{OnError: func(err error) { regErrs = append(regErrs, err) }})
	tracing, err := temporalconn.NewTracing(context.Background(), "worker-it")
	if err != nil || tracing == nil {
		t.Fatalf("tracing: %v", err)
	}
	opts.MetricsHandler = reg.Temporal()
	opts.Interceptors = []interceptor.ClientInterceptor{tracing.Interceptor}
	opts.Logger = conntestQuiet{}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("dial over mTLS: %v", err)
	}
	defer c.Close()

	w := worker.New(c, "conn-it", worker.Options{})
	conntest.RegisterGreeter(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "conn-it", TaskQueue: "conn-it"}, conntest.GreetWorkflowName, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello acme" {
		t.Fatalf("workflow: %q %v", got, err)
	}
	w.Stop()
	_ = reg.Close()
	if err := tracing.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scrape := rec.Body.String()
	// The names the Temporal SDK dashboards query.
	for _, want := range []string{
		`temporal_request_total{`,
		`temporal_request_latency_seconds_bucket{`,
		`temporal_long_request_total{`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_bucket{`,
		`temporal_workflow_task_execution_latency_seconds_bucket{`,
		`temporal_workflow_completed_total{`,
		`temporal_workflow_endtoend_latency_seconds_bucket{`,
		`temporal_activity_schedule_to_start_latency_seconds_bucket{`,
		`temporal_activity_execution_latency_seconds_bucket{activity_type="greet"`,
		`temporal_worker_task_slots_available{`,
		`temporal_num_pollers{`,
		`s3export_metric_registration_errors_total 0`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if len(regErrs) > 0 {
		t.Errorf("SDK metrics dropped: %v", regErrs)
	}
	for _, want := range []string{"StartWorkflow:greetWorkflow", "RunWorkflow:greetWorkflow", "RunActivity:greet"} {
		if !rcv.Span(want) {
			t.Errorf("span %s did not arrive: %v", want, rcv.Spans())
		}
	}

	// Without its client certificate the proxy refuses the client.
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", "")
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", "")
	os.Unsetenv("TEMPORAL_TLS_CLIENT_CERT_PATH")
	os.Unsetenv("TEMPORAL_TLS_CLIENT_KEY_PATH")
	opts, err = temporalconn.Options(temporalconn.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = conntestQuiet{}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	if c2, err := client.DialContext(dctx, opts); err == nil {
		c2.Close()
		t.Error("a client without a certificate got through the mTLS proxy")
	}
}

// The worker binary: --version, then a run over mTLS with /readyz, s3export_build_info and the
// SDK's metrics on /metrics, then a graceful drain on SIGTERM.
func TestWorkerBinaryVersionReadinessAndDrain(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	const pkg = "github.com/dreamdata/destination-aws-s3/internal/buildinfo"
	build := exec.Command("go", "build", "-ldflags", "-X "+pkg+".version=v9.9.9-it -X "+pkg+".revision=cafebabe", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "worker v9.9.9-it (revision cafebabe, go1.") {
		t.Fatalf("--version: %v %q", err, out)
	}

	pki := conntest.NewPKI(t)
	proxy := conntest.TLSProxy(t, pki.ServerTLS(true), conntest.DevServer(t))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := lis.Addr().String()
	lis.Close()

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "METRICS_ADDR="+metricsAddr, "TASK_QUEUE=worker-it", "EXPORT_TEMP_DIR="+dir,
		"MAX_TABLE_EXPORTS=1", "MEMORY_BUDGET_BYTES=1GiB", "STAGING_BUDGET_BYTES=2GiB", "WORKER_STOP_TIMEOUT=3s",
		"BIGQUERY_ENDPOINT=http://127.0.0.1:1", "BIGQUERY_STORAGE_ENDPOINT=127.0.0.1:1",
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
	for k, v := range mtlsEnv(pki, proxy) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !ok() {
			select {
			case err := <-exited:
				t.Fatalf("worker exited (%v) while waiting for %s:\n%s", err, what, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s:\n%s", what, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("/readyz to answer ready", func() bool { code, body := get("/readyz"); return code == 200 && body == "ready\n" })
	var scrape string
	waitFor("the SDK's worker metrics", func() bool {
		_, scrape = get("/metrics")
		// Label values as Temporal names them (worker-it, not worker_it); tally reports
		// counters and gauges every second.
		return strings.Contains(scrape, `temporal_worker_task_slots_available{activity_type="none",client_name="temporal_go",namespace="default",task_queue="worker-it",worker_type="ActivityWorker",workflow_type="none"} 1`)
	})
	for _, want := range []string{
		`s3export_build_info{goversion="go1.`,
		`revision="cafebabe",version="v9.9.9-it"} 1`,
		`s3export_metric_registration_errors_total 0`,
		`temporal_request_total{activity_type="none",client_name="temporal_go",namespace="default",operation="DescribeNamespace",task_queue="worker-it"`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("worker exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop within 30s of SIGTERM:\n%s", logs.String())
	}
	l := logs.String()
	for _, want := range []string{`"msg":"worker started"`, `"auth":"mtls"`, `"tls":true`, `"msg":"draining`, `"msg":"worker stopped"`} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
	if strings.Contains(l, "PRIVATE KEY") {
		t.Errorf("key material in the log")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type conntestQuiet struct{}

func (conntestQuiet) Debug(string, ...interface{}) {}
func (conntestQuiet) Info(string, ...interface{})  {}
func (conntestQuiet) Warn(string, ...interface{})  {}
func (conntestQuiet) Error(string, ...interface{}) {}

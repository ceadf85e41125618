package temporalconn

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/dreamdata/destination-aws-s3/internal/temporalconn/conntest"
)

func clearOTLP(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME"} {
		t.Setenv(v, "")
	}
}

func TestTracingIsOffWithoutAnEndpoint(t *testing.T) {
	clearOTLP(t)
	if TracingEnabled() {
		t.Fatal("enabled without an endpoint")
	}
	tr, err := NewTracing(context.Background(), "worker")
	if err != nil || tr != nil {
		t.Fatalf("no endpoint must create no tracer provider and no exporter: %v %v", tr, err)
	}
	if err := tr.Shutdown(context.Background()); err != nil { // nil-safe for callers
		t.Fatal(err)
	}
}

func TestTracingRefusesAnUnknownProtocol(t *testing.T) {
	clearOTLP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, err := NewTracing(context.Background(), "worker"); err == nil || !strings.Contains(err.Error(), `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`) {
		t.Fatalf("want the variable named, got %v", err)
	}
}

func TestTracingExportsWorkflowAndActivitySpans(t *testing.T) {
	clearOTLP(t)
	rcv := conntest.NewOTLPReceiver()
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	tr, err := NewTracing(context.Background(), "destination-aws-s3-worker")
	if err != nil || tr == nil {
		t.Fatalf("tracing: %v %v", tr, err)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{tr.Interceptor}})
	conntest.RegisterGreeter(env)
	env.ExecuteWorkflow(conntest.GreetWorkflowName, "acme")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	for _, want := range []string{"RunWorkflow:greetWorkflow", "StartActivity:greet", "RunActivity:greet"} {
		if !rcv.Span(want) {
			t.Errorf("span %q did not arrive; got %v", want, rcv.Spans())
		}
	}
	if !rcv.Service("destination-aws-s3-worker") {
		t.Error("no span of service destination-aws-s3-worker")
	}
}

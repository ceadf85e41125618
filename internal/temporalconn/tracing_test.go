package temporalconn

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
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

// otlpReceiver is a local OTLP/HTTP trace receiver: it accepts POST /v1/traces.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    map[string]bool
	services map[string]bool
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				r.services[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans[s.Name] = true
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func greet(_ context.Context, name string) (string, error) { return "hello " + name, nil }

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteActivity(ctx, greet, name).Get(ctx, &out)
	return out, err
}

func TestTracingExportsWorkflowAndActivitySpans(t *testing.T) {
	clearOTLP(t)
	rcv := &otlpReceiver{spans: map[string]bool{}, services: map[string]bool{}}
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
	env.RegisterWorkflow(greetWorkflow)
	env.RegisterActivity(greet)
	env.ExecuteWorkflow(greetWorkflow, "acme")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, want := range []string{"RunWorkflow:greetWorkflow", "StartActivity:greet", "RunActivity:greet"} {
		if !rcv.spans[want] {
			t.Errorf("span %q did not arrive; got %v", want, rcv.spans)
		}
	}
	if !rcv.services["destination-aws-s3-worker"] {
		t.Errorf("service.name: %v", rcv.services)
	}
}

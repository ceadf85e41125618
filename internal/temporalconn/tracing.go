package temporalconn

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Tracing is the SDK's OpenTelemetry tracing interceptor with the OTLP exporter behind it.
type Tracing struct {
	// Interceptor goes into client.Options.Interceptors: it traces starting workflows, the
	// workflows themselves, their activities, signals, queries and updates, and carries the
	// trace context through Temporal headers from the starter to the worker.
	Interceptor interceptor.Interceptor
	provider    *sdktrace.TracerProvider
}

// Shutdown flushes the spans not yet exported and stops the exporter. Safe on nil.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// TracingEnabled says whether an OTLP endpoint is configured: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// or OTEL_EXPORTER_OTLP_ENDPOINT, non-empty.
func TracingEnabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// NewTracing sets up tracing when an OTLP endpoint is configured, and returns nil, creating
// no tracer provider and no exporter, when none is: tracing is off by default.
//
// The exporter reads the standard OpenTelemetry variables itself: the endpoint, headers
// (OTEL_EXPORTER_OTLP_HEADERS, e.g. an API key of the collector), timeout, TLS certificates,
// compression; the provider reads the sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)
// and the batching (OTEL_BSP_*); the resource takes OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES over service. The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
// else OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (the default) or grpc.
//
// Only Temporal's own operations are traced: the provider is not made global, so the
// BigQuery and S3 clients do not add a span per request of a multi-hour export.
func NewTracing(ctx context.Context, service string) (*Tracing, error) {
	if !TracingEnabled() {
		return nil, nil
	}
	protocolVar, protocol := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocolVar, protocol = "OTEL_EXPORTER_OTLP_PROTOCOL", os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("environment variable %s=%q: the worker speaks http/protobuf (the default) or grpc", protocolVar, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, fmt.Errorf("OpenTelemetry resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	ic, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: tp.Tracer("github.com/dreamdata/destination-aws-s3"),
	})
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("Temporal tracing interceptor: %w", err)
	}
	return &Tracing{Interceptor: ic, provider: tp}, nil
}
